#include "pg/worker.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "core/object_meta.hpp"
#include "pg/delete_queue.hpp"
#include "pg/guard.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

namespace so::pg {

namespace {

constexpr int kSlots = 64;            // databases with work at one time
constexpr int kUndoItems = 1024;      // aborted writes waiting for their undo (~2.6 MB)
constexpr int kMaxWorkers = 2;        // databases served at once
constexpr int kBatch = 100;           // queue rows per worker transaction
constexpr long kRescanMs = 5 * 60 * 1000;  // look at every database again
constexpr long kRestartDelayMs = 1000;     // between two workers of one database
constexpr long kFailedRetryMs = 10 * 1000; // after a worker failed

struct DatabaseSlot {
    Oid database;
    bool wake;        // work arrived since the last worker looked
    bool running;     // a worker serves it now
    bool recovered;   // a worker ran here since the launcher started
    TimestampTz due;  // the next queued row's retry time; 0: none
};

struct UndoItem {
    Oid database;  // InvalidOid: free
    char backend[64];
    char key[1200];
    char etag[256];
    char version_id[1100];
};

struct Shared {
    slock_t mutex;
    Latch *launcher_latch;
    DatabaseSlot slots[kSlots];
    UndoItem undo[kUndoItems];
};

Shared *shared = nullptr;
shmem_request_hook_type previous_request = nullptr;
shmem_startup_hook_type previous_startup = nullptr;

void request_shmem() {
    if (previous_request) previous_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(Shared)));
}

void startup_shmem() {
    if (previous_startup) previous_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = static_cast<Shared *>(ShmemInitStruct("stored_object worker", sizeof(Shared), &found));
    if (!found) {
        memset(shared, 0, sizeof(Shared));
        SpinLockInit(&shared->mutex);
    }
    LWLockRelease(AddinShmemInitLock);
}

// The slot of a database, made if there is none. Under the mutex.
DatabaseSlot *slot_for(Oid database, bool create) {
    DatabaseSlot *free_slot = nullptr;
    for (auto &slot : shared->slots) {
        if (slot.database == database) return &slot;
        if (slot.database == InvalidOid && !free_slot) free_slot = &slot;
    }
    if (!create || !free_slot) return nullptr;
    *free_slot = DatabaseSlot{database, false, false, false, 0};
    return free_slot;
}

bool copy_bounded(char *out, size_t capacity, std::string_view in) {
    if (in.size() >= capacity) return false;
    memcpy(out, in.data(), in.size());
    out[in.size()] = '\0';
    return true;
}

void set_launcher_latch() {
    Latch *latch = shared->launcher_latch;
    if (latch) SetLatch(latch);
}

// ---- the per-database worker -------------------------------------------------

// Marks the database served or done; done also means its crash recovery
// ran (the first worker of a launcher's lifetime does it).
void mark_slot(Oid database, bool running, TimestampTz due) {
    SpinLockAcquire(&shared->mutex);
    if (DatabaseSlot *slot = slot_for(database, true)) {
        slot->running = running;
        if (!running) {
            slot->due = due;
            slot->recovered = true;
        }
    }
    SpinLockRelease(&shared->mutex);
}

// Clears the database's wake flag; returns whether the worker must still
// run the crash recovery of this launcher's lifetime.
bool take_wake_flag(Oid database) {
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot *slot = slot_for(database, true);
    bool recover = slot && !slot->recovered;
    if (slot) slot->wake = false;
    SpinLockRelease(&shared->mutex);
    return recover;
}

}  // namespace

void run_handed_undos() {
    if (!shared) return;
    for (int i = 0; i < kUndoItems; ++i) {
        UndoItem item;
        SpinLockAcquire(&shared->mutex);
        bool mine = shared->undo[i].database == MyDatabaseId;
        if (mine) {
            item = shared->undo[i];
            shared->undo[i].database = InvalidOid;
        }
        SpinLockRelease(&shared->mutex);
        if (!mine) continue;
        // Only while it is still the aborted transaction's version; a
        // failure goes to the durable queue, to be retried.
        bool done = guard([&] {
            try {
                auto store = lookup_store(item.backend);
                ObjectMeta expected;
                if (*item.etag) expected.etag = item.etag;
                if (*item.version_id) expected.version_id = item.version_id;
                store->remove(item.key, &expected);
                return true;
            } catch (const Error &e) {
                if (e.kind() == ErrorKind::Canceled) throw;
                return false;
            }
        });
        if (!done) queue_delete(item.backend, item.key, item.etag, item.version_id);
    }
}

void worker_init() {
    if (!process_shared_preload_libraries_in_progress) return;
    previous_request = shmem_request_hook;
    shmem_request_hook = request_shmem;
    previous_startup = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;

    BackgroundWorker launcher;
    memset(&launcher, 0, sizeof launcher);
    snprintf(launcher.bgw_name, BGW_MAXLEN, "stored_object launcher");
    snprintf(launcher.bgw_type, BGW_MAXLEN, "stored_object launcher");
    launcher.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    launcher.bgw_start_time = BgWorkerStart_RecoveryFinished;  // none on a standby
    launcher.bgw_restart_time = 10;
    snprintf(launcher.bgw_library_name, BGW_MAXLEN, "stored_object");
    snprintf(launcher.bgw_function_name, BGW_MAXLEN, "so_launcher_main");
    RegisterBackgroundWorker(&launcher);
}

bool worker_available() { return shared != nullptr; }

void wake_worker() noexcept {
    if (!shared) return;
    SpinLockAcquire(&shared->mutex);
    if (DatabaseSlot *slot = slot_for(MyDatabaseId, true)) slot->wake = true;
    SpinLockRelease(&shared->mutex);
    set_launcher_latch();
}

bool hand_undo_to_worker(std::string_view backend, std::string_view key, std::string_view etag,
                         std::string_view version_id) noexcept {
    if (!shared) return false;
    bool taken = false;
    SpinLockAcquire(&shared->mutex);
    for (auto &item : shared->undo) {
        if (item.database != InvalidOid) continue;
        if (copy_bounded(item.backend, sizeof item.backend, backend) && copy_bounded(item.key, sizeof item.key, key) &&
            copy_bounded(item.etag, sizeof item.etag, etag) &&
            copy_bounded(item.version_id, sizeof item.version_id, version_id)) {
            item.database = MyDatabaseId;
            taken = true;
        }
        break;
    }
    if (taken)
        if (DatabaseSlot *slot = slot_for(MyDatabaseId, true)) slot->wake = true;
    SpinLockRelease(&shared->mutex);
    if (taken) set_launcher_latch();
    return taken;
}

bool worker_idle_here() {
    if (!shared) return true;
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot *slot = slot_for(MyDatabaseId, false);
    bool idle = !slot || (!slot->wake && !slot->running);
    for (const auto &item : shared->undo) idle = idle && item.database != MyDatabaseId;
    SpinLockRelease(&shared->mutex);
    return idle;
}

void warn_once_without_worker() {
    static bool warned = false;
    if (shared || warned) return;
    warned = true;
    ereport(WARNING, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("stored_object is not in shared_preload_libraries: committed deletes wait in "
                             "so_pending_deletes until so_process_pending() runs"),
                      errhint("Add stored_object to shared_preload_libraries and restart the server to have "
                              "its background worker carry them out.")));
}

}  // namespace so::pg

using namespace so::pg;

extern "C" {

PGDLLEXPORT void so_database_worker_main(Datum arg);
PGDLLEXPORT void so_launcher_main(Datum arg);

void so_database_worker_main(Datum arg) {
    Oid database = DatumGetObjectId(arg);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
    pgstat_report_appname("stored_object worker");
    mark_slot(database, true, 0);
    TimestampTz due = 0;
    bool recovered = false;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        bool recover = take_wake_flag(database) && !recovered;
        recovered = true;
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        if (registry_table_oid() == InvalidOid) {  // the extension is not installed here
            PopActiveSnapshot();
            CommitTransactionCommand();
            break;
        }
        pgstat_report_activity(STATE_RUNNING, "carrying out committed deletes");
        if (recover) recover_interrupted_overwrites("");
        run_handed_undos();
        bool more = false;
        int64 after_id = 0;
        process_queued_deletes(kBatch, true, &after_id, &more);
        // The launcher looks again within the hour whatever the queue says.
        double next = more ? 0 : std::min(seconds_until_next_due(), 3600.0);
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
        if (more) continue;
        due = next < 0 ? 0 : TimestampTzPlusMilliseconds(GetCurrentTimestamp(), static_cast<int64>(next * 1000) + 1);
        break;
    }
    mark_slot(database, false, due);
    set_launcher_latch();
    proc_exit(0);
}

namespace {

// Every database a worker could connect to: not a template (a connection
// would block CREATE DATABASE from it), connections allowed, valid.
void visit_every_database() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
        if (!db->datallowconn || db->datistemplate || db->datconnlimit == DATCONNLIMIT_INVALID_DB) continue;
        SpinLockAcquire(&shared->mutex);
        if (DatabaseSlot *slot = slot_for(db->oid, true)) slot->wake = true;
        SpinLockRelease(&shared->mutex);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
}

// Whether a worker may connect to the database: it still exists and takes
// connections. Dropped databases leave slots behind otherwise, and their
// workers would fail at connect again and again.
bool database_usable(Oid database) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    bool usable = false;
    HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(database));
    if (HeapTupleIsValid(tuple)) {
        auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
        usable = db->datallowconn && !db->datistemplate && db->datconnlimit != DATCONNLIMIT_INVALID_DB;
        ReleaseSysCache(tuple);
    }
    CommitTransactionCommand();
    return usable;
}

struct Running {
    Oid database = InvalidOid;
    BackgroundWorkerHandle *handle = nullptr;
    TimestampTz started = 0;
};

bool start_worker(Oid database, Running &running) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    snprintf(worker.bgw_name, BGW_MAXLEN, "stored_object worker for database %u", database);
    snprintf(worker.bgw_type, BGW_MAXLEN, "stored_object worker");
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "stored_object");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "so_database_worker_main");
    worker.bgw_main_arg = ObjectIdGetDatum(database);
    worker.bgw_notify_pid = MyProcPid;
    if (!RegisterDynamicBackgroundWorker(&worker, &running.handle)) return false;
    running.database = database;
    running.started = GetCurrentTimestamp();
    return true;
}

}  // namespace

void so_launcher_main(Datum) {
    pqsignal(SIGTERM, die);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname("stored_object launcher");
    SpinLockAcquire(&shared->mutex);
    shared->launcher_latch = MyLatch;
    for (auto &slot : shared->slots) slot.recovered = slot.running = false;
    SpinLockRelease(&shared->mutex);

    Running running[kMaxWorkers];
    TimestampTz last_scan = 0;
    for (;;) {
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        TimestampTz now = GetCurrentTimestamp();
        if (last_scan == 0 || TimestampDifferenceExceeds(last_scan, now, kRescanMs)) {
            visit_every_database();
            last_scan = now;
        }
        // Workers that have finished.
        for (auto &r : running) {
            pid_t pid;
            if (r.handle && GetBackgroundWorkerPid(r.handle, &pid) == BGWH_STOPPED) {
                pfree(r.handle);
                SpinLockAcquire(&shared->mutex);
                if (DatabaseSlot *slot = slot_for(r.database, false); slot && slot->running) {
                    // It ended without marking its slot: it failed (its error
                    // is in the server log). Try again later, not at once.
                    slot->running = false;
                    slot->wake = false;
                    slot->due = TimestampTzPlusMilliseconds(now, kFailedRetryMs);
                }
                SpinLockRelease(&shared->mutex);
                r = Running{};
            }
        }
        // Databases whose work is due, and free places to serve them.
        long wait_ms = kRescanMs;
        for (int i = 0; i < kMaxWorkers; ++i) {
            Running &r = running[i];
            if (r.handle) continue;
            Oid chosen = InvalidOid;
            SpinLockAcquire(&shared->mutex);
            for (auto &slot : shared->slots) {
                if (slot.database == InvalidOid || slot.running) continue;
                bool served = false;
                for (auto &other : running) served |= other.handle && other.database == slot.database;
                if (served) continue;
                if (slot.wake || (slot.due != 0 && slot.due <= now)) {
                    chosen = slot.database;
                    slot.running = true;
                    break;
                }
                if (slot.due == 0 && !slot.wake) slot.database = InvalidOid;  // nothing left: free the slot
            }
            SpinLockRelease(&shared->mutex);
            if (chosen == InvalidOid) break;
            if (!database_usable(chosen)) {
                SpinLockAcquire(&shared->mutex);
                if (DatabaseSlot *slot = slot_for(chosen, false)) slot->database = InvalidOid;
                SpinLockRelease(&shared->mutex);
                --i;  // this place is still free: the next database
                continue;
            }
            if (!start_worker(chosen, r)) {
                SpinLockAcquire(&shared->mutex);
                if (DatabaseSlot *slot = slot_for(chosen, false)) slot->running = false;
                SpinLockRelease(&shared->mutex);
                wait_ms = kRestartDelayMs;  // no background worker slot free: try again soon
                break;
            }
        }
        // Sleep until the earliest retry, a wake-up, or the next scan.
        SpinLockAcquire(&shared->mutex);
        for (auto &slot : shared->slots) {
            if (slot.database == InvalidOid || slot.running) continue;
            if (slot.wake) wait_ms = std::min(wait_ms, kRestartDelayMs);
            if (slot.due != 0) {
                long ms = slot.due <= now ? 0 : static_cast<long>((slot.due - now) / 1000);
                wait_ms = std::min(wait_ms, std::max(ms, 10L));
            }
        }
        SpinLockRelease(&shared->mutex);
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms, PG_WAIT_EXTENSION);
    }
}

}  // extern "C"
