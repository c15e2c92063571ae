// Binds stored objects to the transaction that wrote or released them.
//
//   created  (so_put, so_copy)      removed if the (sub)transaction aborts
//   staged   (so_put overwrite)     promoted over the key just before
//                                   commit; discarded, or the previous
//                                   version put back, if it aborts
//   released (so_manage: an object  queued for deletion at commit unless a
//            left a managed row)    managed row still references it then
//
// Actions belong to the subtransaction that recorded them, so ROLLBACK TO
// SAVEPOINT undoes exactly its own. At commit nothing touches the network:
// committed deletes are rows of the durable queue that the background
// worker carries out once the commit is durable; the undo of a network
// store's write after an abort is handed to the worker too. Local files
// are cheap to undo and are undone in the callback. Nothing after COMMIT
// raises an error.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/object_meta.hpp"
#include "core/store.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// Registers the transaction callbacks; called once from _PG_init.
void transaction_init();

// C++ side (inside guard). Each may throw before recording anything.
void remember_created(std::shared_ptr<Store> store, const ObjectMeta &meta);
void remember_staged(std::shared_ptr<Store> store, const ObjectMeta &meta, const std::string &handle);
// The packed stored_object value that left a managed row.
void remember_released(std::string_view backend, std::string_view filename, std::string_view packed_value);

// The tag that names this transaction in staged and backup names: its full
// transaction id, palloc'd. C side; assigns one.
char *transaction_tag();

// The object this transaction created at key with the given etag, if any
// (a statement re-evaluated after a concurrent update puts it again).
std::optional<ObjectMeta> created_here(const std::string &backend, const std::string &key, const std::string &etag);

// Whether a managed row references the object, seen as the extension's
// owner (every row) with the latest snapshot and this transaction's own
// changes. C side.
bool referenced_by_a_managed_row(Datum object);

// Whether this transaction wrote (so_put, so_copy) or released (through
// so_manage) an object of this backend and key: it may store it in a
// managed column without other rights.
bool written_or_released_here(std::string_view backend, std::string_view key);

// The staged version of key that this transaction wrote, if any, so it
// reads its own writes. Empty when there is none.
std::string staged_handle(const std::string &backend, const std::string &key);

// How the transaction a staged or backup name was tagged with ended. C side.
TransactionOutcome transaction_outcome(const std::string &tag);

// After a crash: finishes the overwrites of local backends (all of them
// when backend is empty) that a crash interrupted between the promotion
// and the commit, restoring what the committed row says. C side.
int recover_interrupted_overwrites(std::string_view backend);

}  // namespace so::pg
