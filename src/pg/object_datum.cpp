#include "pg/object_datum.hpp"

#include "core/error.hpp"
#include "core/mime_types.hpp"
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

Datum listed_object_datum(std::string_view backend, const ListedObject &object) {
    ObjectMeta meta;
    meta.backend = std::string(backend);
    meta.filename = object.key;
    meta.size = static_cast<int64_t>(object.size);
    meta.last_modified = object.last_modified;
    meta.content_type = guess_content_type(object.key);
    if (!object.etag.empty()) meta.etag = object.etag;
    return make_object_datum_from_store(std::move(meta));
}

PackedView object_view(Datum datum) {
    struct varlena *v = PG_DETOAST_DATUM_PACKED(datum);
    PackedView view;
    if (!unpack(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), &view))
        ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("corrupt stored_object value")));
    return view;
}

}  // namespace so::pg
