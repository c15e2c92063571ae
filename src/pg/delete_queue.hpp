// so_pending_deletes: the durable record of deletes. A row is written in
// the deleting transaction, so it commits or rolls back with it; after
// commit the object is removed at once, and the row is dropped by this
// session's next call (or by so_process_pending() if the removal failed or
// the session ended first).
#pragma once

#include <vector>

#include "pg/postgres.hpp"

namespace so::pg {

// Inserts a queue row for the stored_object datum; returns its id.
// C side: runs SQL as the extension's owner, may ereport.
int64 queue_delete(Datum object, Oid object_type);

// Remembers a queue row whose object was removed after commit. Plain data
// only: safe in a commit callback.
void note_delete_completed(int64 queue_id);

// Drops the rows of completed deletes. C side; call at the start of a
// function that writes, in a normal transaction state.
void drop_completed_deletes();

}  // namespace so::pg
