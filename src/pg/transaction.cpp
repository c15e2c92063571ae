#include "pg/transaction.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "pg/delete_queue.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/xact.h"
}

namespace so::pg {

namespace {

struct Action {
    enum class Kind { Created, Staged, Deleted };
    Kind kind;
    SubTransactionId subxact;
    std::shared_ptr<Store> store;
    ObjectMeta meta;
    std::string handle;     // Staged: the staged version
    Backup backup;          // Staged: what promote() replaced
    bool promoted = false;  // Staged
    int64 queue_id = 0;     // Deleted
};

std::vector<Action> &actions() {
    static std::vector<Action> list;
    return list;
}

void add(Action action) {
    action.subxact = GetCurrentSubTransactionId();
    actions().push_back(std::move(action));
}

// Warnings gathered while C++ objects are alive, reported afterwards.
class Warnings {
public:
    void add(const std::string &message) noexcept {
        if (count_ < kMax) messages_[count_++] = copy_text_no_raise(message.c_str());
    }
    void report() {
        for (int i = 0; i < count_; ++i)
            ereport(WARNING, (errcode(ERRCODE_IO_ERROR),
                              errmsg_internal("%s", messages_[i] ? messages_[i] : "stored_object: cleanup failed")));
        count_ = 0;
    }

private:
    static constexpr int kMax = 32;
    char *messages_[kMax] = {};
    int count_ = 0;
};

std::string describe(const Action &a) { return quoted(a.meta.filename) + " in backend " + quoted(a.store->backend_key()); }

// Undoes one action of an aborted (sub)transaction; never throws.
void undo(Action &a, Warnings &warnings) noexcept {
    try {
        switch (a.kind) {
            case Action::Kind::Created:
                // Only if it is still ours: another transaction may have
                // replaced it since.
                a.store->remove(a.meta.filename, &a.meta);
                break;
            case Action::Kind::Staged:
                if (a.promoted) a.store->restore(a.backup);
                else a.store->discard(a.meta.filename, a.handle);
                break;
            case Action::Kind::Deleted:
                break;  // nothing happened yet; the queue row rolls back too
        }
    } catch (const std::exception &e) {
        warnings.add(std::string("could not undo the write of stored object ") + describe(a) + ": " + e.what());
    }
}

// Runs after the commit is durable; never throws.
void finish(Action &a, Warnings &warnings) noexcept {
    try {
        switch (a.kind) {
            case Action::Kind::Created:
                break;
            case Action::Kind::Staged:
                a.store->drop_backup(a.backup);
                break;
            case Action::Kind::Deleted:
                a.store->remove(a.meta.filename, &a.meta);
                note_delete_completed(a.queue_id);
                break;
        }
    } catch (const std::exception &e) {
        if (a.kind == Action::Kind::Deleted)
            warnings.add("could not delete stored object " + describe(a) + " after commit: " + e.what() +
                         "; it stays queued for so_process_pending()");
        else
            warnings.add("could not remove the previous version of stored object " + describe(a) + ": " + e.what());
    }
}

// Just before commit, while an error can still abort the transaction:
// staged versions replace the objects at their keys.
void promote_staged() {
    TransactionId xid = GetTopTransactionIdIfAny();
    guard([xid] {
        std::string tag = std::to_string(xid);
        for (Action &a : actions()) {
            if (a.kind != Action::Kind::Staged || a.promoted) continue;
            a.backup = a.store->promote(a.meta.filename, a.handle, tag);
            a.promoted = true;
        }
    });
}

void end_of_transaction(bool commit) {
    Warnings warnings;
    {
        auto &list = actions();
        if (commit) {
            for (Action &a : list) finish(a, warnings);
        } else {
            for (auto it = list.rbegin(); it != list.rend(); ++it) undo(*it, warnings);
        }
        list.clear();
        list.shrink_to_fit();
    }
    warnings.report();
}

void end_of_subtransaction(SubTransactionId sub, SubTransactionId parent, bool commit) {
    Warnings warnings;
    {
        auto &list = actions();
        if (commit) {
            for (Action &a : list)
                if (a.subxact == sub) a.subxact = parent;
        } else {
            for (auto it = list.rbegin(); it != list.rend(); ++it)
                if (it->subxact == sub) undo(*it, warnings);
            list.erase(std::remove_if(list.begin(), list.end(), [sub](const Action &a) { return a.subxact == sub; }),
                       list.end());
        }
    }
    warnings.report();
}

void on_xact(XactEvent event, void *) {
    if (actions().empty()) return;
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            promote_staged();
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

void transaction_init() {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}

void remember_created(std::shared_ptr<Store> store, const ObjectMeta &meta) {
    add(Action{Action::Kind::Created, 0, std::move(store), meta});
}

void remember_staged(std::shared_ptr<Store> store, const ObjectMeta &meta, const std::string &handle) {
    Action a{Action::Kind::Staged, 0, std::move(store), meta};
    a.handle = handle;
    add(std::move(a));
}

void remember_delete(std::shared_ptr<Store> store, const ObjectMeta &meta, int64 queue_id) {
    Action a{Action::Kind::Deleted, 0, std::move(store), meta};
    a.queue_id = queue_id;
    add(std::move(a));
}

std::optional<ObjectMeta> created_here(const std::string &backend, const std::string &key, const std::string &etag) {
    for (const Action &a : actions())
        if (a.kind == Action::Kind::Created && a.meta.filename == key && a.store->backend_key() == backend &&
            a.meta.etag == etag)
            return a.meta;
    return std::nullopt;
}

std::vector<int64> queued_by_this_transaction() {
    std::vector<int64> ids;
    for (const Action &a : actions())
        if (a.kind == Action::Kind::Deleted) ids.push_back(a.queue_id);
    return ids;
}

std::string staged_handle(const std::string &backend, const std::string &key) {
    const auto &list = actions();
    for (auto it = list.rbegin(); it != list.rend(); ++it) {
        if (it->meta.filename != key || it->store->backend_key() != backend) continue;
        if (it->kind == Action::Kind::Staged && !it->promoted) return it->handle;
        if (it->kind == Action::Kind::Created) return "";
    }
    return "";
}

}  // namespace so::pg
