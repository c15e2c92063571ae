// so_process_pending(): the worker's work, by hand (from cron, or where
// the library is not preloaded).
#include "pg/access.hpp"
#include "pg/delete_queue.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
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

}  // extern "C"
