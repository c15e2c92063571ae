// so_process_pending(): the worker's work, by hand (from cron, or where
// the library is not preloaded). so_wait_for_worker(): waits until the
// worker has caught up.
#include "pg/access.hpp"
#include "pg/delete_queue.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xlog.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
}

extern "C" {

PG_FUNCTION_INFO_V1(so_process_pending);
Datum so_process_pending(PG_FUNCTION_ARGS) {
    int64 max_rows = PG_ARGISNULL(0) ? INT64_MAX : PG_GETARG_INT32(0);
    so::pg::require_storage_admin("process queued deletes");
    PreventCommandIfReadOnly("so_process_pending()");
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "so_process_pending() must return a composite type");
    so::pg::run_handed_undos();
    so::pg::QueueCounts total;
    bool more = max_rows > 0;
    int64 after_id = 0;
    while (more && max_rows > 0) {
        // By hand, every row is due: backoff is for the worker.
        so::pg::QueueCounts batch =
            so::pg::process_queued_deletes(std::min<int64>(max_rows, 1000), false, &after_id, &more);
        total.deleted += batch.deleted;
        total.already_gone += batch.already_gone;
        total.kept += batch.kept;
        total.failed += batch.failed;
        max_rows -= batch.deleted + batch.already_gone + batch.kept + batch.failed;
    }
    Datum values[4] = {Int64GetDatum(total.deleted), Int64GetDatum(total.already_gone), Int64GetDatum(total.kept),
                       Int64GetDatum(total.failed)};
    bool nulls[4] = {false, false, false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

// so_wait_for_worker(timeout): true once the worker has carried out every
// committed delete that is due and every undo handed to it (failed ones
// wait for their retry time and do not count); false after timeout, or at
// once when there is no worker (not preloaded, or a standby). Call it after
// COMMIT: a test, a script before a backup, an application that wants its
// storage settled.
PG_FUNCTION_INFO_V1(so_wait_for_worker);
Datum so_wait_for_worker(PG_FUNCTION_ARGS) {
    Interval *timeout = PG_GETARG_INTERVAL_P(0);
    if (!so::pg::worker_available() || RecoveryInProgress()) PG_RETURN_BOOL(false);
    int64 wait_us = timeout->time + (static_cast<int64>(timeout->day) + timeout->month * 30LL) * USECS_PER_DAY;
    TimestampTz deadline = GetCurrentTimestamp() + wait_us;
    // Rows due now may have come without a commit that woke the worker (an
    // upgrade, a restore, a retry time set by hand): have it look.
    if (so::pg::seconds_until_next_due() == 0) so::pg::wake_worker();
    for (;;) {
        if (so::pg::worker_idle_here() && so::pg::seconds_until_next_due(true) != 0) PG_RETURN_BOOL(true);
        if (GetCurrentTimestamp() >= deadline) PG_RETURN_BOOL(false);
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
}

}  // extern "C"
