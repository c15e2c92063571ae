// How long-running core code (file copies, HTTP transfers) learns that the
// database wants it to stop. The glue installs a check that reads
// PostgreSQL's interrupt flags; core code polls it and throws
// Error(Canceled), never calling into PostgreSQL itself.
#pragma once

namespace so {

using InterruptCheck = bool (*)();

void set_interrupt_check(InterruptCheck check);
bool interrupt_requested();
// Throws Error(Canceled) when an interrupt is pending.
void throw_if_interrupted();

}  // namespace so
