#include "pg/object_locks.hpp"

extern "C" {
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
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

bool acquire(uint64 h, uint16 kind, LOCKMODE mode, bool wait) {
    LOCKTAG tag;
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(h >> 32), static_cast<uint32>(h), kind);
    return LockAcquire(&tag, mode, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

}  // namespace

void lock_for_overwrite(std::string_view backend, std::string_view key) {
    acquire(hash_parts(backend, key, ""), kOverwriteLock, ExclusiveLock, true);
}

bool lock_reference(std::string_view backend, std::string_view key, std::string_view version, bool has_version,
                    LOCKMODE mode, bool wait) {
    return acquire(hash_parts(backend, key, has_version ? version : std::string_view("\x01", 1)), kReferenceLock, mode,
                   wait);
}

}  // namespace so::pg
