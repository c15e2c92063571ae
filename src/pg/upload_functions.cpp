// Puts beyond one bytea: so_upload_begin / so_upload_append /
// so_upload_finish (or so_upload_abort) inside one transaction, memory
// bounded by one piece (S3: one part); and so_put_file, which stores a file
// of the server's file system without reading it into memory.
//
// An upload lives until its transaction ends. One still open at commit is
// aborted (a WARNING says so); at an abort, a local one is removed at once,
// and an S3 one is left with a WARNING (no network I/O in an abort: a
// bucket lifecycle rule for incomplete multipart uploads removes it).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "core/backend_config.hpp"
#include "core/file_reader.hpp"
#include "core/mime_types.hpp"
#include "core/object_attributes.hpp"
#include "core/object_meta.hpp"
#include "core/unique_fd.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/operation_stats.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/jsonb.h"
}

namespace {

struct OpenUpload {
    std::shared_ptr<so::Store> store;
    std::unique_ptr<so::StreamingUpload> upload;
    std::string backend, key, content_type;
};

std::map<int64, OpenUpload> &uploads() {
    static std::map<int64, OpenUpload> open;
    return open;
}
int64 next_id = 1;

// C side: a text argument, or nullptr when NULL.
char *text_arg(FunctionCallInfo fcinfo, int arg) {
    return PG_ARGISNULL(arg) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

char *jsonb_arg(FunctionCallInfo fcinfo, int arg) {
    if (PG_ARGISNULL(arg)) return nullptr;
    Jsonb *jb = PG_GETARG_JSONB_P(arg);
    return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

// The request of a put from SQL arguments, checked as so_put checks them.
// C++ side.
so::PutRequest put_request(so::Store &store, const char *filename, const char *content_type, const char *metadata,
                           const char *attributes) {
    so::PutRequest request;
    request.key = filename;
    store.validate_key(request.key);
    if (content_type && !so::valid_media_type(content_type))
        throw so::Error(so::ErrorKind::InvalidParameter, "invalid content type " + so::quoted(content_type));
    request.content_type = content_type ? std::string(content_type) : so::guess_content_type(filename);
    if (metadata) request.metadata_json = so::canonical_json_object(metadata, "metadata");
    if (attributes) request.attributes = so::parse_attributes(attributes, "attributes");
    return request;
}

OpenUpload &open_upload(int64 id) {
    auto it = uploads().find(id);
    if (it == uploads().end())
        throw so::Error(so::ErrorKind::InvalidParameter,
                        "there is no open upload " + std::to_string(id) + " in this transaction",
                        {}, "so_upload_begin returns the number; an upload ends with its transaction.");
    return it->second;
}

// At the end of every transaction: no upload outlives it.
void end_uploads(XactEvent event, void *) {
    if (uploads().empty()) return;
    if (event == XACT_EVENT_PRE_PREPARE)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that has an open upload"),
                        errhint("Finish it with so_upload_finish or end it with so_upload_abort first.")));
    if (event == XACT_EVENT_PRE_COMMIT) {
        // Network I/O is still allowed here; the transaction commits anyway.
        for (auto &[id, open] : uploads()) {
            try {
                open.upload->abort();
            } catch (...) {
                // Left for the store's lifecycle rule; the WARNING says which.
            }
            ereport(WARNING, (errcode(ERRCODE_WARNING),
                              errmsg("upload %lld of \"%s\" in backend \"%s\" was not finished: aborted",
                                     static_cast<long long>(id), open.key.c_str(), open.backend.c_str())));
        }
        uploads().clear();
    } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
        for (auto &[id, open] : uploads()) {
            if (!open.upload->abort_uses_network()) {
                try {
                    open.upload->abort();
                } catch (...) {
                }
                continue;
            }
            ereport(WARNING,
                    (errcode(ERRCODE_WARNING),
                     errmsg("the unfinished upload of \"%s\" in backend \"%s\" is left to the store",
                            open.key.c_str(), open.backend.c_str()),
                     errhint("A bucket lifecycle rule for incomplete multipart uploads removes it.")));
        }
        uploads().clear();
    }
}

bool registered = false;

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_upload_begin);
Datum so_upload_begin(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("backend and filename must not be null")));
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *filename = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *content_type = text_arg(fcinfo, 2);
    char *metadata = jsonb_arg(fcinfo, 3);
    char *attributes = jsonb_arg(fcinfo, 4);
    PreventCommandIfReadOnly("so_upload_begin()");
    if (!registered) {
        RegisterXactCallback(end_uploads, nullptr);
        registered = true;
    }
    int64 id = so::pg::guard([&] {
        const so::pg::BackendRef &ref = so::pg::lookup_backend(backend);
        so::pg::require_backend_privilege(ref, so::pg::kWritePrivilege);
        auto store = so::pg::lookup_store(backend);
        so::PutRequest request = put_request(*store, filename, content_type, metadata, attributes);
        so::check_content_type_allowed(ref.config(), request.content_type);
        OpenUpload open{store, store->begin_upload(request), backend, request.key, request.content_type};
        int64 assigned = next_id++;
        uploads().emplace(assigned, std::move(open));
        return assigned;
    });
    PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(so_upload_append);
Datum so_upload_append(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("upload and content must not be null")));
    int64 id = PG_GETARG_INT64(0);
    bytea *content = PG_GETARG_BYTEA_PP(1);
    int64 total = so::pg::guard([&] {
        OpenUpload &open = open_upload(id);
        size_t size = VARSIZE_ANY_EXHDR(content);
        try {
            so::check_size_limit(so::pg::lookup_backend(open.backend).config(), open.upload->size() + size);
            so::pg::tracked(so::pg::Operation::Put, open.backend, [&](so::pg::OperationSample &sample) {
                open.upload->append(VARDATA_ANY(content), size);
                sample.bytes_written = size;
                return 0;
            });
        } catch (...) {
            // A failed piece ends the upload: what came before is removed.
            try {
                open.upload->abort();
            } catch (...) {
            }
            uploads().erase(id);
            throw;
        }
        return static_cast<int64>(open.upload->size());
    });
    PG_RETURN_INT64(total);
}

PG_FUNCTION_INFO_V1(so_upload_finish);
Datum so_upload_finish(PG_FUNCTION_ARGS) {
    int64 id = PG_GETARG_INT64(0);
    return so::pg::guard([&] {
        OpenUpload &open = open_upload(id);
        // Whatever happens, the upload is over.
        struct Forget {
            int64 id;
            ~Forget() { uploads().erase(id); }
        } forget{id};
        so::ObjectMeta meta;
        try {
            meta = open.upload->finish();
        } catch (...) {
            try {
                open.upload->abort();
            } catch (...) {
            }
            throw;
        }
        try {
            so::pg::remember_created(open.store, meta);
        } catch (...) {
            open.store->remove(meta.filename, &meta);
            throw;
        }
        return so::pg::make_object_datum_from_store(meta);
    });
}

PG_FUNCTION_INFO_V1(so_upload_abort);
Datum so_upload_abort(PG_FUNCTION_ARGS) {
    int64 id = PG_GETARG_INT64(0);
    so::pg::guard([&] {
        OpenUpload &open = open_upload(id);
        struct Forget {
            int64 id;
            ~Forget() { uploads().erase(id); }
        } forget{id};
        open.upload->abort();
        return 0;
    });
    PG_RETURN_VOID();
}

// so_put_file(backend, filename, path, content_type, metadata, attributes):
// a file of the server, streamed into the store. For superusers and
// members of pg_read_server_files, like COPY FROM a file.
PG_FUNCTION_INFO_V1(so_put_file);
Datum so_put_file(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("backend, filename and path must not be null")));
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *filename = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *path = text_to_cstring(PG_GETARG_TEXT_PP(2));
    char *content_type = text_arg(fcinfo, 3);
    char *metadata = jsonb_arg(fcinfo, 4);
    char *attributes = jsonb_arg(fcinfo, 5);
    PreventCommandIfReadOnly("so_put_file()");
    if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to store a file of the server"),
                        errdetail("Only roles with privileges of the \"pg_read_server_files\" role may read files "
                                  "of the server.")));
    if (!is_absolute_path(path))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("path must be absolute")));

    return so::pg::guard([&] {
        const so::pg::BackendRef &ref = so::pg::lookup_backend(backend);
        so::pg::require_backend_privilege(ref, so::pg::kWritePrivilege);
        return so::pg::tracked(so::pg::Operation::Put, backend, [&](so::pg::OperationSample &sample) {
            auto store = so::pg::lookup_store(backend);
            so::PutRequest request = put_request(*store, filename, content_type, metadata, attributes);
            so::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
            struct stat st;
            if (!fd || ::fstat(fd.get(), &st) != 0) {
                int err = errno;
                throw so::Error(err == ENOENT ? so::ErrorKind::NotFound : so::ErrorKind::Io,
                                "could not open the server file " + so::quoted(path) + ": " + so::errno_text(err));
            }
            if (!S_ISREG(st.st_mode))
                throw so::Error(so::ErrorKind::InvalidParameter, "server file " + so::quoted(path) +
                                                                     " is not a regular file");
            so::check_limits(ref.config(), static_cast<uint64_t>(st.st_size), request.content_type);
            so::FileReader source(std::move(fd), static_cast<uint64_t>(st.st_size), path);
            so::ObjectMeta meta = store->create_from(request, source);
            sample.bytes_written = static_cast<uint64_t>(st.st_size);
            try {
                so::pg::remember_created(store, meta);
            } catch (...) {
                store->remove(meta.filename, &meta);
                throw;
            }
            return so::pg::make_object_datum_from_store(meta);
        });
    });
}

}  // extern "C"
