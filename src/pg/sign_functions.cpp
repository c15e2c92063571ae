// so_sign, so_url and so_verify_url: URLs for stored objects.
#include <algorithm>
#include <cstring>
#include <string>

#include "core/backend_config.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/object_meta.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/operation_stats.hpp"
#include "pg/object_datum.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "access/xact.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "miscadmin.h"
#include "utils/timestamp.h"
}

namespace {

// C side: seconds since the epoch at the start of the statement, so every
// row of one statement gets the same expiry.
int64 statement_epoch_seconds() { return static_cast<int64>(timestamptz_to_time_t(GetCurrentStatementStartTimestamp())); }

// C side: an interval as whole seconds (a month counts 30 days, as in SQL).
int64 interval_seconds(const Interval *span) {
    return span->time / USECS_PER_SEC + static_cast<int64>(span->day) * SECS_PER_DAY +
           static_cast<int64>(span->month) * DAYS_PER_MONTH * SECS_PER_DAY;
}

so::HttpMethod method_arg(const char *method) {
    if (pg_strcasecmp(method, "GET") == 0) return so::HttpMethod::Get;
    if (pg_strcasecmp(method, "PUT") == 0) return so::HttpMethod::Put;
    char shown[64];
    so::message_text_into(shown, sizeof shown, method, 32);
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("method must be GET or PUT, not \"%s\"", shown)));
    pg_unreachable();
}

// C side: a download name goes into a Content-Disposition header.
void check_download_as(const char *name) {
    for (const unsigned char *p = reinterpret_cast<const unsigned char *>(name); *p; ++p)
        if (*p < 0x20 || *p == 0x7f)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("download_as must not contain control characters")));
}

enum class Signed { Done, NeedsRowCheck };

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_sign);
Datum so_sign(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();  // a row without a file gets no URL
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    if (PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("expires_in must not be null")));
    int64 seconds = interval_seconds(PG_GETARG_INTERVAL_P(1));
    if (seconds <= 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("expires_in must be a positive interval")));
    bool upload = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
    char *download_as = PG_NARGS() > 3 && !PG_ARGISNULL(3) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : nullptr;
    char *download_type = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? text_to_cstring(PG_GETARG_TEXT_PP(4)) : nullptr;
    if (download_as) check_download_as(download_as);
    if (download_type && !so::valid_media_type(download_type))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("download_type must be a media type such as text/plain"),
                        errdetail("It becomes the response's Content-Type: printable ASCII, type/subtype, "
                                  "optional parameters.")));
    int64 now = statement_epoch_seconds();
    AclMode needed = upload ? so::pg::kWritePrivilege : so::pg::kReadPrivilege;

    // One buffer for every row's URL: signing allocates nothing per row.
    static std::string url;
    auto sign = [&](bool checked) {
        return so::pg::guard([&] {
            const so::pg::BackendRef &ref = so::pg::lookup_backend(view.backend);
            if (!checked && !(so::pg::backend_privileges(ref, GetUserId()) & needed)) {
                if (upload) so::pg::require_backend_privilege(ref, needed);
                return Signed::NeedsRowCheck;  // a download a visible row may allow
            }
            so::SignRequest request;
            request.method = upload ? so::HttpMethod::Put : so::HttpMethod::Get;
            request.now = now;
            request.expires_in = seconds;
            if (download_as) request.download_as = download_as;
            if (download_type) request.download_type = download_type;
            // A download reads the version the value recorded; an upload
            // makes a new one.
            if (!upload && view.has_version_id) request.version_id = view.version_id;
            // A plain upload URL binds neither size nor type.
            if (upload && (ref.config().max_size || !ref.config().allowed_content_types.empty()))
                throw so::Error(so::ErrorKind::NotSupported,
                                "backend " + so::quoted(std::string(view.backend)) +
                                    " limits what is stored: an upload URL from so_sign cannot enforce that",
                                {}, "Use so_sign_upload, which signs the size and the content type.");
            return so::pg::tracked(so::pg::Operation::Sign, view.backend, [&](so::pg::OperationSample &) {
                const auto &store = so::pg::lookup_store(view.backend);
                store->validate_key(view.filename);
                store->sign(view.filename, request, url);
                return Signed::Done;
            });
        });
    };
    if (sign(false) == Signed::NeedsRowCheck) {
        so::pg::require_object_read(object, view);
        sign(true);
    }
    return PointerGetDatum(cstring_to_text_with_len(url.data(), static_cast<int>(url.size())));
}

// so_url(obj, expires_in): the object's public URL on a backend with
// public_base_url (for a role that may read the object), else the signed
// download URL so_sign gives: one function for applications to call.
PG_FUNCTION_INFO_V1(so_url);
Datum so_url(PG_FUNCTION_ARGS) {
    Datum object = PG_GETARG_DATUM(0);
    so::PackedView view = so::pg::object_view(object);
    bool is_public = so::pg::guard([&] {
        return so::pg::lookup_backend(view.backend).config().public_base_url.has_value();
    });
    if (!is_public) return DirectFunctionCall3(so_sign, object, PG_GETARG_DATUM(1), BoolGetDatum(false));
    so::pg::require_object_read(object, view);
    text *result = so::pg::guard([&] {
        const so::pg::BackendRef &ref = so::pg::lookup_backend(view.backend);
        so::pg::lookup_store(view.backend)->validate_key(view.filename);
        std::string url = *so::public_url(ref.config(), view.filename);
        auto *t = static_cast<text *>(so::pg::alloc(VARHDRSZ + url.size()));
        SET_VARSIZE(t, VARHDRSZ + url.size());
        memcpy(VARDATA(t), url.data(), url.size());
        return t;
    });
    PG_RETURN_TEXT_P(result);
}

// so_sign_upload(backend, filename, content_type, size, max_size,
// expires_in, method): a signed upload a client sends straight to the store,
// the backend's limits and the caller's inside what is signed.
PG_FUNCTION_INFO_V1(so_sign_upload);
Datum so_sign_upload(PG_FUNCTION_ARGS) {
    for (int arg : {0, 1, 2, 5, 6})
        if (PG_ARGISNULL(arg))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                            errmsg("backend, filename, content_type, expires_in and method must not be null")));
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *filename = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *content_type = text_to_cstring(PG_GETARG_TEXT_PP(2));
    bool has_size = !PG_ARGISNULL(3), has_max = !PG_ARGISNULL(4);
    int64 size = has_size ? PG_GETARG_INT64(3) : 0, max_size = has_max ? PG_GETARG_INT64(4) : 0;
    int64 seconds = interval_seconds(PG_GETARG_INTERVAL_P(5));
    char *method = text_to_cstring(PG_GETARG_TEXT_PP(6));
    if (seconds <= 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("expires_in must be a positive interval")));
    if (size < 0 || max_size < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("size and max_size must not be negative")));
    bool put = pg_strcasecmp(method, "PUT") == 0;
    if (!put && pg_strcasecmp(method, "POST") != 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("method must be POST or PUT")));
    if (put && !has_size)
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a PUT upload needs its exact size"),
                        errhint("A PUT signs Content-Length; for a size known only to the browser use POST "
                                "with max_size.")));
    int64 now = statement_epoch_seconds();

    char *json = so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::Sign, backend, [&](so::pg::OperationSample &) {
            const so::pg::BackendRef &ref = so::pg::lookup_backend(backend);
            so::pg::require_backend_privilege(ref, so::pg::kWritePrivilege);
            const so::BackendConfig &config = ref.config();
            auto store = so::pg::lookup_store(backend);
            store->validate_key(filename);
            if (!so::valid_media_type(content_type))
                throw so::Error(so::ErrorKind::InvalidParameter, "invalid content type " + so::quoted(content_type));
            so::check_content_type_allowed(config, content_type);
            // The largest upload: the caller's and the backend's limits, else
            // what one S3 PUT or POST can carry.
            uint64_t limit = uint64_t(5) << 30;
            if (config.max_size) limit = std::min<uint64_t>(limit, static_cast<uint64_t>(*config.max_size));
            if (has_max) {
                so::check_size_limit(config, static_cast<uint64_t>(max_size));
                limit = std::min<uint64_t>(limit, static_cast<uint64_t>(max_size));
            }
            if (has_size && static_cast<uint64_t>(size) > limit)
                throw so::Error(so::ErrorKind::LimitExceeded, "an upload of " + std::to_string(size) +
                                                                  " bytes is larger than its limit of " +
                                                                  std::to_string(limit) + " bytes");
            so::UploadSignRequest request;
            request.key = filename;
            request.content_type = content_type;
            request.form = put ? so::UploadForm::Put : so::UploadForm::Post;
            request.min_size = has_size ? static_cast<uint64_t>(size) : 0;
            request.max_size = has_size ? static_cast<uint64_t>(size) : limit;
            request.now = now;
            request.expires_in = seconds;
            so::SignedUpload upload = store->sign_upload(request);

            so::json::Value out;
            out.kind = so::json::Value::Kind::Object;
            auto text = [](const std::string &s) {
                so::json::Value v;
                v.kind = so::json::Value::Kind::String;
                v.text = s;
                return v;
            };
            auto object_of = [&](const std::vector<std::pair<std::string, std::string>> &pairs) {
                so::json::Value v;
                v.kind = so::json::Value::Kind::Object;
                for (const auto &[k, value] : pairs) v.members.push_back({k, text(value)});
                std::sort(v.members.begin(), v.members.end(),
                          [](const so::json::Member &a, const so::json::Member &b) { return a.key < b.key; });
                return v;
            };
            so::json::Value limit_value;
            limit_value.kind = so::json::Value::Kind::Number;
            limit_value.text = std::to_string(request.max_size);
            so::json::Value expires;
            expires.kind = so::json::Value::Kind::Number;
            expires.text = std::to_string(now + seconds);
            // Members in sorted order, as the canonical writer expects.
            out.members.push_back({"backend", text(backend)});
            out.members.push_back({"content_type", text(content_type)});
            out.members.push_back({"expires_at", expires});
            if (!upload.fields.empty()) out.members.push_back({"fields", object_of(upload.fields)});
            out.members.push_back({"filename", text(filename)});
            if (!upload.headers.empty()) out.members.push_back({"headers", object_of(upload.headers)});
            out.members.push_back({"max_size", limit_value});
            out.members.push_back({"method", text(upload.method)});
            out.members.push_back({"url", text(upload.url)});
            std::string written = so::json::write(out);
            char *result = static_cast<char *>(so::pg::alloc(written.size() + 1));
            std::memcpy(result, written.c_str(), written.size() + 1);
            return result;
        });
    });
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
}

PG_FUNCTION_INFO_V1(so_verify_url);
Datum so_verify_url(PG_FUNCTION_ARGS) {
    char *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
    so::HttpMethod method = PG_NARGS() > 1 ? method_arg(text_to_cstring(PG_GETARG_TEXT_PP(1))) : so::HttpMethod::Get;
    int64 now = statement_epoch_seconds();
    return so::pg::guard([&] {
        // Several backends may share a base_url: valid if any of them signed it.
        for (const auto &store : so::pg::all_stores())
            if (store->verifies_url(url, method, now)) return BoolGetDatum(true);
        return BoolGetDatum(false);
    });
}

}  // extern "C"
