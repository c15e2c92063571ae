// The loadable module: magic block and one-time initialisation.
#include "core/interrupts.hpp"
#include "pg/access.hpp"
#include "pg/log_filter.hpp"
#include "pg/operation_stats.hpp"
#include "pg/postgres.hpp"
#include "pg/registry.hpp"
#include "pg/settings.hpp"
#include "pg/transaction.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "miscadmin.h"
}

namespace {

// Read by core loops and libcurl callbacks; it only reads flags, so it is
// safe anywhere. The error itself is raised later, by CHECK_FOR_INTERRUPTS.
bool interrupt_pending() { return QueryCancelPending || ProcDiePending; }

}  // namespace

extern "C" {

PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) {
    so::set_interrupt_check(interrupt_pending);
    so::pg::settings_init();
    so::pg::registry_init();
    so::pg::access_init();
    so::pg::transaction_init();
    so::pg::log_filter_init();
    so::pg::operation_stats_init();
    so::pg::worker_init();
}

}  // extern "C"
