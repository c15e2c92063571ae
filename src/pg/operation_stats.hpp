// Statistics of storage operations per backend, in the spirit of
// pg_stat_statements: calls, errors by SQLSTATE class, bytes read and
// written, retries, total and longest time.
//
// Each session counts in its own memory, without locks or atomics, and
// adds what it counted to shared memory when its transaction ends (the
// view shows committed and aborted work alike, as soon as it ends). Without
// the library in shared_preload_libraries there is no shared memory: each
// session then shows what it counted itself.
#pragma once

#include <cstdint>
#include <exception>
#include <string_view>

#include "core/error.hpp"
#include "core/store.hpp"
#include "pg/guard.hpp"

namespace so::pg {

enum class Operation : uint8_t { Put, Get, Stat, Delete, Sign, Copy, List };

// What an operation moved, filled in by its body.
struct OperationSample {
    uint64_t bytes_read = 0;     // from the store
    uint64_t bytes_written = 0;  // to the store
};

// Whether stored_object.track_operations is on.
bool tracking_operations();

// Counts one operation that took elapsed clock ticks; sqlstate is 0 when
// it succeeded. Never throws, never allocates.
void record_operation(Operation op, std::string_view backend, uint64_t elapsed, int sqlstate,
                      const OperationSample &sample, uint64_t retries) noexcept;

// A cheap monotonic clock (TSC ticks where the kernel trusts the TSC,
// nanoseconds otherwise); the statistics convert.
uint64_t clock_ticks() noexcept;

// Runs body(sample) as one operation of op on backend and counts it,
// failed or not (the exception goes on). For use inside guard().
template <typename F>
auto tracked(Operation op, std::string_view backend, F &&body) -> decltype(body(std::declval<OperationSample &>())) {
    OperationSample sample;
    if (!tracking_operations()) return body(sample);
    const uint64_t start = clock_ticks(), retries = store_retries();
    auto finish = [&](int sqlstate) {
        record_operation(op, backend, clock_ticks() - start, sqlstate, sample, store_retries() - retries);
    };
    try {
        auto result = body(sample);
        finish(0);
        return result;
    } catch (const Error &e) {
        finish(sqlstate_for(e.kind()));
        throw;
    } catch (const PgError &e) {
        finish(e.data()->sqlerrcode);
        throw;
    } catch (...) {
        finish(sqlstate_for(ErrorKind::Internal));
        throw;
    }
}

void operation_stats_init();

}  // namespace so::pg
