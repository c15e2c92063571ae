// so_adopt(backend, filename, expected_size, expected_checksum): an object
// written by other means (a signed upload from a browser) becomes a value
// inside the transaction, checked against the backend's limits and what the
// caller expected; an object that fails is removed. An abort removes the
// adopted object again, as it removes a put's.
#include "core/backend_config.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/packed_meta.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/object_locks.hpp"
#include "pg/operation_stats.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "miscadmin.h"
}

namespace {

// The SHA-256 of an object, read through once (a store that did not keep
// the client's checksum).
std::string sha256_of(so::Store &store, const std::string &key, const std::string &version) {
    auto reader = store.open_reader(key, "", version);
    so::crypto::Digest digest(so::crypto::Digest::Algorithm::Sha256);
    for (;;) {
        std::string_view piece = reader->next(8 << 20);
        if (piece.empty()) break;
        digest.update(piece.data(), piece.size());
    }
    return so::crypto::hex(digest.finish());
}

bool hex_sha256(const std::string &s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_adopt);
Datum so_adopt(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("backend and filename must not be null")));
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *filename = text_to_cstring(PG_GETARG_TEXT_PP(1));
    bool has_size = !PG_ARGISNULL(2);
    int64 expected_size = has_size ? PG_GETARG_INT64(2) : 0;
    char *expected_checksum = PG_ARGISNULL(3) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(3));
    PreventCommandIfReadOnly("so_adopt()");
    if (expected_checksum)
        for (char *p = expected_checksum; *p; ++p) *p = static_cast<char>(pg_ascii_tolower(*p));
    if (expected_checksum && !hex_sha256(expected_checksum))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("expected_checksum must be a SHA-256 in hex (64 characters)")));

    // One adoption of a key at a time: a second waits, then finds the row.
    so::pg::guard([&] {
        const so::pg::BackendRef &ref = so::pg::lookup_backend(backend);
        so::pg::require_backend_privilege(ref, so::pg::kWritePrivilege);
        so::pg::lookup_store(backend)->validate_key(filename);
        return 0;
    });
    so::pg::lock_reference(backend, filename, "", false, ExclusiveLock, true);

    // What is stored, as a value: no C++ object outlives this guard (the
    // reference check below may raise an error).
    Datum value = so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Stat, backend, [&](so::pg::OperationSample &) {
            auto store = so::pg::lookup_store(backend);
            // A local backend's signed upload waits in its upload area: move it to its key first.
            store->claim_upload(filename);
            auto found = store->stat(filename, "");
            if (!found) so::throw_not_found(backend, filename);
            return so::pg::make_object_datum_from_store(*found);
        });
    });
    if (so::pg::referenced_by_a_managed_row(value))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("stored object \"%s\" of backend \"%s\" is already referenced by a row", filename,
                               backend),
                        errhint("Adopt a file once; an abort of a second adoption would remove it.")));

    return so::pg::guard([&] {
        so::ObjectMeta meta = so::to_object_meta(so::pg::object_view(value));
        auto store = so::pg::lookup_store(backend);
        const so::BackendConfig &config = so::pg::lookup_backend(backend).config();
        // A violating upload is removed: it never becomes a value, and
        // nothing else may adopt it later.
        auto refuse = [&](const so::Error &e) {
            try {
                store->remove(meta.filename, &meta);
            } catch (const so::Error &) {
                // Left for so_gc; the refusal is what matters here.
            }
            throw e;
        };
        uint64_t size = static_cast<uint64_t>(meta.size.value_or(0));
        try {
            so::check_limits(config, size, meta.content_type.value_or(""));
            if (has_size && size != static_cast<uint64_t>(expected_size))
                throw so::Error(so::ErrorKind::InvalidParameter,
                                "stored object " + so::quoted(meta.filename) + " has " + std::to_string(size) +
                                    " bytes, not the expected " + std::to_string(expected_size));
            if (expected_checksum) {
                if (!meta.checksum) meta.checksum = sha256_of(*store, meta.filename, meta.version_id.value_or(""));
                if (*meta.checksum != expected_checksum)
                    throw so::Error(so::ErrorKind::InvalidParameter,
                                    "stored object " + so::quoted(meta.filename) +
                                        " does not have the expected SHA-256",
                                    "It has " + *meta.checksum + ".");
            }
        } catch (const so::Error &e) {
            refuse(e);
        }
        so::pg::remember_created(store, meta);
        return so::pg::make_object_datum_from_store(meta);
    });
}

}  // extern "C"
