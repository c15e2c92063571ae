#include "core/s3_store.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstdlib>
#include <ctime>
#include <set>

#include "core/aws_credential_chain.hpp"
#include "core/aws_credentials.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/gcs_credentials.hpp"
#include "core/gcs_headers.hpp"
#include "core/gcs_signer.hpp"
#include "core/http_values.hpp"
#include "core/interrupts.hpp"
#include "core/quiet_thread.hpp"
#include "core/retrying.hpp"
#include "core/s3_attributes.hpp"
#include "core/s3_metadata.hpp"
#include "core/s3_post_policy.hpp"
#include "core/s3_xml.hpp"
#include "core/uri.hpp"

namespace so {

namespace {

constexpr const char *kStagingPrefix = ".so-staging/";
// One ListObjectsV2 page: 1,000 keys of up to 1 KiB, with their XML.
constexpr size_t kMaxListingPage = 8 << 20;
constexpr int kMaxEmptyListingPages = 1000;

using http::parse_http_date;
using http::parse_iso8601;
using http::printable_ascii;
using http::strip_quotes;

}  // namespace

struct S3Store::Call {
    std::string method = "GET";
    std::string key;  // full key; empty for the bucket itself
    sigv4::Params query;
    sigv4::Params headers;
    const char *body = nullptr;
    size_t body_size = 0;
    std::string payload_sha256 = std::string(sigv4::kEmptyPayloadSha256);
    std::function<char *(uint64_t)> destination;
    uint64_t max_destination = UINT64_MAX;
    size_t max_body = http::kDefaultMaxBody;
    bool ignore_interrupts = false;
};

S3Store::S3Store(std::string backend_key, const S3Config &config)
    : Store(std::move(backend_key)),
      config_(config),
      endpoint_(sigv4::Endpoint::parse(config.endpoint.value_or(
          config.gcs ? "https://storage.googleapis.com" : "https://s3." + config.region + ".amazonaws.com"))),
      // Virtual-hosted on AWS, except for bucket names with dots (a TLS
      // wildcard certificate covers one label); path-style elsewhere.
      style_(config.path_style.value_or(config.gcs || config.endpoint.has_value() ||
                                        config.bucket.find('.') != std::string::npos)
                 ? sigv4::AddressingStyle::Path
                 : sigv4::AddressingStyle::VirtualHosted),
      client_(http::Timeouts{config.connect_timeout_ms.value_or(10000), config.request_timeout_ms.value_or(300000)}) {
    client_.set_restricted(config.restricted);
    client_.set_ca_file(config.ca_file);
}

void S3Store::set_default_timeouts(long connect_ms, long request_ms) {
    client_.set_timeouts({config_.connect_timeout_ms ? *config_.connect_timeout_ms : connect_ms,
                          config_.request_timeout_ms ? *config_.request_timeout_ms : request_ms});
}

S3Store::~S3Store() = default;

const sigv4::Target &S3Store::object_target(std::string_view prefix, std::string_view key) {
    if (object_target_.base_url.empty()) {
        // The bucket's own target gives base URL, host and the path before
        // the key: "/bucket" (path-style) or "" (virtual-hosted).
        object_target_ = sigv4::s3_target(endpoint_, style_, config_.bucket, "");
        if (style_ == sigv4::AddressingStyle::VirtualHosted) object_target_.path.clear();
        object_target_.path += '/';
        object_path_base_ = object_target_.path.size();
    }
    object_target_.path.resize(object_path_base_);
    sigv4::append_uri_encoded(object_target_.path, prefix, true);
    sigv4::append_uri_encoded(object_target_.path, key, true);
    return object_target_;
}

const sigv4::Target &S3Store::object_target(std::string_view key_in_bucket) { return object_target("", key_in_bucket); }

sigv4::Signer &S3Store::signer() {
    if (config_.credential_source != CredentialSource::Options) return ambient_signer();
    if (signer_) return *signer_;
    if (config_.access_key_id.empty() || config_.secret_access_key.empty())
        throw Error(ErrorKind::NotConfigured, "storage backend " + quoted(backend_key_) + " has no S3 credentials", {},
                    "Set the options access_key_id and secret_access_key, or \"credentials\".");
    signer_ = std::make_unique<sigv4::Signer>(
        sigv4::Credentials{config_.access_key_id, config_.secret_access_key, config_.session_token}, config_.region);
    return *signer_;
}

sigv4::Signer &S3Store::ambient_signer() {
    if (config_.restricted)
        throw Error(ErrorKind::PermissionDenied,
                    "storage backend " + quoted(backend_key_) +
                        " may not use the database server's own credentials: it was not registered by a superuser");
    if (!credentials_) {
        static const std::pair<CredentialSource, aws::Provider> kProviders[] = {
            {CredentialSource::Environment, aws::Provider::Environment},
            {CredentialSource::File, aws::Provider::SharedFiles},
            {CredentialSource::Chain, aws::Provider::Chain},
            {CredentialSource::WebIdentity, aws::Provider::WebIdentity},
            {CredentialSource::Container, aws::Provider::Container},
            {CredentialSource::InstanceMetadata, aws::Provider::InstanceMetadata}};
        aws::ChainOptions options;
        for (const auto &[source, provider] : kProviders)
            if (source == config_.credential_source) options.provider = provider;
        if (config_.credential_source == CredentialSource::File) options.credentials_file = config_.credentials_file;
        // "default" is the profile's name in files, not a choice: without
        // the option, AWS_PROFILE decides, as in the SDKs.
        if (config_.profile_set) options.profile = config_.profile;
        options.region = config_.region;
        options.backend = backend_key_;
        credentials_ = std::make_unique<aws::CredentialCache>(std::move(options));
    }
    bool renewed = false;
    const sigv4::Credentials &credentials = credentials_->get(static_cast<int64_t>(std::time(nullptr)), &renewed);
    if (renewed || !signer_) signer_ = std::make_unique<sigv4::Signer>(credentials, config_.region);
    return *signer_;
}

void S3Store::validate_key(std::string_view key, bool allow_reserved) const {
    check_object_key(key, config_.prefix.size(), kMaxKey, allow_reserved);
}

http::Request S3Store::build(const Call &call) {
    sigv4::Target target = call.key.empty() ? sigv4::s3_target(endpoint_, style_, config_.bucket, "")
                                            : object_target(call.key);
    http::Request request;
    request.method = call.method;
    request.url = sigv4::request_url(target, call.query);
    request.headers = call.headers;
    request.headers.emplace_back("Host", target.host);
    if (!config_.gcs_credentials.empty()) {  // GCS with an OAuth token instead of an HMAC key
        request.headers.emplace_back("Authorization", "Bearer " + gcs_token());
    } else if (config_.gcs) {
        // GCS takes x-goog-* headers only in GOOG4 signatures.
        for (auto &h : gcs_hmac().sign_request(call.method, target.path, call.query, request.headers,
                                               call.payload_sha256, static_cast<int64_t>(std::time(nullptr))))
            request.headers.push_back(std::move(h));
    } else {
        sigv4::HttpRequest to_sign{call.method, target, call.query, call.headers, call.payload_sha256};
        sigv4::AuthHeaders signed_headers = signer().sign_headers(to_sign, static_cast<int64_t>(std::time(nullptr)));
        for (auto &h : signed_headers.to_send()) request.headers.push_back(std::move(h));
    }
    request.body = call.body;
    request.body_size = call.body_size;
    request.body_destination = call.destination;
    request.max_destination = call.max_destination;
    request.max_body = call.max_body;
    request.ignore_interrupts = call.ignore_interrupts;
    return request;
}

http::Response S3Store::execute(const Call &call) {
    return perform_with_retries(client_, {service_name(), endpoint_.authority, backend_key_}, config_.max_retries,
                                call.ignore_interrupts, [&] { return build(call); });
}

void S3Store::fail(const http::Response &response, const std::string &what, const std::string &key) const {
    std::string code, message, request_id;
    try {
        code = s3xml::text(response.body, "Code");
        message = s3xml::text(response.body, "Message");
        request_id = s3xml::text(response.body, "RequestId");
    } catch (const Error &) {
        // Not an S3 error document (a proxy's page, or garbage): the status says enough.
        code.clear();
        message.clear();
        request_id.clear();
    }
    if (request_id.empty())
        if (const auto *h = response.header("x-amz-request-id")) request_id = *h;
    if (response.status == 404 && (code.empty() || code == "NoSuchKey" || code == "NoSuchVersion"))
        throw_not_found(backend_key_, key);
    if (response.status == 412) throw_already_exists(backend_key_, key);
    // An archived object (GLACIER, DEEP_ARCHIVE) must be restored before
    // S3 serves it: a state of the object, not a missing right.
    if (code == "InvalidObjectState")
        throw Error(ErrorKind::NotConfigured,
                    std::string(service_name()) + " refused to " + what + " " + quoted(key) + " in backend " + quoted(backend_key_) +
                        ": InvalidObjectState: " + message_text(message),
                    "HTTP status " + std::to_string(response.status) +
                        (request_id.empty() ? "" : ", request id " + message_text(request_id)),
                    "Objects in an archive storage class must be restored (RestoreObject) before they can be read.");
    std::string reason = code.empty() ? "HTTP " + std::to_string(response.status)
                                      : message_text(code) + (message.empty() ? "" : ": " + message_text(message));
    // Credential problems are "permission denied" whatever status S3 uses
    // for them (some are 400s).
    static const char *const kAuthCodes[] = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                                             "InvalidToken", "ExpiredToken", "TokenRefreshRequired",
                                             "MissingSecurityHeader", "AuthorizationHeaderMalformed"};
    bool auth = response.status == 401 || response.status == 403 ||
                std::any_of(std::begin(kAuthCodes), std::end(kAuthCodes), [&](const char *c) { return code == c; });
    throw Error(auth ? ErrorKind::PermissionDenied : ErrorKind::Io,
                std::string(service_name()) + " refused to " + what + " " + quoted(key) + " in backend " +
                    quoted(backend_key_) + ": " + reason,
                "HTTP status " + std::to_string(response.status) +
                    (request_id.empty() ? "" : ", request id " + message_text(request_id)));
}

sigv4::Params S3Store::object_headers(const PutRequest &request) const {
    if (!printable_ascii(request.content_type))
        throw Error(ErrorKind::InvalidParameter, "content type " + quoted(request.content_type) +
                                                     " cannot be sent to S3: it must be printable ASCII");
    sigv4::Params headers{{"Content-Type", request.content_type}};
    if (config_.gcs) {
        for (auto &h : gcs::encode_metadata(request.metadata_json)) headers.push_back(std::move(h));
        gcs::append_put_headers(request.attributes, headers);
        return headers;
    }
    for (auto &h : s3meta::encode(request.metadata_json)) headers.push_back(std::move(h));
    s3attr::append_put_headers(request.attributes, headers);
    s3attr::append_encryption(config_, headers);
    return headers;
}

PutRequest S3Store::with_defaults(const PutRequest &request) const {
    PutRequest merged = request;
    merged.attributes = merge_attributes(config_.default_attributes, request.attributes);
    return merged;
}

std::string S3Store::written_attributes(const PutRequest &request, const http::Response &response) const {
    ObjectAttributes written = request.attributes;
    ObjectAttributes reported = config_.gcs ? ObjectAttributes{} : s3attr::from_response(response.headers);
    written.sse = reported.sse;
    written.sse_kms_key_id = reported.sse_kms_key_id;
    // S3 reports nothing for STANDARD; neither do we, so values agree with so_stat.
    if (written.storage_class == "STANDARD") written.storage_class.reset();
    if (written.tags && written.tags->empty()) written.tags.reset();
    return format_attributes(written);
}

ObjectMeta S3Store::put_single(const PutRequest &request, const std::string &full_key, bool create_only) {
    std::string_view content(request.data, request.size);
    std::string md5 = crypto::md5(content);
    std::string sha256 = crypto::hex(crypto::sha256(content));
    Call call;
    call.method = "PUT";
    call.key = full_key;
    call.headers = object_headers(request);
    call.headers.emplace_back("Content-MD5", crypto::base64(md5));
    if (create_only) add_create_only(call.headers);
    call.body = request.data;
    call.body_size = request.size;
    call.payload_sha256 = sha256;
    http::Response response = execute(call);
    if (response.status != 200) fail(response, "write", request.key);

    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = request.key;
    meta.content_type = request.content_type;
    meta.size = static_cast<int64_t>(request.size);
    meta.last_modified = parse_http_date(response.header("date")).value_or(static_cast<double>(std::time(nullptr)));
    std::string etag = strip_quotes(response.header("etag"));
    meta.etag = etag.empty() ? crypto::hex(md5) : etag;
    meta.checksum = sha256;
    if (auto version = version_of(response)) meta.version_id = *version;
    meta.metadata = request.metadata_json;
    meta.attributes = written_attributes(request, response);
    return meta;
}

void S3Store::abort_multipart(const std::string &full_key, const std::string &upload_id) {
    std::string key = multipart_key(full_key, upload_id);
    gcs_multipart_keys_.erase(upload_id);
    try {
        Call call;
        call.method = "DELETE";
        call.key = key;
        call.query = {{"uploadId", upload_id}};
        call.ignore_interrupts = true;
        execute(call);
    } catch (...) {
        // Nothing more to do from here; a bucket lifecycle rule for
        // incomplete multipart uploads removes what remains.
    }
}

ObjectMeta S3Store::put_multipart(const PutRequest &request, const std::string &full_key, bool create_only) {
    std::string upload_id = start_multipart(request, full_key);

    struct Part {
        int number;
        const char *data;
        size_t size;
        std::string md5_base64, sha256_hex, etag;
    };
    std::vector<Part> parts;
    size_t part_size = static_cast<size_t>(config_.part_size);
    for (size_t offset = 0, number = 1; offset < request.size; offset += part_size, ++number)
        parts.push_back({static_cast<int>(number), request.data + offset, std::min(part_size, request.size - offset),
                         "", "", ""});

    // Two helper threads hash while the parts travel: one the parts (in
    // order, each published as it is done), one the whole object for the
    // checksum. The transfer loop sends a part as soon as its hashes are in.
    std::atomic<size_t> parts_hashed{0};
    std::atomic<bool> stop{false}, hashing_failed{false};
    std::exception_ptr hash_failure;
    std::mutex hash_failure_mutex;
    std::string whole_sha256;
    auto guarded = [&](auto work) {
        return [&, work] {
            try {
                work();
            } catch (...) {
                std::lock_guard<std::mutex> lock(hash_failure_mutex);
                if (!hash_failure) hash_failure = std::current_exception();
                hashing_failed.store(true, std::memory_order_release);
            }
        };
    };
    {
        QuietThread part_hasher(guarded([&] {
            for (size_t i = 0; i < parts.size() && !stop.load(std::memory_order_relaxed); ++i) {
                std::string_view piece(parts[i].data, parts[i].size);
                parts[i].md5_base64 = crypto::base64(crypto::md5(piece));
                parts[i].sha256_hex = crypto::hex(crypto::sha256(piece));
                parts_hashed.store(i + 1, std::memory_order_release);
            }
        }));
        QuietThread whole_hasher(guarded([&] {
            crypto::Digest whole(crypto::Digest::Algorithm::Sha256);
            for (size_t offset = 0; offset < request.size && !stop.load(std::memory_order_relaxed);
                 offset += 1 << 20)
                whole.update(request.data + offset, std::min<size_t>(1 << 20, request.size - offset));
            whole_sha256 = crypto::hex(whole.finish());
        }));
        // Stops the hashers early on any failure below; they are joined
        // before anything they touch goes away.
        struct StopOnExit {
            std::atomic<bool> &stop;
            ~StopOnExit() { stop.store(true); }
        } stop_on_exit{stop};

        try {
            auto part_request = [&](Part &p) {
                Call call;
                call.method = "PUT";
                call.key = multipart_key(full_key, upload_id);
                call.query = {{"partNumber", std::to_string(p.number)}, {"uploadId", upload_id}};
                call.headers = {{"Content-MD5", p.md5_base64}};
                s3attr::append_customer_key(config_, call.headers);
                call.body = p.data;
                call.body_size = p.size;
                call.payload_sha256 = p.sha256_hex;
                return build(call);
            };
            // Upload in rounds: all pending parts in parallel; the ones that
            // failed in a retryable way go again after a backoff.
            std::vector<Part *> pending;
            for (auto &p : parts) pending.push_back(&p);
            for (int round = 0; !pending.empty(); ++round) {
                std::vector<http::Outcome> outcomes =
                    client_.perform_as_ready(pending.size(), config_.max_concurrency, [&](size_t i, http::Request &slot) {
                        if (hashing_failed.load(std::memory_order_acquire)) {
                            std::lock_guard<std::mutex> lock(hash_failure_mutex);
                            std::rethrow_exception(hash_failure);
                        }
                        if (parts_hashed.load(std::memory_order_acquire) < static_cast<size_t>(pending[i]->number))
                            return false;
                        slot = part_request(*pending[i]);
                        return true;
                    });
                std::vector<Part *> again;
                for (size_t i = 0; i < pending.size(); ++i) {
                    const http::Outcome &o = outcomes[i];
                    if (o.transport_ok && o.response.status == 200) {
                        pending[i]->etag = strip_quotes(o.response.header("etag"));
                        continue;
                    }
                    bool retryable = o.transport_ok ? retryable_status(o.response.status) : o.retryable;
                    if (!retryable || round >= config_.max_retries) {
                        if (!o.transport_ok) throw_unreachable({service_name(), endpoint_.authority, backend_key_}, o.error);
                        fail(o.response, "write part " + std::to_string(pending[i]->number) + " of", request.key);
                    }
                    note_store_retry();
                    again.push_back(pending[i]);
                }
                pending = std::move(again);
                if (!pending.empty()) retry_backoff(round);
            }
        } catch (...) {
            stop.store(true);
            part_hasher.join();
            whole_hasher.join();
            abort_multipart(full_key, upload_id);
            throw;
        }
        part_hasher.join();
        whole_hasher.join();
        if (hashing_failed.load()) {
            abort_multipart(full_key, upload_id);
            std::rethrow_exception(hash_failure);
        }
    }

    std::vector<std::string> etags;
    for (const auto &p : parts) etags.push_back(p.etag);
    return finish_multipart(request, full_key, upload_id, etags, create_only, request.size, whole_sha256);
}

std::string S3Store::start_multipart(const PutRequest &request, const std::string &full_key) {
    // GCS takes no precondition on completing a multipart upload: there the
    // parts go to an object of our own, copied to the key at the end with
    // x-goog-if-generation-match (finish_multipart).
    std::string key = config_.gcs ? config_.prefix + kStagingPrefix + "mp-" + crypto::hex(crypto::random_bytes(8))
                                  : full_key;
    Call create;
    create.method = "POST";
    create.key = key;
    create.query = {{"uploads", ""}};
    create.headers = object_headers(request);
    http::Response created = execute(create);
    std::string upload_id = s3xml::text(created.body, "UploadId");
    if (created.status != 200 || upload_id.empty()) fail(created, "start writing", request.key);
    if (config_.gcs) gcs_multipart_keys_[upload_id] = key;
    return upload_id;
}

std::string S3Store::multipart_key(const std::string &full_key, const std::string &upload_id) const {
    auto it = gcs_multipart_keys_.find(upload_id);
    return it == gcs_multipart_keys_.end() ? full_key : it->second;
}

ObjectMeta S3Store::finish_gcs_multipart(const PutRequest &request, const std::string &full_key,
                                         const std::string &completed_key, bool create_only, uint64_t size,
                                         std::string checksum) {
    Call copy;
    copy.method = "PUT";
    copy.key = full_key;
    copy.headers = {{gcs::kCopySourceHeader, "/" + config_.bucket + "/" + uri::encode(completed_key, true)}};
    append_storage_class(request.attributes, copy.headers);
    if (create_only) add_create_only(copy.headers);
    http::Response copied = execute(copy);
    // The parts' object goes whatever happened; the sweeper gets it if not.
    try {
        Call remove;
        remove.method = "DELETE";
        remove.key = completed_key;
        execute(remove);
    } catch (const Error &) {
    }
    if (copied.status != 200 || copied.body.find("<Error>") != std::string::npos) fail(copied, "finish writing", request.key);
    return assembled_meta(request, copied, size, std::move(checksum));
}

ObjectMeta S3Store::assembled_meta(const PutRequest &request, const http::Response &response, uint64_t size,
                                   std::string checksum) const {
    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = request.key;
    meta.content_type = request.content_type;
    meta.size = static_cast<int64_t>(size);
    meta.last_modified = parse_http_date(response.header("date")).value_or(static_cast<double>(std::time(nullptr)));
    std::string etag = s3xml::text(response.body, "ETag");
    meta.etag = strip_quotes(&etag);
    meta.checksum = std::move(checksum);
    if (auto version = version_of(response)) meta.version_id = *version;
    meta.metadata = request.metadata_json;
    meta.attributes = written_attributes(request, response);
    return meta;
}

ObjectMeta S3Store::finish_multipart(const PutRequest &request, const std::string &full_key,
                                     const std::string &upload_id, const std::vector<std::string> &part_etags,
                                     bool create_only, uint64_t size, std::string checksum) {
    try {
        std::string body = "<CompleteMultipartUpload>";
        for (size_t i = 0; i < part_etags.size(); ++i)
            body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" +
                    s3xml::escape(part_etags[i]) + "\"</ETag></Part>";
        body += "</CompleteMultipartUpload>";
        Call complete;
        complete.method = "POST";
        complete.key = multipart_key(full_key, upload_id);
        complete.query = {{"uploadId", upload_id}};
        if (create_only && !config_.gcs) add_create_only(complete.headers);
        complete.body = body.data();
        complete.body_size = body.size();
        complete.payload_sha256 = crypto::hex(crypto::sha256(body));
        http::Response done = execute(complete);
        // S3 may answer 200 and report the failure in the body.
        if (done.status != 200 || done.body.find("<Error>") != std::string::npos) fail(done, "finish writing", request.key);
        if (config_.gcs) {
            std::string completed = complete.key;
            gcs_multipart_keys_.erase(upload_id);
            return finish_gcs_multipart(request, full_key, completed, create_only, size, std::move(checksum));
        }

        return assembled_meta(request, done, size, std::move(checksum));
    } catch (...) {
        abort_multipart(full_key, upload_id);
        throw;
    }
}

ObjectMeta S3Store::create_from(const PutRequest &call_request, ByteSource &source) {
    const PutRequest request = with_defaults(call_request);
    const uint64_t size = source.size();
    const size_t part_size = static_cast<size_t>(config_.part_size);
    // Gathers up to n bytes of the source into buffer.
    auto fill = [&source](std::string &buffer, size_t n) {
        buffer.clear();
        while (buffer.size() < n) {
            std::string_view piece = source.next(n - buffer.size());
            if (piece.empty()) break;
            buffer.append(piece);
        }
    };
    std::string buffer;
    if (size <= part_size) {
        fill(buffer, static_cast<size_t>(size));
        PutRequest whole = request;
        whole.data = buffer.data();
        whole.size = buffer.size();
        return put_single(whole, full_key(request.key), true);
    }
    // One part at a time through one buffer: memory stays at part_size
    // whatever the object's size.
    std::string upload_id = start_multipart(request, full_key(request.key));
    std::vector<std::string> etags;
    crypto::Digest whole(crypto::Digest::Algorithm::Sha256);
    uint64_t sent = 0;
    try {
        for (int number = 1;; ++number) {
            fill(buffer, part_size);
            if (buffer.empty()) break;
            whole.update(buffer.data(), buffer.size());
            etags.push_back(upload_part(request.key, upload_id, number, buffer));
            sent += buffer.size();
        }
    } catch (...) {
        abort_multipart(full_key(request.key), upload_id);
        throw;
    }
    return finish_multipart(request, full_key(request.key), upload_id, etags, true, sent, crypto::hex(whole.finish()));
}

std::string S3Store::upload_part(const std::string &key, const std::string &upload_id, int number,
                                 std::string_view data) {
    Call call;
    call.method = "PUT";
    call.key = multipart_key(full_key(key), upload_id);
    call.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
    call.headers = {{"Content-MD5", crypto::base64(crypto::md5(data))}};
    s3attr::append_customer_key(config_, call.headers);
    call.body = data.data();
    call.body_size = data.size();
    call.payload_sha256 = crypto::hex(crypto::sha256(data));
    http::Response response = execute(call);
    if (response.status != 200) fail(response, "write part " + std::to_string(number) + " of", key);
    return strip_quotes(response.header("etag"));
}

namespace {

// A put from several calls: whole parts go out as they fill (straight
// from the caller's piece when it holds one), the rest waits in one
// buffer; an object that never fills a part is one plain PUT.
class S3Upload final : public StreamingUpload {
public:
    S3Upload(S3Store &store, PutRequest request, size_t part_size)
        : store_(store), request_(std::move(request)), parts_(part_size) {
        request_.data = nullptr;
    }
    ~S3Upload() override = default;

    void append(const char *data, size_t size) override {
        whole_.update(data, size);
        size_ += size;
        parts_.append(std::string_view(data, size), [this](std::string_view part) { send(part); });
    }
    uint64_t size() const override { return size_; }

    ObjectMeta finish() override {
        const std::string &rest = parts_.rest();
        if (upload_id_.empty()) {
            PutRequest whole = request_;
            whole.data = rest.data();
            whole.size = rest.size();
            return store_.create(whole);
        }
        if (!rest.empty()) send(rest);
        std::string id = std::move(upload_id_);
        upload_id_.clear();  // finish_multipart aborts it on failure itself
        return store_.finish_upload(request_, id, etags_, size_, crypto::hex(whole_.finish()));
    }

    void abort() override {
        if (upload_id_.empty()) return;
        store_.abort_upload(request_.key, upload_id_);
        upload_id_.clear();
    }
    bool abort_uses_network() const override { return !upload_id_.empty(); }

private:
    void send(std::string_view part) {
        if (upload_id_.empty()) upload_id_ = store_.start_upload(request_);
        etags_.push_back(store_.upload_part(request_.key, upload_id_, static_cast<int>(etags_.size()) + 1, part));
    }

    S3Store &store_;
    PutRequest request_;
    PartSplitter parts_;
    std::string upload_id_;
    std::vector<std::string> etags_;
    crypto::Digest whole_{crypto::Digest::Algorithm::Sha256};
    uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<StreamingUpload> S3Store::begin_upload(const PutRequest &request) {
    return std::make_unique<S3Upload>(*this, with_defaults(request), static_cast<size_t>(config_.part_size));
}

std::string S3Store::start_upload(const PutRequest &request) { return start_multipart(request, full_key(request.key)); }

ObjectMeta S3Store::finish_upload(const PutRequest &request, const std::string &upload_id,
                                  const std::vector<std::string> &etags, uint64_t size, std::string checksum) {
    return finish_multipart(request, full_key(request.key), upload_id, etags, true, size, std::move(checksum));
}

void S3Store::abort_upload(const std::string &key, const std::string &upload_id) {
    abort_multipart(full_key(key), upload_id);
}

std::unique_ptr<ByteSource> S3Store::open_reader(const std::string &key, const std::string &handle,
                                                 const std::string &version_id) {
    auto meta = handle.empty() ? stat(key, version_id) : stat(handle, "");
    if (!meta) throw_not_found(backend_key_, key);
    return std::make_unique<RangedReader>(*this, key, handle, handle.empty() ? version_id : "",
                                          static_cast<uint64_t>(meta->size.value_or(0)));
}

ObjectMeta S3Store::create(const PutRequest &call_request) {
    const PutRequest request = with_defaults(call_request);
    if (request.size > static_cast<size_t>(config_.part_size))
        return put_multipart(request, full_key(request.key), true);
    return put_single(request, full_key(request.key), true);
}

ObjectMeta S3Store::stage(const PutRequest &call_request, const std::string &tag, std::string *handle) {
    const PutRequest request = with_defaults(call_request);
    *handle = std::string(kStagingPrefix) + tag + "-" + crypto::hex(crypto::random_bytes(8));
    PutRequest staged = request;
    staged.key = *handle;
    ObjectMeta meta = request.size > static_cast<size_t>(config_.part_size)
                          ? put_multipart(staged, full_key(*handle), false)
                          : put_single(staged, full_key(*handle), false);
    meta.filename = request.key;
    if (request.attributes.storage_class) staged_class_[*handle].storage_class = request.attributes.storage_class;
    // promote() copies it in one request, which gives the object the MD5 of
    // its content as etag, whatever the staged upload's was.
    meta.etag = crypto::hex(crypto::md5(std::string_view(request.data, request.size)));
    meta.version_id.reset();
    return meta;
}

Backup S3Store::promote(const std::string &key, const std::string &handle, const std::string &) {
    Call copy;
    copy.method = "PUT";
    copy.key = full_key(key);
    copy.headers = {{copy_source_header(), "/" + config_.bucket + "/" + uri::encode(full_key(handle), true)}};
    // The copy takes the staged object's headers, metadata and tags, but
    // neither its class nor its encryption: those are asked for again.
    auto asked = staged_class_.find(handle);
    append_storage_class(asked == staged_class_.end() ? config_.default_attributes : asked->second, copy.headers);
    if (asked != staged_class_.end()) staged_class_.erase(asked);
    s3attr::append_encryption(config_, copy.headers);
    s3attr::append_customer_key(config_, copy.headers, true);
    http::Response response = execute(copy);
    if (response.status != 200 || response.body.find("<Error>") != std::string::npos) fail(response, "replace", key);
    // The staged object is left for the caller to remove once the
    // transaction has committed (drop_backup); the copy cannot be undone.
    Backup backup;
    backup.key = key;
    backup.handle = handle;
    backup.restorable = false;
    return backup;
}

void S3Store::discard(const std::string &key, const std::string &handle) {
    staged_class_.erase(handle);
    Call call;
    call.method = "DELETE";
    call.key = full_key(handle);
    http::Response response = execute(call);
    if (response.status != 204 && response.status != 200 && response.status != 404)
        fail(response, "discard the new version of", key);
}

bool S3Store::restore(const Backup &) {
    // S3 has no undo for a copy that replaced an object: see the README.
    return false;
}

void S3Store::drop_backup(const Backup &backup) {
    if (!backup.handle.empty()) discard(backup.key, backup.handle);
}

bool S3Store::remove(const std::string &key, const ObjectMeta *expected) {
    // A version id names one immutable version: delete exactly that one.
    // Without one, a later put may have reused the key: then the object
    // there is not ours to remove.
    bool versioned = expected && expected->version_id && !expected->version_id->empty();
    if (expected && expected->etag && !versioned) {
        auto current = stat(key, "");
        if (!current) return false;
        if (current->etag != expected->etag) return false;
    }
    Call call;
    call.method = "DELETE";
    call.key = full_key(key);
    if (versioned) call.query = {{version_param(), *expected->version_id}};
    http::Response response = execute(call);
    if (response.status == 404) return false;
    if (response.status != 204 && response.status != 200) fail(response, "delete", key);
    return true;
}

bool S3Store::exists(const std::string &key, const std::string &version_id) {
    Call call;
    call.method = "HEAD";
    call.key = full_key(key);
    if (!version_id.empty()) call.query = {{version_param(), version_id}};
    s3attr::append_customer_key(config_, call.headers);
    http::Response response = execute(call);
    // 405: the version is a delete marker, which holds no object.
    if (response.status == 404 || (response.status == 405 && !version_id.empty())) return false;
    if (response.status != 200) fail(response, "look up", key);
    return true;
}

std::optional<ObjectMeta> S3Store::stat(const std::string &key, const std::string &version_id) {
    Call call;
    call.method = "HEAD";
    call.key = full_key(key);
    if (!version_id.empty()) call.query = {{version_param(), version_id}};
    s3attr::append_customer_key(config_, call.headers);
    // A SHA-256 the writer sent (x-amz-checksum-sha256) comes back only when asked for.
    if (!config_.gcs) call.headers.emplace_back("x-amz-checksum-mode", "ENABLED");
    http::Response response = execute(call);
    if (response.status == 404 || (response.status == 405 && !version_id.empty())) return std::nullopt;
    if (response.status != 200) fail(response, "look up", key);
    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = key;
    if (const auto *type = response.header("content-type")) meta.content_type = *type;
    if (const auto *length = response.header("content-length")) meta.size = std::strtoll(length->c_str(), nullptr, 10);
    meta.last_modified = parse_http_date(response.header("last-modified"));
    std::string etag = strip_quotes(response.header("etag"));
    if (!etag.empty()) meta.etag = etag;
    if (auto version = version_of(response)) meta.version_id = *version;
    if (config_.gcs) {
        meta.metadata = gcs::decode_metadata(response.headers);
        meta.attributes = format_attributes(gcs::from_response(response.headers));
        return meta;
    }
    meta.metadata = s3meta::decode(response.headers);
    // Only a whole-object checksum is the content's SHA-256; a multipart
    // upload's ("...-N") is a checksum of checksums.
    if (const auto *sha = response.header("x-amz-checksum-sha256"); sha && sha->find('-') == std::string::npos)
        if (auto raw = crypto::base64_decode(*sha); raw && raw->size() == 32) meta.checksum = crypto::hex(*raw);
    ObjectAttributes attributes = s3attr::from_response(response.headers);
    // Tags are not among the headers, only their count: one more request.
    if (s3attr::tag_count(response.headers) > 0) {
        Call tagging;
        tagging.key = full_key(key);
        tagging.query = {{"tagging", ""}};
        if (meta.version_id) tagging.query.emplace_back("versionId", *meta.version_id);
        http::Response tags = execute(tagging);
        if (tags.status != 200) fail(tags, "read the tags of", key);
        attributes.tags = s3attr::parse_tagging(tags.body);
    }
    meta.attributes = format_attributes(attributes);
    return meta;
}

size_t S3Store::fetch(const std::string &key, const std::string &handle, const std::string &version_id,
                      uint64_t offset, std::optional<uint64_t> length,
                      const std::function<char *(uint64_t)> &allocate) {
    const std::string object = full_key(handle.empty() ? key : handle);
    if (length && *length == 0) {
        if (!(handle.empty() ? exists(key, version_id) : exists(handle, ""))) throw_not_found(backend_key_, key);
        allocate(0);
        return 0;
    }
    Call call;
    call.key = object;
    // A staged object has one version: the handle names it.
    if (handle.empty() && !version_id.empty()) call.query = {{version_param(), version_id}};
    if (offset > 0 || length)
        call.headers = {{"Range", "bytes=" + std::to_string(offset) + "-" +
                                      (length ? std::to_string(offset + *length - 1) : "")}};
    s3attr::append_customer_key(config_, call.headers);
    // A ranged read is sized by what was asked for, never by what the server announces.
    if (length) call.max_destination = *length;
    bool allocated = false;
    call.destination = [&](uint64_t size) {
        allocated = true;
        return allocate(size);
    };
    http::Response response = execute(call);
    if (response.status == 416) {  // the range starts past the end
        allocate(0);
        return 0;
    }
    if (response.status == 405 && handle.empty() && !version_id.empty()) throw_not_found(backend_key_, key);
    if (response.status != 200 && response.status != 206) fail(response, "read", key);
    if (!allocated) allocate(0);  // an empty object: no body arrived
    return static_cast<size_t>(response.body_written);
}

void S3Store::sign(std::string_view key, const SignRequest &request, std::string &url) {
    if (request.expires_in > sigv4::kMaxPresignExpiry)
        throw Error(ErrorKind::InvalidParameter, "S3 presigned URLs expire after at most 7 days (604800 seconds)");
    if (request.method == HttpMethod::Put && (request.download_as || request.download_type))
        throw Error(ErrorKind::InvalidParameter, "download_as and download_type apply to downloads only");
    if (request.method == HttpMethod::Put && !request.version_id.empty())
        throw Error(ErrorKind::InvalidParameter, "an upload URL cannot name a version",
                    "An upload makes a new version; sign the upload for a value without version_id.");
    if (config_.gcs) return sign_gcs(key, request, url);
    sigv4::Params extra;
    if (request.download_as)
        extra.emplace_back("response-content-disposition", http::attachment_disposition(*request.download_as));
    if (request.download_type) extra.emplace_back("response-content-type", *request.download_type);
    if (!request.version_id.empty()) extra.emplace_back("versionId", std::string(request.version_id));
    // SSE-C: the key headers are signed, so the URL works only for a
    // client that sends them (S3 has no way to carry them in the URL).
    sigv4::Params signed_headers;
    s3attr::append_customer_key(config_, signed_headers);
    for (auto &[name, value] : signed_headers)
        for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    signer().presign_into(url, request.method == HttpMethod::Put ? "PUT" : "GET", object_target(config_.prefix, key),
                          request.expires_in, request.now, extra, signed_headers);
}

SignedUpload S3Store::sign_upload(const UploadSignRequest &request) {
    if (!config_.sse_customer_key.empty())
        throw Error(ErrorKind::NotSupported,
                    "backend " + quoted(backend_key_) + " encrypts with a customer key (SSE-C): a signed upload "
                    "would hand the key to the client",
                    {}, "Upload through so_put, or use a backend with sse \"AES256\" or \"aws:kms\".");
    if (request.expires_in > sigv4::kMaxPresignExpiry)
        throw Error(ErrorKind::InvalidParameter, "S3 signed uploads expire after at most 7 days (604800 seconds)");
    if (config_.gcs) return sign_gcs_upload(request);
    // What every upload carries: the type, the backend's default
    // attributes, its encryption; as form fields or as signed headers.
    sigv4::Params carried{{"Content-Type", request.content_type}};
    s3attr::append_put_headers(config_.default_attributes, carried);
    s3attr::append_encryption(config_, carried);
    SignedUpload upload;
    const std::string key = full_key(request.key);
    if (request.form == UploadForm::Put) {
        upload.method = "PUT";
        upload.headers = carried;
        upload.headers.emplace_back("Content-Length", std::to_string(request.max_size));
        upload.headers.emplace_back("If-None-Match", "*");  // create-only, as so_put
        sigv4::Params signed_headers;
        for (const auto &[name, value] : upload.headers) {
            std::string lower = name;
            for (char &c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            signed_headers.emplace_back(lower, value);
        }
        upload.url = signer().presign(
            "PUT", object_target(config_.prefix, request.key), request.expires_in, request.now, {}, signed_headers);
        return upload;
    }
    // POST: the fields in the order botocore's generate_presigned_post
    // gives them (ours, key, the authentication, policy, signature), each
    // bound by an exact condition, the size by content-length-range.
    upload.method = "POST";
    std::vector<s3post::Condition> conditions;
    for (const auto &[name, value] : carried) {
        std::string field = name == "x-amz-tagging" ? "tagging" : name;
        std::string text = value;
        if (field == "tagging") {  // a form carries the tag set as XML
            text = "<Tagging><TagSet>";
            for (const auto &[k, v] : *config_.default_attributes.tags)
                text += "<Tag><Key>" + s3xml::escape(k) + "</Key><Value>" + s3xml::escape(v) + "</Value></Tag>";
            text += "</TagSet></Tagging>";
        }
        upload.fields.emplace_back(field, text);
        conditions.push_back(s3post::Condition::equals(field, text));
        if (field == "Content-Type")
            conditions.push_back(s3post::Condition::length_range(request.min_size, request.max_size));
    }
    conditions.push_back(s3post::Condition::equals("bucket", config_.bucket));
    conditions.push_back(s3post::Condition::equals("key", key));
    upload.fields.emplace_back("key", key);
    sigv4::Signer::PostAuth auth = signer().post_auth(request.now);
    upload.fields.emplace_back("x-amz-algorithm", "AWS4-HMAC-SHA256");
    upload.fields.emplace_back("x-amz-credential", auth.credential);
    upload.fields.emplace_back("x-amz-date", auth.amz_date);
    conditions.push_back(s3post::Condition::equals("x-amz-algorithm", "AWS4-HMAC-SHA256"));
    conditions.push_back(s3post::Condition::equals("x-amz-credential", auth.credential));
    conditions.push_back(s3post::Condition::equals("x-amz-date", auth.amz_date));
    if (!auth.security_token.empty()) {
        upload.fields.emplace_back("x-amz-security-token", auth.security_token);
        conditions.push_back(s3post::Condition::equals("x-amz-security-token", auth.security_token));
    }
    std::string policy = crypto::base64(s3post::policy_json(request.now + request.expires_in, conditions));
    signer().sign_post_policy(auth, policy);
    upload.fields.emplace_back("policy", policy);
    upload.fields.emplace_back("x-amz-signature", auth.signature);
    sigv4::Target bucket = sigv4::s3_target(endpoint_, style_, config_.bucket, "");
    upload.url = sigv4::request_url(bucket, {});
    return upload;
}

void S3Store::list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) {
    std::string token;
    // A server that hands back a token it gave before, or pages that never
    // end without listing anything, would keep us here for ever.
    std::set<std::string> seen_tokens;
    int empty_pages = 0;
    for (;;) {
        Call call;
        call.query = {{"list-type", "2"}, {"prefix", config_.prefix + prefix}};
        call.max_body = kMaxListingPage;
        if (!token.empty()) call.query.emplace_back("continuation-token", token);
        http::Response response = execute(call);
        if (response.status != 200) fail(response, "list", prefix);
        bool listed_any = false;
        for (std::string_view entry : s3xml::blocks(response.body, "Contents")) {
            throw_if_interrupted();
            listed_any = true;
            ListedObject item;
            std::string full = s3xml::text(entry, "Key");
            if (full.compare(0, config_.prefix.size(), config_.prefix) != 0)
                throw Error(ErrorKind::Io, "the storage server listed " + quoted(full) + ", outside the prefix " +
                                               quoted(config_.prefix) + " of backend " + quoted(backend_key_));
            item.key = full.substr(config_.prefix.size());
            item.size = std::strtoull(s3xml::text(entry, "Size").c_str(), nullptr, 10);
            item.last_modified = parse_iso8601(s3xml::text(entry, "LastModified"));
            std::string etag = s3xml::text(entry, "ETag");
            item.etag = strip_quotes(&etag);
            each(item);
        }
        if (s3xml::text(response.body, "IsTruncated") != "true") break;
        token = s3xml::text(response.body, "NextContinuationToken");
        if (token.empty()) break;
        empty_pages = listed_any ? 0 : empty_pages + 1;
        if (!seen_tokens.insert(token).second || empty_pages > kMaxEmptyListingPages)
            throw Error(ErrorKind::Io, "the storage server of backend " + quoted(backend_key_) +
                                           " sent a listing that does not end",
                        empty_pages > kMaxEmptyListingPages
                            ? std::to_string(empty_pages) + " pages in a row listed nothing"
                            : "it handed back a continuation token it had sent before");
    }
}

std::optional<ObjectMeta> S3Store::copy_within(const Store &source, const std::string &source_key,
                                               const std::string &source_version, const std::string &key) {
    const auto *s3_source = dynamic_cast<const S3Store *>(&source);
    if (!s3_source || !same_store(*s3_source)) return std::nullopt;
    return copy_from(*s3_source, source_key, source_version, key);
}

bool S3Store::same_store(const S3Store &other) const {
    return config_.gcs == other.config_.gcs && endpoint_.authority == other.endpoint_.authority &&
           config_.region == other.config_.region &&
           config_.access_key_id == other.config_.access_key_id &&
           config_.credential_source == other.config_.credential_source &&
           config_.credentials_file == other.config_.credentials_file && config_.profile == other.config_.profile;
}

ObjectMeta S3Store::copy_from(const S3Store &source, const std::string &source_key,
                              const std::string &source_version, const std::string &key) {
    // CopyObject has no create-only condition everywhere: look first. A
    // concurrent writer can still slip in between; see the README.
    if (exists(key, "")) throw_already_exists(backend_key_, key);
    Call copy;
    copy.method = "PUT";
    copy.key = full_key(key);
    std::string copy_source = "/" + source.config_.bucket + "/" + uri::encode(source.full_key(source_key), true);
    copy.headers = {{copy_source_header(), copy_source}};
    if (!source_version.empty()) {
        if (config_.gcs)  // GCS names the source's generation in a header of its own
            copy.headers.emplace_back("x-goog-copy-source-generation", source_version);
        else
            copy.headers[0].second += "?versionId=" + uri::encode(source_version, false);
    }
    // Headers, metadata and tags come with the copy; the class and the
    // encryption are this backend's.
    append_storage_class(config_.default_attributes, copy.headers);
    if (!config_.gcs) {
        s3attr::append_encryption(config_, copy.headers);
        s3attr::append_customer_key(source.config_, copy.headers, true);
    }
    http::Response response = execute(copy);
    if (response.status == 404) throw_not_found(source.backend_key_, source_key);
    if (response.status != 200 || response.body.find("<Error>") != std::string::npos) fail(response, "copy to", key);
    std::string version = version_of(response).value_or("");
    auto meta = stat(key, version);
    if (!meta) throw_not_found(backend_key_, key);
    return *meta;
}

void S3Store::add_create_only(sigv4::Params &headers) const {
    // GCS's XML API ignores If-None-Match on writes; generation 0 means
    // "only if there is no live object".
    if (config_.gcs)
        headers.emplace_back(gcs::kCreateOnlyHeader, "0");
    else
        headers.emplace_back("If-None-Match", "*");
}

const char *S3Store::version_param() const { return config_.gcs ? gcs::kGenerationParam : "versionId"; }

const char *S3Store::copy_source_header() const { return config_.gcs ? gcs::kCopySourceHeader : "x-amz-copy-source"; }

std::optional<std::string> S3Store::version_of(const http::Response &response) const {
    // GCS: every write makes a new generation, which addresses exactly it.
    const std::string *v = response.header(config_.gcs ? gcs::kGenerationHeader : "x-amz-version-id");
    if (!v || v->empty() || *v == "null") return std::nullopt;
    return *v;
}

void S3Store::append_storage_class(const ObjectAttributes &attributes, sigv4::Params &headers) const {
    if (config_.gcs)
        gcs::append_storage_class(attributes, headers);
    else
        s3attr::append_storage_class(attributes, headers);
}

gcs::UrlRequest S3Store::gcs_url_request(std::string_view key, int64_t now, int64_t expires_in) const {
    gcs::UrlRequest r;
    r.bucket = config_.bucket;
    r.object = config_.prefix + std::string(key);
    r.unix_seconds = now;
    r.expires_in = expires_in;
    r.scheme = endpoint_.scheme;
    r.host = endpoint_.host;
    r.style = style_ == sigv4::AddressingStyle::Path ? gcs::UrlStyle::PathStyle : gcs::UrlStyle::VirtualHosted;
    return r;
}

std::string S3Store::gcs_token() {
    if (config_.restricted)
        throw Error(ErrorKind::PermissionDenied,
                    "storage backend " + quoted(backend_key_) +
                        " may not use the database server's own credentials: it was not registered by a superuser");
    if (!gcs_tokens_) {
        gcs::TokenOptions options;
        options.source = config_.gcs_credentials == "metadata"          ? gcs::TokenSource::Metadata
                         : config_.gcs_credentials == "service_account" ? gcs::TokenSource::ServiceAccount
                                                                        : gcs::TokenSource::Default;
        options.service_account_file = config_.service_account_file;
        options.backend = backend_key_;
        gcs_tokens_ = std::make_unique<BearerTokenCache>(
            [options](int64_t now) { return gcs::fetch_token(options, now); });
    }
    return gcs_tokens_->get(static_cast<int64_t>(std::time(nullptr)));
}

std::string S3Store::gcs_signed_url(const gcs::UrlRequest &r) {
    if (!config_.service_account_file.empty()) {
        if (!gcs_rsa_)
            gcs_rsa_ = std::make_unique<gcs::RsaSigner>(
                gcs::parse_service_account(read_private_file(config_.service_account_file)));
        return gcs_rsa_->sign_url(r);
    }
    if (!config_.gcs_credentials.empty())
        throw Error(ErrorKind::NotSupported,
                    "backend " + quoted(backend_key_) + " holds an OAuth token, which cannot sign URLs", {},
                    "Give the backend a service_account_file, or an HMAC key (access_key_id, secret_access_key).");
    return gcs_hmac().sign_url(r);
}

const gcs::HmacSigner &S3Store::gcs_hmac() {
    if (!gcs_hmac_) {
        if (config_.access_key_id.empty() || config_.secret_access_key.empty())
            throw Error(ErrorKind::NotConfigured, "storage backend " + quoted(backend_key_) + " has no HMAC key", {},
                        "Set the options access_key_id and secret_access_key to the HMAC key's access id and secret.");
        gcs_hmac_ = std::make_unique<gcs::HmacSigner>(config_.access_key_id, config_.secret_access_key);
    }
    return *gcs_hmac_;
}

void S3Store::sign_gcs(std::string_view key, const SignRequest &request, std::string &url) {
    gcs::UrlRequest r = gcs_url_request(key, request.now, request.expires_in);
    r.method = request.method == HttpMethod::Put ? "PUT" : "GET";
    if (request.download_as)
        r.query.emplace_back("response-content-disposition", http::attachment_disposition(*request.download_as));
    if (request.download_type) r.query.emplace_back("response-content-type", *request.download_type);
    if (!request.version_id.empty()) r.query.emplace_back(gcs::kGenerationParam, std::string(request.version_id));
    url = gcs_signed_url(r);
}

SignedUpload S3Store::sign_gcs_upload(const UploadSignRequest &request) {
    if (request.form != UploadForm::Put)
        throw Error(ErrorKind::NotSupported, "gs backends take signed uploads as PUT", {},
                    "Sign the upload with method => 'PUT'.");
    SignedUpload upload;
    upload.method = "PUT";
    // Signed headers the client must send as they are: the type, the
    // backend's attributes, create-only, and the size range GCS enforces.
    upload.headers = {{"Content-Type", request.content_type}};
    gcs::append_put_headers(config_.default_attributes, upload.headers);
    upload.headers.emplace_back(gcs::kCreateOnlyHeader, "0");
    upload.headers.emplace_back("x-goog-content-length-range",
                                std::to_string(request.min_size) + "," + std::to_string(request.max_size));
    gcs::UrlRequest r = gcs_url_request(request.key, request.now, request.expires_in);
    r.method = "PUT";
    r.headers = upload.headers;
    upload.url = gcs_signed_url(r);
    return upload;
}

}  // namespace so
