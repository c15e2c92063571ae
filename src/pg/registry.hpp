// The session's cache of the backend registry (the so_backends table).
//
// Loaded on first use and kept for the session; a relcache invalidation of
// so_backends (sent by its trigger on every change) marks it stale, so a
// change committed by another session is seen at its next statement.
#pragma once

#include <memory>
#include <string>

#include "core/backend_config.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// Registers the invalidation callback; called once from _PG_init.
void registry_init();

// The parsed configuration of a backend. C++ side (inside guard): throws
// Error(UndefinedObject) for an unknown key; PostgreSQL errors while
// reading the table arrive as PgError.
std::shared_ptr<const BackendConfig> lookup_backend(const std::string &key);

// OID of so_backends, or InvalidOid when the extension is not installed in
// this database. C side: may ereport.
Oid registry_table_oid();

}  // namespace so::pg
