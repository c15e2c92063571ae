// so_backend(), so_filename(), ...: the fields of a stored_object.
// Plain C-style code over the packed view: nothing here can throw.
#include "pg/object_datum.hpp"

extern "C" {
#include "utils/jsonb.h"
#include "utils/timestamp.h"
}

namespace {

Datum text_datum(std::string_view s) {
    return PointerGetDatum(cstring_to_text_with_len(s.data(), static_cast<int>(s.size())));
}

}  // namespace

#define SO_TEXT_ACCESSOR(fn, field, present)              \
    PG_FUNCTION_INFO_V1(fn);                              \
    Datum fn(PG_FUNCTION_ARGS) {                          \
        so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0)); \
        if (!(present)) PG_RETURN_NULL();                 \
        return text_datum(v.field);                       \
    }

extern "C" {

SO_TEXT_ACCESSOR(so_backend, backend, true)
SO_TEXT_ACCESSOR(so_filename, filename, true)
SO_TEXT_ACCESSOR(so_content_type, content_type, v.has_content_type)
SO_TEXT_ACCESSOR(so_etag, etag, v.has_etag)
SO_TEXT_ACCESSOR(so_checksum, checksum, v.has_checksum)
SO_TEXT_ACCESSOR(so_version_id, version_id, v.has_version_id)

PG_FUNCTION_INFO_V1(so_size);
Datum so_size(PG_FUNCTION_ARGS) {
    so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0));
    if (!v.has_size) PG_RETURN_NULL();
    PG_RETURN_INT64(v.size);
}

PG_FUNCTION_INFO_V1(so_last_modified);
Datum so_last_modified(PG_FUNCTION_ARGS) {
    so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0));
    if (!v.has_last_modified) PG_RETURN_NULL();
    // to_timestamp(float8): the same range checks and rounding as SQL.
    return DirectFunctionCall1(float8_timestamptz, Float8GetDatum(v.last_modified));
}

PG_FUNCTION_INFO_V1(so_metadata);
Datum so_metadata(PG_FUNCTION_ARGS) {
    so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0));
    char *text = pnstrdup(v.metadata.data(), v.metadata.size());
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
}

PG_FUNCTION_INFO_V1(so_attributes);
Datum so_attributes(PG_FUNCTION_ARGS) {
    so::PackedView v = so::pg::object_view(PG_GETARG_DATUM(0));
    char *text = pnstrdup(v.attributes.data(), v.attributes.size());
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
}

}  // extern "C"
