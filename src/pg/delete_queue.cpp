#include "pg/delete_queue.hpp"

#include <random>

#include "core/error.hpp"
#include "core/object_meta.hpp"
#include "pg/guard.hpp"
#include "pg/operation_stats.hpp"
#include "pg/object_locks.hpp"
#include "pg/object_datum.hpp"
#include "pg/pinned_sql.hpp"
#include "pg/registry.hpp"
#include "pg/wal.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace so::pg {

namespace {

bool queued_here = false;

// A plan of one of the statements below, kept for the session, made again
// if the extension's schema changes.
struct KeptPlan {
    SPIPlanPtr plan = nullptr;
    Oid schema = InvalidOid;
};

// C side, inside an SPI connection. sql_template has one %s: the schema.
SPIPlanPtr prepared(KeptPlan &kept, const char *sql_template, int nargs, Oid *argtypes) {
    Oid schema = extension_schema_oid();
    if (kept.plan && kept.schema == schema) return kept.plan;
    if (!OidIsValid(get_relname_relid("so_delete_queue", schema)))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the installed stored_object library needs the extension's version 0.3.0"),
                        errhint("Run ALTER EXTENSION stored_object UPDATE.")));
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

KeptPlan insert_plan, select_plan, delete_plan, retry_plan, due_plan, due_untried_plan, find_plan, postpone_plan;

// Whether two values name the same version: every field both know agrees.
bool same_version(const PackedView &a, const PackedView &b) {
    if (a.has_etag && b.has_etag && a.etag != b.etag) return false;
    if (a.has_size && b.has_size && a.size != b.size) return false;
    if (a.has_last_modified && b.has_last_modified && a.last_modified != b.last_modified) return false;
    return true;
}

enum class Result { Deleted, Gone, Changed, Failed };

struct Attempt {
    Result result;
    char *error;  // Failed: the message, palloc'd
};

// Removes a queued object if it is still the version the delete was
// recorded for. Store errors become a Failed result; PostgreSQL errors
// (reading the registry) are raised.
Attempt attempt_removal(const PackedView &view) {
    return guard([&] {
        try {
            return tracked(Operation::Delete, view.backend, [&](OperationSample &) {
                auto store = lookup_store(view.backend);
                std::string key(view.filename);
                store->validate_key(key, true);
                ObjectMeta expected = to_object_meta(view);
                if (store->remove(key, &expected)) return Attempt{Result::Deleted, nullptr};
                return Attempt{store->exists(key, "") ? Result::Changed : Result::Gone, nullptr};
            });
        } catch (const Error &e) {
            if (e.kind() == ErrorKind::Canceled) throw;
            return Attempt{Result::Failed, copy_text_no_raise(e.what())};
        }
    });
}

// 10 s, 20 s, 40 s, ... up to an hour, with a quarter of jitter either way.
double retry_delay_seconds(int attempts) {
    static std::mt19937 rng(std::random_device{}());
    double base = std::min(3600.0, 10.0 * static_cast<double>(1u << std::min(attempts, 9)));
    return base * (0.75 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng));
}

}  // namespace

void queue_delete(Datum object) {
    registry_ensure_loaded();
    as_extension_owner([&] {
        SPI_connect();
        Oid argtypes[1] = {stored_object_type_oid()};
        SPIPlanPtr plan = prepared(insert_plan, "INSERT INTO %s.so_delete_queue (object) VALUES ($1)", 1, argtypes);
        Datum values[1] = {object};
        if (SPI_execute_plan(plan, values, nullptr, false, 0) != SPI_OK_INSERT || SPI_processed != 1)
            elog(ERROR, "could not queue the delete of a stored object");
        SPI_finish();
    });
    queued_here = true;
}

void queue_delete(const char *backend, const char *key, const char *etag, const char *version_id) {
    Datum object = guard([&] {
        ObjectMeta meta;
        meta.backend = backend;
        meta.filename = key;
        if (etag && *etag) meta.etag = etag;
        if (version_id && *version_id) meta.version_id = version_id;
        return make_object_datum(meta);
    });
    queue_delete(object);
}

bool delete_queued_for(Datum object) {
    bool found = false;
    registry_ensure_loaded();
    PackedView wanted = object_view(object);
    as_extension_owner([&] {
        SPI_connect();
        Oid argtypes[1] = {stored_object_type_oid()};
        SPIPlanPtr find = prepared(find_plan,
                                   "SELECT q.object FROM %1$s.so_delete_queue AS q WHERE q.object OPERATOR(%1$s.=) $1",
                                   1, argtypes);
        Datum args[1] = {object};
        if (SPI_execute_snapshot(find, args, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 0) !=
            SPI_OK_SELECT)
            elog(ERROR, "could not read the delete queue");
        for (uint64 i = 0; i < SPI_processed && !found; ++i) {
            bool isnull;
            Datum queued = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
            found = same_version(object_view(queued), wanted);
        }
        SPI_finish();
    });
    return found;
}

QueueCounts process_queued_deletes(int64 max_rows, bool due_only, int64 *after_id, bool *more) {
    QueueCounts counts;
    *more = false;
    registry_ensure_loaded();
    as_extension_owner([&] {
        SPI_connect();
        Oid select_types[3] = {INT8OID, BOOLOID, INT8OID};
        SPIPlanPtr select = prepared(select_plan,
                                     "SELECT q.id, q.object, q.xmin, q.attempts FROM %s.so_delete_queue AS q "
                                     "WHERE q.id OPERATOR(pg_catalog.>) $3 AND (NOT $2 OR q.next_attempt_at "
                                     "OPERATOR(pg_catalog.<=) pg_catalog.now()) "
                                     "ORDER BY q.id LIMIT $1 FOR UPDATE OF q SKIP LOCKED",
                                     3, select_types);
        Datum args[3] = {Int64GetDatum(max_rows), BoolGetDatum(due_only), Int64GetDatum(*after_id)};
        if (SPI_execute_plan(select, args, nullptr, false, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not read the delete queue");
        SPITupleTable *rows = SPI_tuptable;
        uint64 count = SPI_processed;
        *more = static_cast<int64>(count) == max_rows;
        // Every row seen was committed; with synchronous_commit = off its
        // commit may not be on disk yet. Make it durable before acting: a
        // crash must never bring back a row whose file is already gone.
        if (count > 0) flush_inserted_wal();
        Oid delete_types[1] = {INT8OID};
        Oid retry_types[3] = {INT8OID, TEXTOID, FLOAT8OID};
        SPIPlanPtr drop = prepared(delete_plan, "DELETE FROM %s.so_delete_queue WHERE id OPERATOR(pg_catalog.=) $1",
                                   1, delete_types);
        SPIPlanPtr retry = prepared(retry_plan,
                                    "UPDATE %s.so_delete_queue SET attempts = attempts OPERATOR(pg_catalog.+) 1, "
                                    "last_error = $2, next_attempt_at = pg_catalog.now() OPERATOR(pg_catalog.+) "
                                    "pg_catalog.make_interval(secs => $3) WHERE id OPERATOR(pg_catalog.=) $1",
                                    3, retry_types);
        SPIPlanPtr postpone = prepared(postpone_plan,
                                       "UPDATE %s.so_delete_queue SET next_attempt_at = pg_catalog.now() "
                                       "OPERATOR(pg_catalog.+) '1 second' WHERE id OPERATOR(pg_catalog.=) $1",
                                       1, delete_types);
        for (uint64 i = 0; i < count; ++i) {
            CHECK_FOR_INTERRUPTS();
            bool isnull;
            HeapTuple row = rows->vals[i];
            Datum id = SPI_getbinval(row, rows->tupdesc, 1, &isnull);
            Datum object = SPI_getbinval(row, rows->tupdesc, 2, &isnull);
            TransactionId xmin = DatumGetTransactionId(SPI_getbinval(row, rows->tupdesc, 3, &isnull));
            int attempts = DatumGetInt32(SPI_getbinval(row, rows->tupdesc, 4, &isnull));
            *after_id = DatumGetInt64(id);
            // Our own transaction's deletes wait for its commit.
            if (TransactionIdIsCurrentTransactionId(xmin)) continue;
            // A transaction is storing a copy of the object: it will find
            // this row and fail. Try again in a moment, not now.
            PackedView view = object_view(object);
            if (!lock_reference(view.backend, view.filename, view.version_id, view.has_version_id, ExclusiveLock,
                                false)) {
                Datum postpone_args[1] = {id};
                if (SPI_execute_plan(postpone, postpone_args, nullptr, false, 0) != SPI_OK_UPDATE)
                    elog(ERROR, "could not postpone a queued delete");
                continue;
            }
            Attempt attempt = attempt_removal(view);
            if (attempt.result == Result::Failed) {
                Datum retry_args[3] = {id, CStringGetTextDatum(attempt.error ? attempt.error : "out of memory"),
                                       Float8GetDatum(retry_delay_seconds(attempts))};
                if (SPI_execute_plan(retry, retry_args, nullptr, false, 0) != SPI_OK_UPDATE)
                    elog(ERROR, "could not record a failed delete");
                ++counts.failed;
                continue;
            }
            Datum drop_args[1] = {id};
            if (SPI_execute_plan(drop, drop_args, nullptr, false, 0) != SPI_OK_DELETE)
                elog(ERROR, "could not drop a completed delete from the queue");
            if (attempt.result == Result::Deleted) ++counts.deleted;
            else if (attempt.result == Result::Gone) ++counts.already_gone;
            else ++counts.kept;  // the key was reused by a newer put
        }
        SPI_finish();
    });
    return counts;
}

double seconds_until_next_due(bool untried_now) {
    double seconds = -1;
    registry_ensure_loaded();
    as_extension_owner([&] {
        SPI_connect();
        // Untried rows put off for a moment (their object's reference lock
        // was still held by the committing transaction) count as due for a
        // waiter: the worker has not done them yet.
        SPIPlanPtr due = untried_now
                             ? prepared(due_untried_plan,
                                        "SELECT pg_catalog.date_part('epoch', pg_catalog.min(CASE WHEN attempts "
                                        "OPERATOR(pg_catalog.=) 0 THEN pg_catalog.clock_timestamp() ELSE "
                                        "next_attempt_at END) OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) "
                                        "FROM %s.so_delete_queue",
                                        0, nullptr)
                             : prepared(due_plan,
                                        "SELECT pg_catalog.date_part('epoch', pg_catalog.min(next_attempt_at) "
                                        "OPERATOR(pg_catalog.-) pg_catalog.clock_timestamp()) FROM %s.so_delete_queue",
                                        0, nullptr);
        // The latest snapshot: a caller that waits for the worker asks again and again in one statement.
        if (SPI_execute_snapshot(due, nullptr, nullptr, GetLatestSnapshot(), InvalidSnapshot, true, false, 1) !=
            SPI_OK_SELECT)
            elog(ERROR, "could not read the delete queue");
        bool isnull;
        Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        if (!isnull) seconds = std::max(0.0, DatumGetFloat8(d));
        SPI_finish();
    });
    return seconds;
}

bool transaction_queued_deletes() { return queued_here; }
void forget_queued_deletes() { queued_here = false; }

}  // namespace so::pg
