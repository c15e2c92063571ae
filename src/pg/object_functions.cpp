// so_put, so_get, so_exists, so_stat, so_delete, so_copy: the stored
// objects themselves, on whichever backend the value names. Every one
// checks the caller's rights (access.hpp) before any I/O.
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/mime_types.hpp"
#include "core/object_attributes.hpp"
#include "core/object_meta.hpp"
#include "pg/access.hpp"
#include "pg/delete_queue.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/operation_stats.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"
#include "pg/worker.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/jsonb.h"
}

namespace {

// C side: a required text argument.
char *required_text(FunctionCallInfo fcinfo, int arg, const char *name) {
    if (PG_ARGISNULL(arg))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name)));
    return text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

// C side: a jsonb argument as text, or nullptr when NULL.
char *optional_jsonb_text(FunctionCallInfo fcinfo, int arg) {
    if (PG_ARGISNULL(arg)) return nullptr;
    Jsonb *jb = PG_GETARG_JSONB_P(arg);
    return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

bytea *read_object(so::Store &store, const std::string &key, const std::string &version_id, uint64 offset,
                   std::optional<uint64> length) {
    store.validate_key(key);
    std::string handle = so::pg::staged_handle(store.backend_key(), key);
    bytea *result = nullptr;
    size_t got = store.fetch(key, handle, version_id, offset, length, [&](uint64 count) {
        if (count > MaxAllocSize - VARHDRSZ)
            throw so::Error(so::ErrorKind::InvalidParameter,
                            "stored object " + so::quoted(key) + " is too large for one bytea (" +
                                std::to_string(count) + " bytes)",
                            {}, "Read it in parts with so_get(object, offset, length).");
        // On S3 this runs inside libcurl's write callback. Its only call
        // into PostgreSQL is this allocation, which cannot raise: the size
        // is checked above and MCXT_ALLOC_NO_OOM turns failure into a C++
        // exception, carried out of curl by the client.
        result = static_cast<bytea *>(so::pg::alloc(VARHDRSZ + count));
        return VARDATA(result);
    });
    SET_VARSIZE(result, VARHDRSZ + got);
    return result;
}

// The version a value recorded, or "" for the latest.
std::string version_of(const so::PackedView &view) {
    return view.has_version_id ? std::string(view.version_id) : std::string();
}

// The caller must hold privilege on the backend. C++ side.
void require(std::string_view backend, AclMode privilege) {
    so::pg::require_backend_privilege(so::pg::lookup_backend(backend), privilege);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_put);
Datum so_put(PG_FUNCTION_ARGS) {
    char *backend = required_text(fcinfo, 0, "backend");
    char *filename = required_text(fcinfo, 1, "filename");
    if (PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("content must not be null")));
    bytea *content = PG_GETARG_BYTEA_PP(2);
    char *content_type = PG_ARGISNULL(3) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(3));
    char *metadata = optional_jsonb_text(fcinfo, 4);
    bool overwrite = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);
    char *attributes = PG_NARGS() > 6 ? optional_jsonb_text(fcinfo, 6) : nullptr;
    PreventCommandIfReadOnly("so_put()");
    // Staged names carry the transaction id; a create-only put needs none,
    // so an autocommit put stays a read-only transaction for WAL.
    char *tag = overwrite ? so::pg::transaction_tag() : nullptr;

    return so::pg::guard([&] {
        require(backend, so::pg::kWritePrivilege);
        return so::pg::tracked(so::pg::Operation::Put, backend, [&](so::pg::OperationSample &sample) {
            auto store = so::pg::lookup_store(backend);
            so::PutRequest request;
            request.key = filename;
            store->validate_key(request.key);
            if (content_type && !so::valid_media_type(content_type))
                throw so::Error(so::ErrorKind::InvalidParameter,
                                "invalid content type " + so::quoted(content_type), {},
                                "A content type is type/subtype with optional parameters, in printable ASCII.");
            request.data = VARDATA_ANY(content);
            request.size = VARSIZE_ANY_EXHDR(content);
            request.content_type = content_type ? std::string(content_type) : so::guess_content_type(filename);
            if (metadata) request.metadata_json = so::canonical_json_object(metadata, "metadata");
            if (attributes) request.attributes = so::parse_attributes(attributes, "attributes");
            so::check_limits(so::pg::lookup_backend(backend).config(), request.size, request.content_type);
            so::ObjectMeta meta;
            if (overwrite) {
                std::string handle;
                meta = store->stage(request, tag, &handle);
                try {
                    so::pg::remember_staged(store, meta, handle);
                } catch (...) {
                    store->discard(request.key, handle);
                    throw;
                }
            } else {
                try {
                    meta = store->create(request);
                } catch (const so::Error &e) {
                    // The same bytes to a key this transaction created: an UPDATE
                    // re-evaluated after a concurrent update (READ COMMITTED) calls
                    // so_put again. Give back what the first call wrote.
                    if (e.kind() != so::ErrorKind::AlreadyExists) throw;
                    std::string etag = so::crypto::hex(so::crypto::md5(std::string_view(request.data, request.size)));
                    auto earlier = so::pg::created_here(store->backend_key(), request.key, etag);
                    if (!earlier) throw;
                    return so::pg::make_object_datum(*earlier);
                }
                try {
                    so::pg::remember_created(store, meta);
                } catch (...) {
                    store->remove(request.key, &meta);
                    throw;
                }
            }
            sample.bytes_written = request.size;
            return so::pg::make_object_datum_from_store(meta);
        });
    });
}

PG_FUNCTION_INFO_V1(so_get);
Datum so_get(PG_FUNCTION_ARGS) {
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    bool ranged = PG_NARGS() == 3;
    int64 offset = 0, length = -1;
    if (ranged) {
        offset = PG_GETARG_INT64(1);
        length = PG_GETARG_INT64(2);
        if (offset < 0 || length < 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("offset and length must not be negative")));
    }
    so::pg::require_object_read(object, view);
    return so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Get, view.backend, [&](so::pg::OperationSample &sample) {
            auto store = so::pg::lookup_store(view.backend);
            std::optional<uint64> len;
            if (ranged) len = static_cast<uint64>(length);
            bytea *content = read_object(*store, std::string(view.filename), version_of(view),
                                         static_cast<uint64>(offset), len);
            sample.bytes_read = VARSIZE(content) - VARHDRSZ;
            return PointerGetDatum(content);
        });
    });
}

PG_FUNCTION_INFO_V1(so_exists);
Datum so_exists(PG_FUNCTION_ARGS) {
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    so::pg::require_object_read(object, view);
    return so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Stat, view.backend, [&](so::pg::OperationSample &) {
            auto store = so::pg::lookup_store(view.backend);
            std::string key = std::string(view.filename);
            store->validate_key(key);
            bool found = !so::pg::staged_handle(store->backend_key(), key).empty() || store->exists(key, version_of(view));
            return BoolGetDatum(found);
        });
    });
}

PG_FUNCTION_INFO_V1(so_stat);
Datum so_stat(PG_FUNCTION_ARGS) {
    char *backend = required_text(fcinfo, 0, "backend");
    char *filename = required_text(fcinfo, 1, "filename");
    // Named by backend and key: a row referencing that key (without a
    // version) lets a role without the read privilege look too.
    Datum named = so::pg::guard([&] {
        so::ObjectMeta meta;
        meta.backend = backend;
        meta.filename = filename;
        return so::pg::make_object_datum(meta);
    });
    so::pg::require_object_read(named, so::pg::object_view(named));
    return so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Stat, backend, [&](so::pg::OperationSample &) {
            auto store = so::pg::lookup_store(backend);
            store->validate_key(filename);
            auto meta = store->stat(filename, "");
            if (!meta) so::throw_not_found(backend, filename);
            return so::pg::make_object_datum_from_store(*meta);
        });
    });
}

PG_FUNCTION_INFO_V1(so_delete);
Datum so_delete(PG_FUNCTION_ARGS) {
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    PreventCommandIfReadOnly("so_delete()");
    // Check the right, the backend and the key before queueing anything.
    so::pg::guard([&] {
        require(view.backend, so::pg::kDeletePrivilege);
        auto store = so::pg::lookup_store(view.backend);
        store->validate_key(view.filename);
        return 0;
    });
    so::pg::queue_delete(object);
    so::pg::warn_once_without_worker();
    PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(so_copy);
Datum so_copy(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("obj and to_backend must not be null")));
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    char *to_backend = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *to_filename = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
    PreventCommandIfReadOnly("so_copy()");
    so::pg::guard([&] {
        require(to_backend, so::pg::kWritePrivilege);
        return 0;
    });
    so::pg::require_object_read(object, view);

    return so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Copy, to_backend, [&](so::pg::OperationSample &sample) {
            auto source = so::pg::lookup_store(std::string(view.backend));
            auto target = so::pg::lookup_store(to_backend);
            std::string source_key(view.filename);
            std::string key = to_filename ? std::string(to_filename) : source_key;
            source->validate_key(source_key);
            target->validate_key(key);
            so::ObjectMeta meta;
            // On one store the bytes need not leave it (a server-side copy),
            // unless this transaction staged a new version of the source.
            std::string staged = so::pg::staged_handle(source->backend_key(), source_key);
            const so::BackendConfig &limits = so::pg::lookup_backend(to_backend).config();
            std::optional<so::ObjectMeta> copied;
            if (staged.empty()) {
                // The target's limits apply to what is really stored, not to
                // what the value says: one HEAD, only when there are limits.
                if (limits.max_size || !limits.allowed_content_types.empty()) {
                    auto found = source->stat(source_key, version_of(view));
                    if (!found) so::throw_not_found(source->backend_key(), source_key);
                    so::check_limits(limits, static_cast<uint64_t>(found->size.value_or(0)),
                                     found->content_type.value_or(""));
                }
                copied = target->copy_within(*source, source_key, version_of(view), key);
            }
            if (copied) {
                meta = *copied;
            } else {
                // Elsewhere: streamed, a buffer (or one S3 part) at a time, so
                // objects of any size move without being held whole.
                auto reader = source->open_reader(source_key, staged, version_of(view));
                so::PutRequest request;
                request.key = key;
                // A hand-typed value may carry anything: only a plain media type goes into a header.
                bool typed = view.has_content_type && so::valid_media_type(view.content_type);
                request.content_type = typed ? std::string(view.content_type) : so::guess_content_type(key);
                request.metadata_json = std::string(view.metadata);
                // The headers, class and tags go along where the target keeps
                // them; the encryption is the target's own.
                if (target->keeps_attributes()) {
                    so::ObjectAttributes carried = so::read_value_attributes(view.attributes);
                    carried.sse.reset();
                    carried.sse_kms_key_id.reset();
                    request.attributes = so::parse_attributes(so::format_attributes(carried), "attributes of the source");
                }
                so::check_limits(limits, reader->size(), request.content_type);
                meta = target->create_from(request, *reader);
                sample.bytes_read = sample.bytes_written = reader->size();
            }
            meta.backend = target->backend_key();
            meta.filename = key;
            if (!meta.content_type && view.has_content_type) meta.content_type = std::string(view.content_type);
            if (meta.metadata == "{}") meta.metadata = std::string(view.metadata);
            if (!meta.checksum && view.has_checksum) meta.checksum = std::string(view.checksum);  // same bytes
            try {
                so::pg::remember_created(target, meta);
            } catch (...) {
                target->remove(key, &meta);
                throw;
            }
            return so::pg::make_object_datum_from_store(meta);
        });
    });
}

}  // extern "C"
