// Heavyweight locks on stored objects, held to the end of the transaction
// (advisory lock tags of our own, so they never meet an application's).
//
//   overwrite lock   (backend, key), exclusive: one transaction at a time
//                    promotes an overwrite of a key, until it ends, so an
//                    abort's restore never meets another commit's version.
//   reference lock   (backend, key, version): a transaction storing an
//                    existing object in a managed column holds it shared;
//                    the commit-time decision to delete an object, and
//                    the worker's delete, hold it exclusive. So a row being
//                    written with a copy of a value is never missed by the
//                    decision that the value is unreferenced.
//
// C side: waiting may ereport (deadlock, cancel).
#pragma once

#include <string_view>

#include "pg/postgres.hpp"

extern "C" {
#include "storage/lockdefs.h"
}

namespace so::pg {

void lock_for_overwrite(std::string_view backend, std::string_view key);

// With wait false, returns false instead of waiting.
bool lock_reference(std::string_view backend, std::string_view key, std::string_view version, bool has_version,
                    LOCKMODE mode, bool wait);

}  // namespace so::pg
