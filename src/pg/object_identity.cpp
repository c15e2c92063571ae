// Equality, ordering and hashing of stored_object by identity:
// (backend, filename, version_id). Backs =, <>, <, ... and the btree and
// hash operator classes, so DISTINCT, GROUP BY, UNIQUE and hash joins work.
#include "pg/object_datum.hpp"

extern "C" {
#include "common/hashfn.h"
}

namespace {

// Compares the two arguments by identity and frees their detoasted copies:
// an index build or a sort calls this millions of times in one context.
int compare_args(FunctionCallInfo fcinfo) {
    struct varlena *a = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
    struct varlena *b = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(1));
    int result = so::compare_identity(so::pg::object_view(PointerGetDatum(a)), so::pg::object_view(PointerGetDatum(b)));
    PG_FREE_IF_COPY(a, 0);
    PG_FREE_IF_COPY(b, 1);
    return result;
}

uint32 hash_view(std::string_view s) {
    return hash_bytes(reinterpret_cast<const unsigned char *>(s.data()), static_cast<int>(s.size()));
}

uint64 hash_view_extended(std::string_view s, uint64 seed) {
    return hash_bytes_extended(reinterpret_cast<const unsigned char *>(s.data()),
                               static_cast<int>(s.size()), seed);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_cmp);
Datum so_cmp(PG_FUNCTION_ARGS) { PG_RETURN_INT32(compare_args(fcinfo)); }

PG_FUNCTION_INFO_V1(so_eq);
Datum so_eq(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) == 0); }

PG_FUNCTION_INFO_V1(so_ne);
Datum so_ne(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) != 0); }

PG_FUNCTION_INFO_V1(so_lt);
Datum so_lt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) < 0); }

PG_FUNCTION_INFO_V1(so_le);
Datum so_le(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) <= 0); }

PG_FUNCTION_INFO_V1(so_gt);
Datum so_gt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) > 0); }

PG_FUNCTION_INFO_V1(so_ge);
Datum so_ge(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_args(fcinfo) >= 0); }

// The seeded 64-bit hash; its seed-0 value's low 32 bits are so_hash, as
// the hash operator class requires.
static uint64 identity_hash(FunctionCallInfo fcinfo, uint64 seed) {
    struct varlena *value = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
    so::PackedView v = so::pg::object_view(PointerGetDatum(value));
    uint64 h = hash_combine64(hash_view_extended(v.backend, seed), hash_view_extended(v.filename, seed));
    h = hash_combine64(h, v.has_version_id ? hash_view_extended(v.version_id, seed) : seed ^ 0x5eed);
    PG_FREE_IF_COPY(value, 0);
    return h;
}

// 0.2.0's 32-bit hash, which was not the low half of the 64-bit one: kept
// so hash indexes built by 0.2.0 stay valid until the 0.3.0 upgrade points
// so_hash at so_hash32 and rebuilds them.
PG_FUNCTION_INFO_V1(so_hash);
Datum so_hash(PG_FUNCTION_ARGS) {
    so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0));
    uint32 h = hash_combine(hash_view(v.backend), hash_view(v.filename));
    // An absent version_id and an empty one are different identities.
    h = hash_combine(h, v.has_version_id ? hash_view(v.version_id) : 0x5eed);
    PG_RETURN_UINT32(h);
}

PG_FUNCTION_INFO_V1(so_hash32);
Datum so_hash32(PG_FUNCTION_ARGS) { PG_RETURN_UINT32(static_cast<uint32>(identity_hash(fcinfo, 0))); }

PG_FUNCTION_INFO_V1(so_hash_extended);
Datum so_hash_extended(PG_FUNCTION_ARGS) { PG_RETURN_UINT64(identity_hash(fcinfo, PG_GETARG_INT64(1))); }

}  // extern "C"
