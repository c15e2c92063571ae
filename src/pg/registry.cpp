#include "pg/registry.hpp"

#include <map>

#include "core/error.hpp"
#include "core/store_factory.hpp"
#include "pg/guard.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/pg_type.h"
}

namespace so::pg {

static Oid table_owner(Oid relid);

namespace {

struct Row {
    std::string url;
    std::string options;
    std::shared_ptr<const BackendConfig> parsed;  // parsed on first lookup
    std::shared_ptr<Store> store;                 // built on first use
};

// Plain flags the invalidation callback may touch; everything else is
// rebuilt by lookup_backend in a normal C++ context.
bool cache_valid = false;
uint64_t generation = 0;  // counts reloads
Oid cached_table_oid = InvalidOid;
Oid cached_schema_oid = InvalidOid;
Oid cached_owner_oid = InvalidOid;
Oid cached_type_oid = InvalidOid;

std::map<std::string, Row> &rows() {
    static std::map<std::string, Row> cache;
    return cache;
}

void invalidate(Datum, Oid relid) {
    if (relid == InvalidOid || relid == cached_table_oid) {
        cache_valid = false;
        if (relid == cached_table_oid) cached_table_oid = InvalidOid;  // may be dropped
    }
}

// One row as read from the table, in palloc'd memory.
struct RawRow {
    char *key, *url, *options;
};

// Reads every row with a fresh snapshot (the registry is configuration:
// the latest committed state, plus this transaction's own changes).
// C side: may ereport.
void read_rows(Oid relid, RawRow **out, int *count) {
    Relation rel = table_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    // A parallel worker cannot take a new snapshot: it reads with the
    // leader's, which is no older than the statement.
    Snapshot snapshot = RegisterSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    int capacity = 8, n = 0;
    RawRow *result = static_cast<RawRow *>(palloc(sizeof(RawRow) * capacity));
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        bool key_null, url_null, options_null;
        Datum key = heap_getattr(tuple, 1, desc, &key_null);
        Datum url = heap_getattr(tuple, 2, desc, &url_null);
        Datum options = heap_getattr(tuple, 3, desc, &options_null);
        if (key_null || url_null) continue;  // the trigger forbids these
        if (n == capacity) {
            capacity *= 2;
            result = static_cast<RawRow *>(repalloc(result, sizeof(RawRow) * capacity));
        }
        result[n].key = TextDatumGetCString(key);
        result[n].url = TextDatumGetCString(url);
        result[n].options =
            options_null ? pstrdup("{}")
                         : JsonbToCString(nullptr, &DatumGetJsonbP(options)->root, VARSIZE_ANY(DatumGetPointer(options)));
        ++n;
    }
    table_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, AccessShareLock);
    *out = result;
    *count = n;
}

void reload() {
    Oid relid = InvalidOid;
    pg_call([&] {
        relid = registry_table_oid();
        if (relid != InvalidOid) {
            cached_schema_oid = get_rel_namespace(relid);
            cached_owner_oid = table_owner(relid);
            cached_type_oid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("stored_object"),
                                              ObjectIdGetDatum(cached_schema_oid));
        }
    });
    if (relid == InvalidOid)
        throw Error(ErrorKind::NotSupported,
                    "extension \"stored_object\" is not installed in this database");
    // Mark valid before reading: an invalidation that arrives while we read
    // (taking the lock processes them) marks it stale again.
    cache_valid = true;
    cached_table_oid = relid;
    RawRow *raw = nullptr;
    int count = 0;
    try {
        pg_call([&] { read_rows(relid, &raw, &count); });
    } catch (...) {
        cache_valid = false;
        throw;
    }
    std::map<std::string, Row> fresh;
    for (int i = 0; i < count; ++i) {
        Row row;
        row.url = raw[i].url;
        row.options = raw[i].options;
        auto old = rows().find(raw[i].key);
        // Keep a parsed entry whose row did not change: it may hold caches.
        if (old != rows().end() && old->second.url == row.url && old->second.options == row.options) {
            row.parsed = old->second.parsed;
            row.store = old->second.store;
        }
        fresh.emplace(raw[i].key, std::move(row));
    }
    rows().swap(fresh);
    ++generation;
}

}  // namespace

void registry_init() { CacheRegisterRelcacheCallback(invalidate, 0); }

// C side: the owner of a relation.
static Oid table_owner(Oid relid) {
    Relation rel = table_open(relid, AccessShareLock);
    Oid owner = rel->rd_rel->relowner;
    table_close(rel, AccessShareLock);
    return owner;
}

// The schema the extension was created in (PostgreSQL 15 does not export
// get_extension_schema). C side: may ereport.
static Oid extension_schema(Oid extension) {
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(extension));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid schema = HeapTupleIsValid(tuple)
                     ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extnamespace
                     : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return schema;
}

Oid registry_table_oid() {
    Oid extension = get_extension_oid("stored_object", true);
    if (extension == InvalidOid) return InvalidOid;
    Oid schema = extension_schema(extension);
    return schema == InvalidOid ? InvalidOid : get_relname_relid("so_backends", schema);
}

static Row &lookup_row(const std::string &key) {
    if (!cache_valid) reload();
    auto it = rows().find(key);
    if (it == rows().end())
        throw Error(ErrorKind::UndefinedObject, "storage backend " + quoted(key) + " does not exist",
                    {}, "Registered backends are listed in so_backend_info.");
    Row &row = it->second;
    if (!row.parsed)
        row.parsed = std::make_shared<const BackendConfig>(
            parse_backend_config(key, row.url, row.options, DataDir));
    return row;
}

std::shared_ptr<const BackendConfig> lookup_backend(const std::string &key) { return lookup_row(key).parsed; }

std::shared_ptr<Store> lookup_store(std::string_view key) {
    // The last store looked up, for functions called once per row: no
    // string copy, no map search while the registry is unchanged.
    static std::string last_key;
    static std::shared_ptr<Store> last_store;
    static uint64_t last_generation = 0;
    if (!cache_valid || last_generation != generation || !last_store || key != last_key) {
        if (!cache_valid) reload();
        std::string owned(key);
        Row &row = lookup_row(owned);
        if (!row.store) row.store = make_store(*row.parsed);
        last_key = std::move(owned);
        last_store = row.store;
        last_generation = generation;
    }
    last_store->set_default_timeouts(connect_timeout_ms, request_timeout_ms);
    return last_store;
}

const std::vector<std::shared_ptr<Store>> &all_stores() {
    // Built once per registry load: so_verify_url asks for it on every row.
    static std::vector<std::shared_ptr<Store>> stores;
    static uint64_t built_for = 0;
    if (!cache_valid) reload();
    if (built_for != generation) {
        stores.clear();
        for (auto &entry : rows()) {
            try {
                Row &row = lookup_row(entry.first);
                if (!row.store) row.store = make_store(*row.parsed);
                stores.push_back(row.store);
            } catch (const Error &) {
                // A backend that does not parse signs nothing we could verify.
            }
        }
        built_for = generation;
    }
    return stores;
}

Oid extension_schema_oid() { return cached_schema_oid; }
Oid stored_object_type_oid() { return cached_type_oid; }

void registry_ensure_loaded() {
    if (!cache_valid) guard([] { reload(); });
}
Oid extension_owner_oid() { return cached_owner_oid; }

}  // namespace so::pg
