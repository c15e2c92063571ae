// so_orphans() and so_remove_now(): finding and removing objects that no
// row references (left by a crash between so_put and COMMIT, by TRUNCATE or
// DROP TABLE, or by an application that forgot so_delete).
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/mime_types.hpp"
#include "pg/extension_owner.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/xact.h"
#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/tuplestore.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace {

// Every column that can hold a stored_object (of the type, a domain over
// it, an array of either), in tables and materialized views this session
// can read, except the delete queue.
constexpr const char *kColumnsQuery = R"SQL(
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
       pg_catalog.quote_ident(a.attname), k.kind = 'array'
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL (SELECT %s.so_column_kind(a.atttypid) AS kind) k
 WHERE c.relkind IN ('r', 'm') AND a.attnum > 0 AND NOT a.attisdropped AND k.kind IS NOT NULL
   AND (c.relpersistence <> 't' OR c.relnamespace = pg_catalog.pg_my_temp_schema())
   AND c.oid <> $1
)SQL";

struct KeySet {
    char **keys;
    int count;
};

int compare_keys(const void *a, const void *b) {
    return strcmp(*static_cast<char *const *>(a), *static_cast<char *const *>(b));
}

// C side: the keys of backend that any row of any column references,
// sorted. Runs as the extension's owner, so every table is read.
KeySet referenced_keys(const char *backend) {
    MemoryContext result_context = CurrentMemoryContext;
    KeySet set{nullptr, 0};
    int capacity = 1024;
    set.keys = static_cast<char **>(palloc(sizeof(char *) * capacity));
    so::pg::as_extension_owner([&] {
        SPI_connect();
        const char *schema = quote_identifier(get_namespace_name(so::pg::extension_schema_oid()));
        Oid queue = get_relname_relid("so_pending_deletes", so::pg::extension_schema_oid());
        Oid argtypes[1] = {OIDOID};
        Datum args[1] = {ObjectIdGetDatum(queue)};
        if (SPI_execute_with_args(psprintf(kColumnsQuery, schema), 1, argtypes, args, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not list stored_object columns");
        SPITupleTable *columns = SPI_tuptable;
        uint64 ncolumns = SPI_processed;
        for (uint64 i = 0; i < ncolumns; ++i) {
            char *table = SPI_getvalue(columns->vals[i], columns->tupdesc, 1);
            char *column = SPI_getvalue(columns->vals[i], columns->tupdesc, 2);
            bool is_array = strcmp(SPI_getvalue(columns->vals[i], columns->tupdesc, 3), "t") == 0;
            char *query = is_array
                              ? psprintf("SELECT %s.so_filename(o) FROM %s, pg_catalog.unnest(%s::%s.stored_object[]) AS o "
                                         "WHERE %s.so_backend(o) = $1",
                                         schema, table, column, schema, schema)
                              : psprintf("SELECT %s.so_filename(%s) FROM %s WHERE %s.so_backend(%s) = $1", schema,
                                         column, table, schema, column);
            Oid text_type[1] = {TEXTOID};
            Datum backend_arg[1] = {CStringGetTextDatum(backend)};
            Portal portal = SPI_cursor_open_with_args(nullptr, query, 1, text_type, backend_arg, nullptr, true, 0);
            for (;;) {
                SPI_cursor_fetch(portal, true, 10000);
                if (SPI_processed == 0) break;
                for (uint64 r = 0; r < SPI_processed; ++r) {
                    char *key = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
                    if (!key) continue;
                    if (set.count == capacity) {
                        capacity *= 2;
                        set.keys = static_cast<char **>(repalloc_huge(set.keys, sizeof(char *) * capacity));
                    }
                    set.keys[set.count++] = MemoryContextStrdup(result_context, key);
                    pfree(key);
                }
                SPI_freetuptable(SPI_tuptable);
                CHECK_FOR_INTERRUPTS();
            }
            SPI_cursor_close(portal);
        }
        SPI_finish();
    });
    qsort(set.keys, set.count, sizeof(char *), compare_keys);
    return set;
}

bool contains(const KeySet &set, const char *key) {
    return bsearch(&key, set.keys, set.count, sizeof(char *), compare_keys) != nullptr;
}

struct Found {
    Datum *objects;
    int count;
};

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_orphans);
Datum so_orphans(PG_FUNCTION_ARGS) {
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *prefix = text_to_cstring(PG_GETARG_TEXT_PP(1));
    Interval *older_than = PG_GETARG_INTERVAL_P(2);
    // Microsecond precision: an object written a moment before this
    // statement is older than '0 seconds'.
    double now = GetCurrentStatementStartTimestamp() / 1e6 +
                 static_cast<double>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
    double cutoff = now - (older_than->time / 1e6 + older_than->day * 86400.0 + older_than->month * 30 * 86400.0);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    if (!rsinfo || !IsA(rsinfo, ReturnSetInfo) || !(rsinfo->allowedModes & SFRM_Materialize))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("so_orphans() must be called where a set can be returned")));
    so::pg::registry_ensure_loaded();
    // A set of one stored_object column, materialized.
    MemoryContext old_context = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
    TupleDesc desc = CreateTemplateTupleDesc(1);
    TupleDescInitEntry(desc, 1, "so_orphans", so::pg::stored_object_type_oid(), -1, 0);
    rsinfo->returnMode = SFRM_Materialize;
    rsinfo->setDesc = desc;
    rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
    MemoryContextSwitchTo(old_context);

    // Fail on an unknown backend before reading every table.
    so::pg::guard([&] { return so::pg::lookup_store(backend) != nullptr; });
    KeySet referenced = referenced_keys(backend);

    Found found = so::pg::guard([&] {
        auto store = so::pg::lookup_store(backend);
        std::vector<so::ListedObject> orphans;
        store->list(prefix, [&](const so::ListedObject &object) {
            if (object.last_modified < cutoff && !contains(referenced, object.key.c_str())) orphans.push_back(object);
        });
        std::sort(orphans.begin(), orphans.end(),
                  [](const so::ListedObject &a, const so::ListedObject &b) { return a.key < b.key; });
        Found result{static_cast<Datum *>(so::pg::alloc(sizeof(Datum) * std::max<size_t>(1, orphans.size()))), 0};
        for (const auto &object : orphans) {
            so::ObjectMeta meta;
            meta.backend = backend;
            meta.filename = object.key;
            meta.size = static_cast<int64_t>(object.size);
            meta.last_modified = object.last_modified;
            meta.content_type = so::guess_content_type(object.key);
            if (!object.etag.empty()) meta.etag = object.etag;
            result.objects[result.count++] = so::pg::make_object_datum(meta);
        }
        return result;
    });
    for (int i = 0; i < found.count; ++i) {
        bool isnull = false;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &found.objects[i], &isnull);
    }
    return static_cast<Datum>(0);
}

PG_FUNCTION_INFO_V1(so_remove_now);
Datum so_remove_now(PG_FUNCTION_ARGS) {
    so::PackedView view = so::pg::object_view(PG_GETARG_DATUM(0));
    bool check_version = PG_GETARG_BOOL(1);
    PreventCommandIfReadOnly("so_remove_now()");
    const char *outcome = so::pg::guard([&] {
        auto store = so::pg::lookup_store(std::string(view.backend));
        std::string key(view.filename);
        store->validate_key(key, true);
        so::ObjectMeta expected = so::to_object_meta(view);
        if (store->remove(key, check_version ? &expected : nullptr)) return "deleted";
        return store->exists(key) ? "changed" : "gone";
    });
    PG_RETURN_TEXT_P(cstring_to_text(outcome));
}

// so_own_queue_ids(): the queue rows this transaction wrote.
PG_FUNCTION_INFO_V1(so_own_queue_ids);
Datum so_own_queue_ids(PG_FUNCTION_ARGS) {
    struct Ids {
        Datum *values;
        int count;
    };
    Ids ids = so::pg::guard([] {
        std::vector<int64> own = so::pg::queued_by_this_transaction();
        Ids result{static_cast<Datum *>(so::pg::alloc(sizeof(Datum) * std::max<size_t>(1, own.size()))), 0};
        for (int64 id : own) result.values[result.count++] = Int64GetDatum(id);
        return result;
    });
    PG_RETURN_ARRAYTYPE_P(construct_array(ids.values, ids.count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

}  // extern "C"
