// Binds stored objects to the transaction that wrote or removed them.
//
//   created (so_put)            removed if the (sub)transaction aborts
//   staged  (so_put overwrite)  promoted over the key just before commit;
//                               discarded, or the old version put back,
//                               if the transaction aborts
//   deleted (so_delete)         removed after commit; nothing on abort
//
// Actions belong to the subtransaction that recorded them, so ROLLBACK TO
// SAVEPOINT undoes exactly its own. Nothing after COMMIT raises an error:
// failures there are WARNINGs, and deletes stay in so_pending_deletes for
// so_process_pending().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/object_meta.hpp"
#include "core/store.hpp"
#include "pg/postgres.hpp"

namespace so::pg {

// Registers the transaction callbacks; called once from _PG_init.
void transaction_init();

// C++ side (inside guard). Each may throw before recording anything.
void remember_created(std::shared_ptr<Store> store, const ObjectMeta &meta);
void remember_staged(std::shared_ptr<Store> store, const ObjectMeta &meta, const std::string &handle);
void remember_delete(std::shared_ptr<Store> store, const ObjectMeta &meta, int64 queue_id);

// Queue rows of deletes this transaction recorded (so_process_pending
// must leave them to the commit). C++ side.
std::vector<int64> queued_by_this_transaction();

// The object this transaction created at key with the given etag, if any
// (a statement re-evaluated after a concurrent update puts it again).
std::optional<ObjectMeta> created_here(const std::string &backend, const std::string &key, const std::string &etag);

// The staged version of key that this transaction wrote, if any, so it
// reads its own writes. Empty when there is none.
std::string staged_handle(const std::string &backend, const std::string &key);

}  // namespace so::pg
