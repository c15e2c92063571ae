#include "core/interrupts.hpp"

#include "core/error.hpp"

namespace so {

namespace {
InterruptCheck installed_check = nullptr;
}

void set_interrupt_check(InterruptCheck check) { installed_check = check; }

bool interrupt_requested() { return installed_check && installed_check(); }

void throw_if_interrupted() {
    if (interrupt_requested()) throw Error(ErrorKind::Canceled, "canceling storage operation");
}

}  // namespace so
