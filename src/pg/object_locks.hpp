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
// A lock per object would exhaust the shared lock table in a transaction
// that deletes or inserts tens of thousands of managed rows. So locks form
// a two-level hierarchy, like a table's and its rows': an object lock is
// preceded by an intent lock on its backend (RowShareLock before a shared
// object lock, RowExclusiveLock before an exclusive one), and a
// transaction that has taken kEscalateAfter object locks of one kind on a
// backend takes the backend's lock itself (ShareLock or ExclusiveLock)
// instead of more object locks. The conflict table of those modes makes a
// backend lock conflict with exactly the object locks it covers.
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

// Every key of the backend at once, exclusive (crash recovery of overwrites).
void lock_backend_overwrites(std::string_view backend);

// With wait false, returns false instead of waiting.
bool lock_reference(std::string_view backend, std::string_view key, std::string_view version, bool has_version,
                    LOCKMODE mode, bool wait);

}  // namespace so::pg
