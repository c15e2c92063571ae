// so_orphans() and so_gc(): finding and removing objects
// that no row references (left by a crash between so_put and COMMIT, by
// TRUNCATE or DROP TABLE, or by an application that forgot so_delete).
// so_gc first finishes the overwrites a crash interrupted, so it never
// sweeps away a backup that recovery must put back. For storage
// administrators only: the sweeper reads every table.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/pinned_sql.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

namespace {

// Every column that can hold a stored_object (of the type, a domain over
// it, an array of either), in tables and materialized views, except the
// delete queue's. Every operator schema-qualified: this runs as the
// extension's owner.
constexpr const char *kColumnsQuery = R"SQL(
SELECT c.oid, a.attnum, k.kind OPERATOR(pg_catalog.=) 'array'
  FROM pg_catalog.pg_attribute AS a
  JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) a.attrelid
 CROSS JOIN LATERAL (SELECT %s.so_column_kind(a.atttypid) AS kind) AS k
 WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,m}'::"char"[])
   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND k.kind IS NOT NULL
   AND (c.relpersistence OPERATOR(pg_catalog.<>) 't'
        OR c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())
   AND c.oid OPERATOR(pg_catalog.<>) $1
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
        Oid queue = get_relname_relid("so_delete_queue", so::pg::extension_schema_oid());
        Oid argtypes[1] = {OIDOID};
        Datum args[1] = {ObjectIdGetDatum(queue)};
        if (SPI_execute_with_args(psprintf(kColumnsQuery, schema), 1, argtypes, args, nullptr, true, 0) != SPI_OK_SELECT)
            elog(ERROR, "could not list stored_object columns");
        SPITupleTable *columns = SPI_tuptable;
        uint64 ncolumns = SPI_processed;
        for (uint64 i = 0; i < ncolumns; ++i) {
            bool isnull;
            Oid relid = DatumGetObjectId(SPI_getbinval(columns->vals[i], columns->tupdesc, 1, &isnull));
            AttrNumber attnum = DatumGetInt16(SPI_getbinval(columns->vals[i], columns->tupdesc, 2, &isnull));
            bool is_array = DatumGetBool(SPI_getbinval(columns->vals[i], columns->tupdesc, 3, &isnull));
            char *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
            const char *column = quote_identifier(get_attname(relid, attnum, false));
            char *query = is_array
                              ? psprintf("SELECT %s.so_filename(o) FROM ONLY %s, pg_catalog.unnest(%s::%s.stored_object[]) AS o "
                                         "WHERE %s.so_backend(o) OPERATOR(pg_catalog.=) $1",
                                         schema, table, column, schema, schema)
                              : psprintf("SELECT %s.so_filename(%s) FROM ONLY %s WHERE %s.so_backend(%s) "
                                         "OPERATOR(pg_catalog.=) $1",
                                         schema, column, table, schema, column);
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

// The transaction tag in the name of one of our own staged or backup
// objects (".so-new-TAG-...", ".so-old-TAG-...", ".so-staging/TAG-..."),
// or "" for any other key.
std::string reserved_tag(const std::string &key) {
    size_t slash = key.rfind('/');
    std::string_view base = std::string_view(key).substr(slash == std::string::npos ? 0 : slash + 1);
    std::string_view rest;
    if (base.rfind(".so-new-", 0) == 0 || base.rfind(".so-old-", 0) == 0) rest = base.substr(8);
    else if (slash != std::string::npos && key.compare(0, slash + 1, ".so-staging/") == 0) rest = base;
    else return "";
    return std::string(rest.substr(0, rest.find('-')));
}

struct Found {
    Datum *objects;
    int count;
    char **tags;  // the transaction tags of reserved names, checked below
};

// C side: seconds since the epoch before which an object counts as old.
// Microsecond precision: an object written a moment before this statement
// is older than '0 seconds'.
double cutoff_for(const Interval *older_than) {
    double now = GetCurrentStatementStartTimestamp() / 1e6 +
                 static_cast<double>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
    return now - (older_than->time / 1e6 + older_than->day * 86400.0 + older_than->month * 30 * 86400.0);
}

// C side: the objects of backend under prefix, last modified before
// cutoff, that no row references, sorted by key. A staged or backup object
// of a transaction still running is not an orphan yet.
Found find_orphans(const char *backend, const char *prefix, double cutoff) {
    so::pg::registry_ensure_loaded();
    // Fail on an unknown backend before reading every table.
    so::pg::guard([&] { return so::pg::lookup_store(backend) != nullptr; });
    KeySet referenced = referenced_keys(backend);
    int skipped = 0;
    Found found = so::pg::guard([&] {
        auto store = so::pg::lookup_store(backend);
        // A backup a crash left for recovery is not an orphan: so_gc puts it
        // back (or drops it) before it sweeps, and a dry run says so.
        std::vector<std::string> awaiting = store->backups_awaiting_recovery();
        std::sort(awaiting.begin(), awaiting.end());
        std::vector<so::ListedObject> orphans;
        store->list(prefix, [&](const so::ListedObject &object) {
            if (object.last_modified < cutoff && !contains(referenced, object.key.c_str()) &&
                !std::binary_search(awaiting.begin(), awaiting.end(), object.key))
                orphans.push_back(object);
        });
        std::sort(orphans.begin(), orphans.end(),
                  [](const so::ListedObject &a, const so::ListedObject &b) { return a.key < b.key; });
        size_t n = std::max<size_t>(1, orphans.size());
        Found result{static_cast<Datum *>(so::pg::alloc(sizeof(Datum) * n)), 0,
                     static_cast<char **>(so::pg::alloc(sizeof(char *) * n))};
        for (const auto &object : orphans) {
            Datum value;
            try {
                value = so::pg::listed_object_datum(backend, object);
            } catch (const so::Error &e) {
                if (e.kind() != so::ErrorKind::Io) throw;
                ++skipped;  // a name no stored_object can hold: not ours to judge
                continue;
            }
            std::string tag = reserved_tag(object.key);
            result.tags[result.count] = tag.empty() ? nullptr : so::pg::copy_text_no_raise(tag.c_str());
            result.objects[result.count++] = value;
        }
        return result;
    });
    if (skipped > 0)
        ereport(WARNING, (errcode(ERRCODE_IO_ERROR),
                          errmsg("skipped %d objects of backend \"%s\" whose names are not valid UTF-8 or contain "
                                 "control characters",
                                 skipped, backend)));
    int kept = 0;
    for (int i = 0; i < found.count; ++i)
        if (!found.tags[i] || so::pg::transaction_outcome(found.tags[i]) != so::TransactionOutcome::InProgress)
            found.objects[kept++] = found.objects[i];
    found.count = kept;
    return found;
}

// C side: removes an orphan at once: 'deleted', or 'gone' when something
// else removed it since the listing.
const char *remove_now(Datum object) {
    so::PackedView view = so::pg::object_view(object);
    return so::pg::guard([&] {
        auto store = so::pg::lookup_store(std::string(view.backend));
        std::string key(view.filename);
        store->validate_key(key, true);
        return store->remove(key, nullptr) ? "deleted" : "gone";
    });
}

// The sweeper is for storage administrators; the message names the backend.
void require_admin_for(const char *what, const char *backend) {
    char shown[200], action[300];
    so::message_text_into(shown, sizeof shown, backend, 100);
    snprintf(action, sizeof action, "%s of storage backend \"%s\"", what, shown);
    so::pg::require_storage_admin(action);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_orphans);
Datum so_orphans(PG_FUNCTION_ARGS) {
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *prefix = text_to_cstring(PG_GETARG_TEXT_PP(1));
    double cutoff = cutoff_for(PG_GETARG_INTERVAL_P(2));
    require_admin_for("list orphaned stored objects", backend);
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    Found found = find_orphans(backend, prefix, cutoff);
    for (int i = 0; i < found.count; ++i) {
        bool isnull = false;
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &found.objects[i], &isnull);
    }
    return static_cast<Datum>(0);
}

// so_gc(backend, older_than, dry_run): removes (or lists) the orphans, and
// reports each: 'would delete', 'deleted' or 'gone'.
PG_FUNCTION_INFO_V1(so_gc);
Datum so_gc(PG_FUNCTION_ARGS) {
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    double cutoff = cutoff_for(PG_GETARG_INTERVAL_P(1));
    bool dry_run = PG_GETARG_BOOL(2);
    require_admin_for("remove orphaned stored objects", backend);
    if (!dry_run) {
        PreventCommandIfReadOnly("so_gc()");
        // A backup of an interrupted overwrite is put back, not swept away.
        so::pg::guard([&] { return so::pg::lookup_store(backend) != nullptr; });
        so::pg::recover_interrupted_overwrites(backend);
    }
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    Found found = find_orphans(backend, "", cutoff);
    for (int i = 0; i < found.count; ++i) {
        const char *action = dry_run ? "would delete" : remove_now(found.objects[i]);
        Datum values[2] = {found.objects[i], CStringGetTextDatum(action)};
        bool nulls[2] = {false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return static_cast<Datum>(0);
}

}  // extern "C"
