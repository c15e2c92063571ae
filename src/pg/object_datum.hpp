// Conversions between stored_object datums and the core's ObjectMeta.
#pragma once

#include "core/object_meta.hpp"
#include "core/packed_meta.hpp"
#include "core/store.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// A palloc'd stored_object datum. C++ side: call inside guard (throws).
Datum make_object_datum(const ObjectMeta &meta);

// The same for a value built from what a store reported: made safe first
// (sanitize_from_store), so it always reads back through stored_object_in.
Datum make_object_datum_from_store(ObjectMeta meta);

// The value of an object a listing reported: key, size, time, etag and a
// content type guessed from the name. Throws Error(Io) for a name no
// stored_object can hold (control characters, invalid UTF-8). C++ side.
Datum listed_object_datum(std::string_view backend, const ListedObject &object);

// The fields of a stored_object datum, read in place. C side: may ereport
// (detoasting, corruption), so call it where no C++ object is alive. The
// view is trivially destructible and valid while the datum is.
PackedView object_view(Datum datum);

}  // namespace so::pg
