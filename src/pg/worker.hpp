// The extension's background worker: carries out committed deletes (and
// the store-side undo of aborted transactions) so that COMMIT never waits
// on a store.
//
// Registered when the library is in shared_preload_libraries: a launcher
// (one per cluster, started once recovery has finished, so a hot standby
// runs none and a promoted one starts it) keeps one flag per database in
// shared memory. A commit that queued deletes sets its database's flag and
// the launcher's latch; the launcher starts a short-lived worker in that
// database, which processes the due rows of the durable queue
// (delete_queue.hpp), records the next due time, and exits (a worker that
// lingered would block DROP DATABASE). At start the launcher visits every
// database once: backlog from before a restart or crash, and the recovery
// of interrupted overwrites (Store::recover). Without preloading there is
// no worker: a WARNING says so once per session, and so_process_pending()
// does the work by hand.
#pragma once

#include <string_view>

#include "pg/postgres.hpp"

namespace so::pg {

// From _PG_init: when preloading, asks for shared memory and registers
// the launcher.
void worker_init();

// Whether the worker's shared memory exists (the library was preloaded).
bool worker_available();

// This database has queued work. Plain flags and a latch: safe in a
// commit callback.
void wake_worker() noexcept;

// Asks the worker to remove an object an aborted transaction wrote to a
// remote store (only if it is still that version: etag, version_id).
// False when it cannot take it (no worker, queue full, too long).
bool hand_undo_to_worker(std::string_view backend, std::string_view key, std::string_view etag,
                         std::string_view version_id) noexcept;

// A WARNING, once per session, when committed deletes have no worker to
// carry them out. C side.
void warn_once_without_worker();

// Whether the worker has nothing left to do now in this database: no
// wake-up pending, no worker running, no undo handed over. C side.
bool worker_idle_here();

// Runs the undo work handed to the worker for this database: what the
// worker does, also reachable from so_process_pending(). C side.
void run_handed_undos();

}  // namespace so::pg
