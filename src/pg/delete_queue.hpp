// The durable queue of deletes (table so_delete_queue, shown with the age
// of each row by the view so_pending_deletes).
//
// A row is written inside the deleting transaction, so it commits or
// rolls back with it; nothing is removed from a store before that commit
// is durable. The extension's background worker (worker.hpp) carries the
// committed rows out after commit and drops them; a removal that fails
// stays queued with attempts, last_error and next_attempt_at (exponential
// backoff). so_process_pending() does the same by hand.
#pragma once

#include "pg/postgres.hpp"

namespace so::pg {

// Inserts a queue row for the stored_object datum. C side: runs SQL as the
// extension's owner, may ereport. Remembers that this transaction queued
// work, so its commit wakes the worker.
void queue_delete(Datum object);

// Same, for an object given by its parts (no datum at hand).
void queue_delete(const char *backend, const char *key, const char *etag, const char *version_id);

// Whether a committed delete of this version of the object waits in the
// queue (the latest snapshot). C side.
bool delete_queued_for(Datum object);

struct QueueCounts {
    int64 deleted = 0, already_gone = 0, kept = 0, failed = 0;
};

// Carries out up to max_rows queued deletes of committed transactions
// (due_only: those whose next attempt is due) with ids above *after_id,
// oldest first, skipping rows other sessions hold and the current
// transaction's own; *after_id becomes the last id seen. Flushes the WAL
// first, so every commit it acts on is durable. Sets *more when rows may
// remain. C side: runs as the extension's owner inside the caller's
// transaction.
QueueCounts process_queued_deletes(int64 max_rows, bool due_only, int64 *after_id, bool *more);

// Seconds until the earliest queued row is due (0 when one is due now),
// or -1 when the queue is empty, as of the latest snapshot; untried_now
// counts rows never tried as due now. C side.
double seconds_until_next_due(bool untried_now = false);

// Whether this transaction queued a delete (so its commit must wake the
// worker); reset at the end of every transaction.
bool transaction_queued_deletes();
void forget_queued_deletes();

}  // namespace so::pg
