#include "pg/registry.hpp"

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
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

namespace so::pg {

namespace {

// Plain flags the invalidation callback may touch; everything else is
// rebuilt in a normal C++ context.
bool cache_valid = false;
uint64_t generation = 0;  // counts loads
Oid cached_table_oid = InvalidOid;
Oid cached_schema_oid = InvalidOid;
Oid cached_owner_oid = InvalidOid;
Oid cached_type_oid = InvalidOid;
char *cached_search_path = nullptr;  // in TopMemoryContext

std::shared_ptr<const Registry> &current() {
    static std::shared_ptr<const Registry> registry;
    return registry;
}

// Every write to the registry sends one (the trigger), so this runs in
// the middle of other work: it only marks the cache stale. The table's OID
// stays (reload() looks it up again), so a caller holding it between
// registry_ensure_loaded() and its use never sees InvalidOid.
void invalidate(Datum, Oid relid) {
    if (relid == InvalidOid || relid == cached_table_oid) cache_valid = false;
}

// One row as read from the table, in palloc'd memory.
struct RawRow {
    char *key, *url, *options;
    Oid owner;
    bool owner_is_superuser;
    Acl *acl;  // nullptr: the default
};

// C side: the owner of a relation.
Oid table_owner(Oid relid) {
    Relation rel = table_open(relid, AccessShareLock);
    Oid owner = rel->rd_rel->relowner;
    table_close(rel, AccessShareLock);
    return owner;
}

// Reads every row with a fresh snapshot (the registry is configuration:
// the latest committed state, plus this transaction's own changes).
// Before the 0.3.0 upgrade the table has no owner and acl columns: every
// role may use every backend then, as in 0.2.0. C side: may ereport.
void read_rows(Oid relid, RawRow **out, int *count) {
    Relation rel = table_open(relid, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    AttrNumber owner_attnum = get_attnum(relid, "owner"), acl_attnum = get_attnum(relid, "acl");
    Oid table_owner_oid = rel->rd_rel->relowner;
    Acl *everyone = nullptr;
    if (owner_attnum == InvalidAttrNumber || acl_attnum == InvalidAttrNumber) {
        AclItem item;
        item.ai_grantee = ACL_ID_PUBLIC;
        item.ai_grantor = table_owner_oid;
        ACLITEM_SET_PRIVS_GOPTIONS(item, ACL_SELECT | ACL_UPDATE | ACL_DELETE, ACL_NO_RIGHTS);
        everyone = aclupdate(make_empty_acl(), &item, ACL_MODECHG_ADD, table_owner_oid, DROP_RESTRICT);
    }
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
        RawRow &row = result[n];
        row.key = TextDatumGetCString(key);
        row.url = TextDatumGetCString(url);
        row.options =
            options_null ? pstrdup("{}")
                         : JsonbToCString(nullptr, &DatumGetJsonbP(options)->root, VARSIZE_ANY(DatumGetPointer(options)));
        row.owner = table_owner_oid;
        row.acl = everyone;
        if (owner_attnum != InvalidAttrNumber && acl_attnum != InvalidAttrNumber) {
            bool isnull;
            Datum owner = heap_getattr(tuple, owner_attnum, desc, &isnull);
            if (!isnull) row.owner = DatumGetObjectId(owner);
            Datum acl = heap_getattr(tuple, acl_attnum, desc, &isnull);
            row.acl = isnull ? nullptr : DatumGetAclPCopy(acl);
        }
        row.owner_is_superuser = superuser_arg(row.owner);
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
            char *path = psprintf("pg_catalog, %s, pg_temp", quote_identifier(get_namespace_name(cached_schema_oid)));
            char *kept = MemoryContextStrdup(TopMemoryContext, path);
            if (cached_search_path) pfree(cached_search_path);
            cached_search_path = kept;
        }
    });
    if (relid == InvalidOid)
        throw Error(ErrorKind::NotSupported, "extension \"stored_object\" is not installed in this database");
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
    auto fresh = std::make_shared<Registry>();
    fresh->generation = ++generation;
    const Registry *old = current().get();
    for (int i = 0; i < count; ++i) {
        Backend b;
        b.key = raw[i].key;
        b.url = raw[i].url;
        b.options = raw[i].options;
        b.owner = raw[i].owner;
        b.owner_is_superuser = raw[i].owner_is_superuser;
        if (raw[i].acl) {
            b.default_acl = false;
            b.acl.assign(ACL_DAT(raw[i].acl), ACL_DAT(raw[i].acl) + ACL_NUM(raw[i].acl));
        }
        // Keep the parsed configuration and the Store of a row whose
        // connection settings did not change: the Store holds connections.
        if (old) {
            auto it = old->backends.find(b.key);
            if (it != old->backends.end() && it->second.url == b.url && it->second.options == b.options &&
                it->second.owner_is_superuser == b.owner_is_superuser) {
                b.parsed = it->second.parsed;
                b.store = it->second.store;
            }
        }
        fresh->backends.emplace(b.key, std::move(b));
    }
    current() = std::move(fresh);
}

}  // namespace

void registry_init() { CacheRegisterRelcacheCallback(invalidate, 0); }

void registry_invalidate() { cache_valid = false; }

// The schema the extension was created in (PostgreSQL 15 does not export
// get_extension_schema). C side: may ereport.
static Oid extension_schema(Oid extension) {
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tuple = systable_getnext(scan);
    Oid schema =
        HeapTupleIsValid(tuple) ? reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extnamespace : InvalidOid;
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

std::shared_ptr<const Registry> current_registry() {
    if (!cache_valid || !current()) reload();
    return current();
}

const BackendConfig &BackendRef::config() const {
    if (!backend->parsed) {
        BackendConfig config = parse_backend_config(backend->key, backend->url, backend->options, DataDir);
        config.s3.restricted = !backend->owner_is_superuser;
        config.azure.restricted = !backend->owner_is_superuser;
        backend->parsed = std::make_shared<const BackendConfig>(std::move(config));
    }
    return *backend->parsed;
}

const std::shared_ptr<Store> &BackendRef::store() const {
    if (!backend->store) backend->store = make_store(config());
    return backend->store;
}

const BackendRef &lookup_backend(std::string_view key) {
    // The last backend looked up, for functions called once per row: no
    // string copy, no map search while the key and the registry are the same.
    static BackendRef last;
    if (cache_valid && last.registry && last.registry == current() && last.backend->key == key) return last;
    auto registry = current_registry();
    auto it = registry->backends.find(key);
    if (it == registry->backends.end())
        throw Error(ErrorKind::UndefinedObject, "storage backend " + quoted(key) + " does not exist", {},
                    "Registered backends are listed in so_backend_info.");
    last.backend = &it->second;
    last.registry = std::move(registry);
    return last;
}

std::shared_ptr<Store> lookup_store(std::string_view key) {
    const BackendRef &ref = lookup_backend(key);
    const std::shared_ptr<Store> &store = ref.store();
    store->set_default_timeouts(connect_timeout_ms, request_timeout_ms);
    return store;
}

const std::vector<std::shared_ptr<Store>> &all_stores() {
    // Built once per registry load: so_verify_url asks for it on every row.
    static std::vector<std::shared_ptr<Store>> stores;
    static uint64_t built_for = 0;
    // Held while iterating: a reload started by a catalog access inside
    // make_store cannot free the map under us.
    std::shared_ptr<const Registry> registry = current_registry();
    if (built_for != registry->generation) {
        stores.clear();
        for (const auto &entry : registry->backends) {
            try {
                BackendRef ref{registry, &entry.second};
                stores.push_back(ref.store());
            } catch (const Error &) {
                // A backend that does not parse signs nothing we could verify.
            }
        }
        built_for = registry->generation;
    }
    return stores;
}

Oid extension_schema_oid() { return cached_schema_oid; }
Oid extension_owner_oid() { return cached_owner_oid; }
Oid stored_object_type_oid() { return cached_type_oid; }
Oid registry_relid() { return cached_table_oid; }
uint64_t registry_generation() { return generation; }
const char *pinned_search_path() { return cached_search_path ? cached_search_path : "pg_catalog, pg_temp"; }

void registry_ensure_loaded() {
    if (!cache_valid) guard([] { return current_registry() != nullptr; });
}

}  // namespace so::pg
