#include "pg/object_locks.hpp"

extern "C" {
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
}

namespace so::pg {

namespace {

constexpr uint16 kOverwriteLock = 0x5350;  // 'SP'
constexpr uint16 kReferenceLock = 0x5352;  // 'SR'

// A 64-bit hash of the parts, NUL-separated: a collision only makes two
// objects wait for each other.
uint64 hash_parts(std::string_view a, std::string_view b, std::string_view c) {
    uint64 h = hash_bytes_extended(reinterpret_cast<const unsigned char *>(a.data()), static_cast<int>(a.size()), 0x534f);
    h = hash_combine64(h, hash_bytes_extended(reinterpret_cast<const unsigned char *>(b.data()), static_cast<int>(b.size()), 1));
    return hash_combine64(h, hash_bytes_extended(reinterpret_cast<const unsigned char *>(c.data()), static_cast<int>(c.size()), 2));
}

constexpr int kEscalateAfter = 128;  // object locks of one kind on one backend per transaction

bool acquire_tag(uint64 h, uint16 kind, LOCKMODE mode, bool wait) {
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(h >> 32), static_cast<uint32>(h), kind);
    return LockAcquire(&tag, mode, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

// Object locks taken by this transaction, per kind and backend (a few
// backends at most: a short list).
struct Taken {
    uint16 kind;
    uint64 backend;
    int shared, exclusive;
};
Taken taken[16];
int taken_count = 0;
LocalTransactionId taken_in = InvalidLocalTransactionId;

Taken *counter(uint16 kind, uint64 backend) {
    if (taken_in != MyProc->lxid) {
        taken_in = MyProc->lxid;
        taken_count = 0;
    }
    for (int i = 0; i < taken_count; ++i)
        if (taken[i].kind == kind && taken[i].backend == backend) return &taken[i];
    if (taken_count == static_cast<int>(sizeof taken / sizeof taken[0])) return nullptr;  // never escalate: correct
    taken[taken_count] = Taken{kind, backend, 0, 0};
    return &taken[taken_count++];
}

// mode: ShareLock or ExclusiveLock on the object.
bool acquire(std::string_view backend, uint64 object, uint16 kind, LOCKMODE mode, bool wait) {
    bool exclusive = mode == ExclusiveLock;
    uint64 backend_hash = hash_parts(backend, "", "");
    uint16 backend_kind = static_cast<uint16>(kind + 0x100);
    Taken *t = counter(kind, backend_hash);
    int *count = t ? (exclusive ? &t->exclusive : &t->shared) : nullptr;
    if (count && *count >= kEscalateAfter) return acquire_tag(backend_hash, backend_kind, mode, wait);
    if (!acquire_tag(backend_hash, backend_kind, exclusive ? RowExclusiveLock : RowShareLock, wait)) return false;
    if (!acquire_tag(object, kind, mode, wait)) return false;
    if (count) ++*count;
    return true;
}

}  // namespace

void lock_for_overwrite(std::string_view backend, std::string_view key) {
    acquire(backend, hash_parts(backend, key, ""), kOverwriteLock, ExclusiveLock, true);
}

void lock_backend_overwrites(std::string_view backend) {
    acquire_tag(hash_parts(backend, "", ""), static_cast<uint16>(kOverwriteLock + 0x100), ExclusiveLock, true);
}

bool lock_reference(std::string_view backend, std::string_view key, std::string_view version, bool has_version,
                    LOCKMODE mode, bool wait) {
    return acquire(backend, hash_parts(backend, key, has_version ? version : std::string_view("\x01", 1)),
                   kReferenceLock, mode, wait);
}

}  // namespace so::pg
