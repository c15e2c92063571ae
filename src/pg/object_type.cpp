// Input, output and binary send/receive of the stored_object type.
#include "core/object_meta.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"

extern "C" {
#include "libpq/pqformat.h"
}

namespace {

// Binary form: a version byte, then the canonical JSON text (like jsonb).
constexpr int kBinaryVersion = 1;

char *format_datum(Datum datum) {
    so::PackedView view = so::pg::object_view(datum);
    return so::pg::guard([&] {
        std::string text = so::format_object_meta(so::to_object_meta(view));
        char *out = static_cast<char *>(so::pg::alloc(text.size() + 1));
        memcpy(out, text.c_str(), text.size() + 1);
        return out;
    });
}

Datum parse_datum(const char *text, size_t len) {
    return so::pg::guard([&] {
        return so::pg::make_object_datum(so::parse_object_meta(std::string_view(text, len)));
    });
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(stored_object_in);
Datum stored_object_in(PG_FUNCTION_ARGS) {
    const char *text = PG_GETARG_CSTRING(0);
    return parse_datum(text, strlen(text));
}

PG_FUNCTION_INFO_V1(stored_object_out);
Datum stored_object_out(PG_FUNCTION_ARGS) {
    PG_RETURN_CSTRING(format_datum(PG_GETARG_DATUM(0)));
}

PG_FUNCTION_INFO_V1(stored_object_recv);
Datum stored_object_recv(PG_FUNCTION_ARGS) {
    StringInfo buf = (StringInfo)PG_GETARG_POINTER(0);
    int version = pq_getmsgint(buf, 1);
    if (version != kBinaryVersion)
        ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                        errmsg("unsupported stored_object binary format version %d", version)));
    int nbytes = buf->len - buf->cursor;
    char *text = pq_getmsgtext(buf, nbytes, &nbytes);
    return parse_datum(text, nbytes);
}

PG_FUNCTION_INFO_V1(stored_object_send);
Datum stored_object_send(PG_FUNCTION_ARGS) {
    char *text = format_datum(PG_GETARG_DATUM(0));
    StringInfoData buf;
    pq_begintypsend(&buf);
    pq_sendint8(&buf, kBinaryVersion);
    pq_sendtext(&buf, text, strlen(text));
    PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

}  // extern "C"
