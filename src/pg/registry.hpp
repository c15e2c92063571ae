// The session's cache of the backend registry (the so_backends table).
//
// Loaded on first use and kept for the session; a relcache invalidation of
// so_backends (sent by its trigger on every change, and by GRANTs on it)
// marks it stale, so a change committed by another session is seen at its
// next statement. Each load is an immutable snapshot held by shared_ptr:
// whoever iterates or holds a backend keeps its snapshot alive, so a
// reload (which table_open may trigger at any catalog access) never frees
// what is in use.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend_config.hpp"
#include "core/store.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "utils/acl.h"
}

namespace so::pg {

// One registry row as this session read it.
struct Backend {
    std::string key, url, options;
    Oid owner = InvalidOid;
    // A backend a superuser owns may use the server's own credentials and
    // internal addresses; others are restricted (network_policy.hpp).
    bool owner_is_superuser = false;
    // NULL acl: the default, all privileges to the owner and none to others.
    bool default_acl = true;
    std::vector<AclItem> acl;

    // Built on first use, kept while the row is unchanged.
    mutable std::shared_ptr<const BackendConfig> parsed;
    mutable std::shared_ptr<Store> store;
    // The last privilege checks (the caller and, for row-level access,
    // table owners): role, role-membership generation, result.
    struct Checked {
        Oid role = InvalidOid;
        uint64_t generation = 0;
        AclMode privileges = 0;
    };
    mutable Checked checked[4];
    mutable unsigned next_checked = 0;
};

struct Registry {
    std::map<std::string, Backend, std::less<>> backends;
    uint64_t generation = 0;
};

// A backend together with the snapshot that holds it.
struct BackendRef {
    std::shared_ptr<const Registry> registry;
    const Backend *backend = nullptr;

    // C++ side: parse the configuration / build the Store on first use.
    const BackendConfig &config() const;
    const std::shared_ptr<Store> &store() const;
};

// Registers the invalidation callbacks; called once from _PG_init.
void registry_init();
// Marks the cache stale (roles changed: who is a superuser). Plain flag.
void registry_invalidate();

// The current snapshot, loaded if stale. C++ side (inside guard):
// PostgreSQL errors while reading arrive as PgError.
std::shared_ptr<const Registry> current_registry();

// A backend by key. C++ side: throws Error(UndefinedObject) for an unknown
// key. The reference is to a per-session cache of the last lookup (one
// map search per call only when the key or the registry changed), valid
// until the next call; copy it to keep it.
const BackendRef &lookup_backend(std::string_view key);

// The Store of a backend, with the session's default timeouts applied.
std::shared_ptr<Store> lookup_store(std::string_view key);

// Every registered backend's Store that can be built (for so_verify_url),
// kept until the registry changes. C++ side.
const std::vector<std::shared_ptr<Store>> &all_stores();

// Schema, owner and type of the extension, and the registry table, valid
// after a load in this transaction. C side.
Oid extension_schema_oid();
Oid extension_owner_oid();
Oid stored_object_type_oid();
Oid registry_relid();
// Counts registry loads; changes whenever the registry or its table's
// privileges change. C side.
uint64_t registry_generation();
// "pg_catalog, <extension schema>, pg_temp": the search_path of every
// statement the extension runs. C side.
const char *pinned_search_path();

// Loads the registry if it is stale, so the OIDs above are valid. C side.
void registry_ensure_loaded();

// OID of so_backends, or InvalidOid when the extension is not installed in
// this database. C side: may ereport.
Oid registry_table_oid();

}  // namespace so::pg
