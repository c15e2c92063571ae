// Entry points that only older versions' SQL names. An upgrade runs the
// old scripts (0.1.0 -> 0.2.0 creates these functions; 0.2.0 -> 0.3.0
// drops them), and PostgreSQL looks a C function's symbol up when it is
// created, so the library keeps them, working as they did.
#include "core/error.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
}

extern "C" {

// so_remove_now(obj, check_version) (0.2.0): removes an object at once:
// 'deleted', 'gone', or 'changed' when check_version finds another version.
PG_FUNCTION_INFO_V1(so_remove_now);
Datum so_remove_now(PG_FUNCTION_ARGS) {
    so::PackedView view = so::pg::object_view(PG_GETARG_DATUM(0));
    bool check_version = PG_GETARG_BOOL(1);
    so::pg::require_storage_admin("remove stored objects at once");
    PreventCommandIfReadOnly("so_remove_now()");
    const char *outcome = so::pg::guard([&] {
        auto store = so::pg::lookup_store(view.backend);
        std::string key(view.filename);
        store->validate_key(key, true);
        so::ObjectMeta expected = so::to_object_meta(view);
        if (store->remove(key, check_version ? &expected : nullptr)) return "deleted";
        return store->exists(key, "") ? "changed" : "gone";
    });
    PG_RETURN_TEXT_P(cstring_to_text(outcome));
}

// so_own_queue_ids() (0.2.0): the queue rows this transaction's commit
// would handle itself. Since 0.3.0 the worker handles every row after
// commit and so_process_pending() skips the caller's own by their xmin, so
// there are none to report.
PG_FUNCTION_INFO_V1(so_own_queue_ids);
Datum so_own_queue_ids(PG_FUNCTION_ARGS) {
    PG_RETURN_ARRAYTYPE_P(construct_empty_array(INT8OID));
}

}  // extern "C"
