#include "pg/transaction.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/packed_meta.hpp"
#include "pg/delete_queue.hpp"
#include "pg/guard.hpp"
#include "pg/managed_columns.hpp"
#include "pg/object_datum.hpp"
#include "pg/object_locks.hpp"
#include "pg/pinned_sql.hpp"
#include "pg/registry.hpp"
#include "pg/settings.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "replication/message.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "storage/lock.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"
#include "utils/xid8.h"
}

namespace so::pg {

namespace {

struct Action {
    enum class Kind { Created, Staged, Released };
    Kind kind;
    SubTransactionId subxact = InvalidSubTransactionId;
    std::shared_ptr<Store> store;  // Created, Staged
    ObjectMeta meta;               // Created, Staged
    std::string handle;            // Staged: the staged version
    Backup backup;                 // Staged: what promote() replaced
    bool promoted = false;         // Staged
    std::string packed;            // Released: the stored_object value
    std::string identity;          // backend NUL key
};

std::vector<Action> &actions() {
    static std::vector<Action> list;
    return list;
}

// How many live actions name each backend and key: the written or
// released objects this transaction may store in a managed column.
std::unordered_map<std::string, int> &touched() {
    static std::unordered_map<std::string, int> counts;
    return counts;
}

std::string identity_of(std::string_view backend, std::string_view key) {
    std::string id(backend);
    id += '\0';
    id.append(key);
    return id;
}

void add(Action action) {
    action.subxact = GetCurrentSubTransactionId();
    ++touched()[action.identity];
    actions().push_back(std::move(action));
}

void forget(const Action &action) noexcept {
    auto it = touched().find(action.identity);
    if (it != touched().end() && --it->second <= 0) touched().erase(it);
}

// Warnings gathered in a callback, reported once its C++ work is done.
// Fixed buffers: nothing here allocates or throws, so it is safe when the
// abort was caused by running out of memory.
class Warnings {
public:
    void add(const char *what, const Action &a, const char *why) noexcept {
        if (count_ == kMax) return;
        char key[240], backend[80], reason[400];
        message_text_into(key, sizeof key, a.meta.filename, 200);
        message_text_into(backend, sizeof backend, a.store ? a.store->backend_key() : std::string_view(), 63);
        message_text_into(reason, sizeof reason, why ? why : "out of memory", 300);
        snprintf(messages_[count_++], kLength, "%s stored object \"%s\" in backend \"%s\": %s", what, key, backend,
                 reason);
    }
    void report() {
        for (int i = 0; i < count_; ++i)
            ereport(WARNING, (errcode(ERRCODE_IO_ERROR), errmsg_internal("%s", messages_[i])));
        count_ = 0;
    }

private:
    static constexpr int kMax = 16;
    static constexpr size_t kLength = 1024;
    char messages_[kMax][kLength];
    int count_ = 0;
};

Warnings &warnings() {
    static Warnings w;
    return w;
}

// The worker removes a network store's object; without one, it is done here.
// A network store's undo is the worker's: no network I/O in an abort
// callback (locks are held, the client waits). Returns false when the
// worker cannot take it (not preloaded, or its undo list is full): the
// object then stays, an orphan for so_gc.
bool undo_remotely(Store &store, const std::string &key, const ObjectMeta *expected) {
    std::string etag = expected && expected->etag ? *expected->etag : "";
    std::string version = expected && expected->version_id ? *expected->version_id : "";
    return hand_undo_to_worker(store.backend_key(), key, etag, version);
}

constexpr const char *kUndoLeft = "the background worker could not take its undo (not in shared_preload_libraries, "
                                  "or busy); so_gc removes it";

// Undoes one action of an aborted (sub)transaction; never throws.
void undo(Action &a) noexcept {
    try {
        switch (a.kind) {
            case Action::Kind::Created:
                // Only if it is still ours: another transaction may have
                // replaced it since.
                if (!a.store->uses_network()) a.store->remove(a.meta.filename, &a.meta);
                else if (!undo_remotely(*a.store, a.meta.filename, &a.meta))
                    warnings().add("left the aborted", a, kUndoLeft);
                break;
            case Action::Kind::Staged:
                if (a.promoted && a.backup.restorable) {
                    if (!a.store->restore(a.backup))
                        warnings().add("did not put back the previous version of", a,
                                       "the key was replaced by another transaction since");
                } else if (a.store->uses_network()) {
                    if (!undo_remotely(*a.store, a.handle, nullptr))  // the staged object
                        warnings().add("left the staged version of aborted", a, kUndoLeft);
                } else {
                    a.store->discard(a.meta.filename, a.handle);
                }
                break;
            case Action::Kind::Released:
                break;  // nothing was queued yet
        }
    } catch (const std::exception &e) {
        warnings().add("could not undo the write of", a, e.what());
    } catch (...) {
        warnings().add("could not undo the write of", a, nullptr);
    }
}

// Whether a managed row references the object at commit: as the owner of
// the extension (every row counts), with the latest snapshot plus this
// transaction's own changes. C side.
bool referenced_at_commit(Datum object) {
    int count = 0;
    ManagedColumn *columns = managed_columns(&count);
    bool found = false;
    CommandCounterIncrement();
    as_extension_owner([&] {
        SPI_connect();
        for (int i = 0; i < count && !found; ++i) found = column_references(columns[i], object, GetLatestSnapshot());
        SPI_finish();
    });
    return found;
}

int compare_actions(const void *a, const void *b) {
    const Action &x = actions()[*static_cast<const int *>(a)];
    const Action &y = actions()[*static_cast<const int *>(b)];
    int c = x.identity.compare(y.identity);
    return c != 0 ? c : x.packed.compare(y.packed);
}

// The indexes of the actions of a kind, sorted by object (so two
// transactions take the locks below in the same order). C side.
int *sorted_actions(Action::Kind kind, int *count) {
    auto &list = actions();
    int *order = static_cast<int *>(palloc(sizeof(int) * (list.size() + 1)));
    int n = 0;
    for (size_t i = 0; i < list.size(); ++i)
        if (list[i].kind == kind && !list[i].promoted) order[n++] = static_cast<int>(i);
    qsort(order, static_cast<size_t>(n), sizeof(int), compare_actions);
    *count = n;
    return order;
}

// Objects that left managed rows: queued for deletion unless still
// referenced now that every statement of the transaction has run. The
// reference lock waits for transactions storing a copy of the object, so
// their rows count too. C side.
void resolve_released() {
    int n;
    int *order = sorted_actions(Action::Kind::Released, &n);
    for (int k = 0; k < n; ++k) {
        const Action &a = actions()[order[k]];
        if (k > 0 && a.packed == actions()[order[k - 1]].packed) continue;
        size_t size = a.packed.size();
        auto *value = static_cast<struct varlena *>(palloc(VARHDRSZ + size));
        SET_VARSIZE(value, VARHDRSZ + size);
        memcpy(VARDATA(value), a.packed.data(), size);
        Datum object = PointerGetDatum(value);
        PackedView view = object_view(object);
        lock_reference(view.backend, view.filename, view.version_id, view.has_version_id, ExclusiveLock, true);
        if (!referenced_at_commit(object)) queue_delete(object);
    }
    if (transaction_queued_deletes()) warn_once_without_worker();
}

#ifdef SO_TEST_HOOKS
// Tests stop a committing backend here (and may kill it) by holding the
// advisory lock named by stored_object.test_pause_after_promote.
void test_pause_after_promote() {
    if (test_pause_after_promote_key == 0) return;
    Datum key = Int64GetDatum(test_pause_after_promote_key);
    DirectFunctionCall1(pg_advisory_lock_shared_int8, key);
    DirectFunctionCall1(pg_advisory_unlock_shared_int8, key);
}
#endif

// Just before commit, while an error can still abort the transaction:
// staged versions replace the objects at their keys, in key order (two
// transactions overwriting the same keys wait for each other, never
// deadlock). C side.
void promote_staged() {
    int n;
    int *order = sorted_actions(Action::Kind::Staged, &n);
    if (n == 0) return;
    const char *tag = transaction_tag();
    // The journal and staged names carry this transaction's id: it must
    // be on disk before the first external change, or a crash before the
    // commit record would hand the same id to a later transaction, whose
    // outcome recovery would then follow. A transactional logical message
    // (at any wal_level) carries it; redo advances the next id past it.
    XLogFlush(LogLogicalMessage("stored_object", "", 0, true));
    for (int k = 0; k < n; ++k) {
        lock_for_overwrite(actions()[order[k]].store->backend_key(), actions()[order[k]].meta.filename);
        bool network = guard([&] {
            Action &a = actions()[order[k]];
            a.backup = a.store->promote(a.meta.filename, a.handle, tag);
            a.promoted = true;
            return !a.backup.restorable;
        });
        // What a network store's promotion leaves (the staged object) is
        // removed by the worker once this commit is durable.
        if (network) {
            Action &a = actions()[order[k]];
            queue_delete(a.store->backend_key().c_str(), a.backup.handle.c_str(), "", "");
        }
    }
#ifdef SO_TEST_HOOKS
    test_pause_after_promote();
#endif
}

void pre_commit() {
    PushActiveSnapshot(GetTransactionSnapshot());
    resolve_released();
    promote_staged();
    PopActiveSnapshot();
}

// After the commit record: drop the local backups (once the commit is
// durable: with synchronous_commit = off a crash could still undo it, and
// recovery then needs the backup) and wake the worker.
void end_of_transaction(bool commit) {
    {
        auto &list = actions();
        if (commit) {
            // A promoted overwrite changed the store already: with
            // synchronous_commit = off, COMMIT must not return before the
            // commit is durable (local backups are dropped only then, and S3
            // cannot undo at all).
            bool promoted = std::any_of(list.begin(), list.end(), [](const Action &a) {
                return a.kind == Action::Kind::Staged && a.promoted;
            });
            if (promoted) XLogFlush(XactLastCommitEnd);
            for (Action &a : list) {
                if (a.kind != Action::Kind::Staged || !a.promoted || !a.backup.restorable) continue;
                try {
                    a.store->drop_backup(a.backup);
                } catch (const std::exception &e) {
                    warnings().add("could not remove the previous version of", a, e.what());
                }
            }
            if (transaction_queued_deletes()) wake_worker();
        } else {
            for (auto it = list.rbegin(); it != list.rend(); ++it) undo(*it);
        }
        list.clear();
        list.shrink_to_fit();
        touched().clear();
        forget_queued_deletes();
    }
    warnings().report();
}

void end_of_subtransaction(SubTransactionId sub, SubTransactionId parent, bool commit) {
    {
        auto &list = actions();
        if (commit) {
            for (Action &a : list)
                if (a.subxact == sub) a.subxact = parent;
        } else {
            for (auto it = list.rbegin(); it != list.rend(); ++it)
                if (it->subxact == sub) {
                    undo(*it);
                    forget(*it);
                }
            list.erase(std::remove_if(list.begin(), list.end(), [sub](const Action &a) { return a.subxact == sub; }),
                       list.end());
        }
    }
    warnings().report();
}

void on_xact(XactEvent event, void *) {
    bool work = !actions().empty() || transaction_queued_deletes();
    if (!work) return;
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            pre_commit();
            break;
        case XACT_EVENT_COMMIT:
            end_of_transaction(true);
            break;
        case XACT_EVENT_ABORT:
            end_of_transaction(false);
            break;
        case XACT_EVENT_PRE_PREPARE:
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("cannot PREPARE a transaction that has put or deleted stored objects"),
                            errdetail("Files are written and removed by the session itself, which a prepared "
                                      "transaction outlives.")));
            break;
        default:
            break;
    }
}

void on_subxact(SubXactEvent event, SubTransactionId sub, SubTransactionId parent, void *) {
    if (actions().empty()) return;
    if (event == SUBXACT_EVENT_COMMIT_SUB) end_of_subtransaction(sub, parent, true);
    else if (event == SUBXACT_EVENT_ABORT_SUB) end_of_subtransaction(sub, parent, false);
}

}  // namespace

bool referenced_by_a_managed_row(Datum object) { return referenced_at_commit(object); }

TransactionOutcome transaction_outcome(const std::string &tag) {
    char *end = nullptr;
    uint64 value = std::strtoull(tag.c_str(), &end, 10);
    if (tag.empty() || *end != '\0') return TransactionOutcome::InProgress;  // not one of ours: leave it
    FullTransactionId xid = FullTransactionIdFromU64(value);
    // Only ask about what PostgreSQL can still answer: not a future id.
    if (!FullTransactionIdPrecedes(xid, ReadNextFullTransactionId())) return TransactionOutcome::InProgress;
    LOCAL_FCINFO(fcinfo, 1);
    InitFunctionCallInfoData(*fcinfo, nullptr, 1, InvalidOid, nullptr, nullptr);
    fcinfo->args[0].value = FullTransactionIdGetDatum(xid);
    fcinfo->args[0].isnull = false;
    Datum status = pg_xact_status(fcinfo);
    // NULL: too old for the commit log to tell. Leave the entry for a
    // human rather than guess.
    if (fcinfo->isnull) return TransactionOutcome::InProgress;
    char *word = TextDatumGetCString(status);
    if (strcmp(word, "committed") == 0) return TransactionOutcome::Committed;
    if (strcmp(word, "aborted") == 0) return TransactionOutcome::Aborted;
    return TransactionOutcome::InProgress;
}

void transaction_init() {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}

char *transaction_tag() { return psprintf(UINT64_FORMAT, U64FromFullTransactionId(GetTopFullTransactionId())); }

void remember_created(std::shared_ptr<Store> store, const ObjectMeta &meta) {
    Action a{Action::Kind::Created};
    a.identity = identity_of(store->backend_key(), meta.filename);
    a.store = std::move(store);
    a.meta = meta;
    add(std::move(a));
}

void remember_staged(std::shared_ptr<Store> store, const ObjectMeta &meta, const std::string &handle) {
    Action a{Action::Kind::Staged};
    a.identity = identity_of(store->backend_key(), meta.filename);
    a.store = std::move(store);
    a.meta = meta;
    a.handle = handle;
    add(std::move(a));
}

void remember_released(std::string_view backend, std::string_view filename, std::string_view packed_value) {
    Action a{Action::Kind::Released};
    a.identity = identity_of(backend, filename);
    a.meta.filename = std::string(filename);
    a.packed = std::string(packed_value);
    add(std::move(a));
}

std::optional<ObjectMeta> created_here(const std::string &backend, const std::string &key, const std::string &etag) {
    for (const Action &a : actions())
        if (a.kind == Action::Kind::Created && a.meta.filename == key && a.store->backend_key() == backend &&
            a.meta.etag == etag)
            return a.meta;
    return std::nullopt;
}

bool written_or_released_here(std::string_view backend, std::string_view key) {
    return touched().count(identity_of(backend, key)) > 0;
}

std::string staged_handle(const std::string &backend, const std::string &key) {
    const auto &list = actions();
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
        if (it->kind == Action::Kind::Released || it->meta.filename != key || it->store->backend_key() != backend)
            continue;
        if (it->kind == Action::Kind::Staged && !it->promoted) return it->handle;
        if (it->kind == Action::Kind::Created) return "";
    }
    return "";
}

int recover_interrupted_overwrites(std::string_view backend) {
    return guard([&] {
        int finished = 0;
        auto registry = current_registry();
        for (const auto &entry : registry->backends) {
            if (!backend.empty() && entry.first != backend) continue;
            BackendRef ref{registry, &entry.second};
            try {
                if (ref.store()->uses_network()) continue;
                // No overwrite of this backend promotes meanwhile, and the
                // worker and so_gc never recover the same entry at once.
                pg_call([&] { lock_backend_overwrites(entry.first); });
                finished += ref.store()->recover([](const std::string &tag) {
                    TransactionOutcome how = TransactionOutcome::InProgress;
                    pg_call([&] { how = transaction_outcome(tag); });
                    return how;
                });
            } catch (const Error &e) {
                if (e.kind() == ErrorKind::Canceled || !backend.empty()) throw;
                // A backend that does not parse or cannot be opened: the others still recover.
            }
        }
        return finished;
    });
}

}  // namespace so::pg
