#include "pg/object_datum.hpp"

#include "core/error.hpp"
#include "pg/guard.hpp"

namespace so::pg {

Datum make_object_datum(const ObjectMeta &meta) {
    size_t payload = packed_size(meta);
    if (payload > MaxAllocSize - VARHDRSZ)
        throw Error(ErrorKind::InvalidParameter, "stored_object value is too large");
    auto *result = static_cast<struct varlena *>(alloc(VARHDRSZ + payload));
    SET_VARSIZE(result, VARHDRSZ + payload);
    pack(meta, VARDATA(result));
    return PointerGetDatum(result);
}

Datum make_object_datum_from_store(ObjectMeta meta) {
    sanitize_from_store(meta);
    return make_object_datum(meta);
}

PackedView object_view(Datum datum) {
    struct varlena *v = PG_DETOAST_DATUM_PACKED(datum);
    PackedView view;
    if (!unpack(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &view))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("corrupt stored_object value")));
    return view;
}

}  // namespace so::pg
