#include "pg/delete_queue.hpp"

#include <vector>

#include "pg/extension_owner.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace so::pg {

namespace {

std::vector<int64> &completed() {
    static std::vector<int64> ids;
    return ids;
}

struct KeptPlan {
    SPIPlanPtr plan = nullptr;
    Oid schema = InvalidOid;  // the plan names the queue in this schema
};

KeptPlan insert_plan, delete_plan;

SPIPlanPtr prepared(KeptPlan &kept, const char *sql_template, int nargs, Oid *argtypes) {
    Oid schema = extension_schema_oid();
    if (kept.plan && kept.schema == schema) return kept.plan;
    if (kept.plan) SPI_freeplan(kept.plan);
    kept.plan = nullptr;
    char *sql = psprintf(sql_template, quote_identifier(get_namespace_name(schema)));
    SPIPlanPtr plan = SPI_prepare(sql, nargs, argtypes);
    if (!plan) elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    kept.plan = plan;
    kept.schema = schema;
    return plan;
}

}  // namespace

int64 queue_delete(Datum object, Oid object_type) {
    int64 id = 0;
    as_extension_owner([&] {
        SPI_connect();
        Oid argtypes[1] = {object_type};
        SPIPlanPtr plan =
            prepared(insert_plan, "INSERT INTO %s.so_pending_deletes (object) VALUES ($1) RETURNING id", 1, argtypes);
        Datum values[1] = {object};
        if (SPI_execute_plan(plan, values, nullptr, false, 1) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
            elog(ERROR, "could not queue the delete of a stored object");
        bool isnull;
        id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        SPI_finish();
    });
    return id;
}

void note_delete_completed(int64 queue_id) {
    try {
        completed().push_back(queue_id);
    } catch (...) {
        // Out of memory: so_process_pending() will find the row's object gone.
    }
}

void drop_completed_deletes() {
    auto &ids = completed();
    if (ids.empty()) return;
    int n = static_cast<int>(ids.size());
    Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
    for (int i = 0; i < n; ++i) elems[i] = Int64GetDatum(ids[i]);
    ArrayType *array = construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
    ids.clear();  // once: if this transaction aborts, so_process_pending() cleans up
    as_extension_owner([&] {
        SPI_connect();
        Oid argtypes[1] = {INT8ARRAYOID};
        SPIPlanPtr plan = prepared(delete_plan, "DELETE FROM %s.so_pending_deletes WHERE id = ANY ($1)", 1, argtypes);
        Datum values[1] = {PointerGetDatum(array)};
        if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_DELETE)
            elog(ERROR, "could not drop completed deletes from the queue");
        SPI_finish();
    });
}

}  // namespace so::pg
