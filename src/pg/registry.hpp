// The session's cache of the backend registry (the so_backends table).
//
// Loaded on first use and kept for the session; a relcache invalidation of
// so_backends (sent by its trigger on every change) marks it stale, so a
// change committed by another session is seen at its next statement.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend_config.hpp"
#include "core/store.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// Registers the invalidation callback; called once from _PG_init.
void registry_init();

// The parsed configuration of a backend. C++ side (inside guard): throws
// Error(UndefinedObject) for an unknown key; PostgreSQL errors while
// reading the table arrive as PgError.
std::shared_ptr<const BackendConfig> lookup_backend(const std::string &key);

// The Store of a backend, built once per session from its configuration.
std::shared_ptr<Store> lookup_store(std::string_view key);

// Every registered backend's Store (for so_verify_url), kept until the
// registry changes. C++ side.
const std::vector<std::shared_ptr<Store>> &all_stores();

// Schema and owner of the extension's tables, valid after a lookup in
// this transaction. C side.
Oid extension_schema_oid();
Oid extension_owner_oid();
Oid stored_object_type_oid();

// Loads the registry if it is stale, so the OIDs above are valid. C side.
void registry_ensure_loaded();

// OID of so_backends, or InvalidOid when the extension is not installed in
// this database. C side: may ereport.
Oid registry_table_oid();

}  // namespace so::pg
