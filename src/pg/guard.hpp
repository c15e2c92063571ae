// The door between C++ and PostgreSQL.
//
// guard(body) runs C++ code for an SQL-callable function: every C++
// exception is caught and turned into ereport(ERROR) only after the body's
// C++ objects are destroyed, so no exception crosses into PostgreSQL and no
// longjmp skips a destructor. pg_call(f) runs PostgreSQL code from C++: an
// ereport inside f is caught (PG_TRY) and rethrown as a C++ exception,
// which the enclosing guard re-raises as the original PostgreSQL error.
//
// Inside f given to pg_call, and anywhere outside guard, no C++ object
// with a destructor may be alive across a call that can ereport.
#pragma once

#include <exception>
#include <new>
#include <utility>

#include "core/error.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// A PostgreSQL error caught by pg_call, carried through C++ frames.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData *data) : data_(data) {}
    ErrorData *data() const noexcept { return data_; }
    const char *what() const noexcept override { return "PostgreSQL error"; }

private:
    ErrorData *data_;
};

// What a caught exception becomes; plain data, safe to hold across ereport.
struct PendingError {
    ErrorKind kind = ErrorKind::Internal;
    char *message = nullptr;
    char *detail = nullptr;
    char *hint = nullptr;
    ErrorData *pg_error = nullptr;
    bool out_of_memory = false;

    void capture_current_exception() noexcept;
    [[noreturn]] void raise() const;
};

int sqlstate_for(ErrorKind kind);

template <typename F>
auto guard(F &&body) -> decltype(body()) {
    PendingError pending;
    try {
        return body();
    } catch (...) {
        pending.capture_current_exception();
    }
    pending.raise();
}

template <typename F>
void pg_call(F &&f) {
    MemoryContext context = CurrentMemoryContext;
    ErrorData *volatile caught = nullptr;
    PG_TRY();
    {
        f();
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(context);
        caught = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (caught) throw PgError(caught);
}

// Copies s into the current memory context; nullptr instead of raising
// when memory is short. Safe anywhere, even in commit callbacks.
char *copy_text_no_raise(const char *s) noexcept;

// palloc for use inside guard: throws std::bad_alloc instead of ereport.
void *alloc(size_t size);

}  // namespace so::pg
