#include "core/azure_store.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <set>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/http_values.hpp"
#include "core/interrupts.hpp"
#include "core/json.hpp"
#include "core/s3_attributes.hpp"
#include "core/s3_metadata.hpp"
#include "core/s3_xml.hpp"
#include "core/uri.hpp"

namespace so {

namespace {

constexpr const char *kStagingPrefix = ".so-staging/";
// One List Blobs page: 5,000 names of up to 1 KiB, with their XML.
constexpr size_t kMaxListingPage = 16 << 20;
constexpr int kMaxEmptyListingPages = 1000;
constexpr const char *kS3MetaPrefix = "x-amz-meta-";
constexpr const char *kMetaPrefix = "x-ms-meta-";

const std::string *find(const http::Response &response, const char *name) { return response.header(name); }

// Access tiers are attributes' storage classes, upper case as S3's are.
std::string access_tier(const std::string &storage_class) {
    static const std::pair<const char *, const char *> kTiers[] = {
        {"HOT", "Hot"}, {"COOL", "Cool"}, {"COLD", "Cold"}, {"ARCHIVE", "Archive"}};
    for (const auto &[name, tier] : kTiers)
        if (storage_class == name) return tier;
    throw Error(ErrorKind::InvalidParameter, "unknown Azure access tier " + quoted(storage_class), {},
                "Azure backends take the storage classes HOT, COOL, COLD and ARCHIVE (the access tiers).");
}

// Blob index tags take fewer characters than S3's (ASCII letters and
// digits, space, + - . / : = _; no @, no other scripts): refused here, with
// 22023, rather than by the service. Counts and lengths are S3's, checked
// when the attributes were read.
const Tags &azure_tags(const Tags &tags) {
    auto azure_text = [](const std::string &s) {
        return std::all_of(s.begin(), s.end(), [](char c) {
            unsigned char u = static_cast<unsigned char>(c);
            return (u < 0x80 && std::isalnum(u)) || std::string_view(" +-./:=_").find(c) != std::string_view::npos;
        });
    };
    for (const auto &[key, value] : tags) {
        if (!azure_text(key))
            throw Error(ErrorKind::InvalidParameter, "Azure does not take the tag key " + quoted(key), {},
                        "Azure blob index tags take ASCII letters and digits, space and + - . / : = _.");
        if (!azure_text(value))
            throw Error(ErrorKind::InvalidParameter, "Azure does not take the value of tag " + quoted(key), {},
                        "Azure blob index tags take ASCII letters and digits, space and + - . / : = _.");
    }
    return tags;
}

// User metadata as x-ms-meta-* headers: the S3 encoding of values (see
// s3_metadata.hpp), with the stricter names Azure takes (C# identifiers).
azure::Params encode_metadata(const std::string &metadata_json) {
    // Azure's rule (C# identifiers, kept lowercase) first, so a refusal
    // speaks of Azure.
    for (const auto &m : json::parse(metadata_json).members) {
        bool identifier = !m.key.empty() && !std::isdigit(static_cast<unsigned char>(m.key[0])) &&
                          std::all_of(m.key.begin(), m.key.end(), [](char c) {
                              return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                          });
        if (!identifier)
            throw Error(ErrorKind::InvalidParameter,
                        "metadata key " + quoted(m.key) + " cannot be stored as Azure blob metadata", {},
                        "Azure metadata keys are lowercase letters, digits and '_', not starting with a digit.");
    }
    azure::Params headers;
    for (auto &[name, value] : s3meta::encode(metadata_json, "Azure"))
        headers.emplace_back(kMetaPrefix + name.substr(std::string_view(kS3MetaPrefix).size()), std::move(value));
    return headers;
}

std::string decode_metadata(const std::vector<std::pair<std::string, std::string>> &response_headers) {
    s3meta::Headers renamed;
    for (const auto &[name, value] : response_headers)
        if (name.rfind(kMetaPrefix, 0) == 0)
            renamed.emplace_back(kS3MetaPrefix + name.substr(std::string_view(kMetaPrefix).size()), value);
    return s3meta::decode(renamed);
}

// The identity of content, as values record it: the hex MD5, which Azure
// keeps as Content-MD5 and copies with the blob, unlike its ETag (the
// identity of a blob that has no MD5).
std::string content_identity(const http::Response &response) {
    if (const std::string *md5 = find(response, "content-md5"))
        if (auto raw = crypto::base64_decode(*md5); raw && raw->size() == 16) return crypto::hex(*raw);
    return http::strip_quotes(find(response, "etag"));
}

std::string query_string(const azure::Params &query) {
    std::string q;
    for (const auto &[name, value] : query) {
        q += q.empty() ? "" : "&";
        q += name;
        if (value.empty() && name != "prefix") continue;
        q += '=';
        uri::encode(value, false, q);
    }
    return q;
}

}  // namespace

struct AzureStore::Call {
    std::string method = "GET";
    std::string blob;  // full name; empty for the container
    azure::Params query;
    azure::Params headers;
    const char *body = nullptr;
    size_t body_size = 0;
    std::function<char *(uint64_t)> destination;
    uint64_t max_destination = UINT64_MAX;
    size_t max_body = http::kDefaultMaxBody;
    bool ignore_interrupts = false;
    bool account_level = false;  // the service itself (a user delegation key), not the container
    std::string path;            // a blob of another container of the account (a copy's source)
};

AzureStore::AzureStore(std::string backend_key, const AzureConfig &config)
    : Store(std::move(backend_key)),
      config_(config),
      client_(http::Timeouts{config.connect_timeout_ms.value_or(10000), config.request_timeout_ms.value_or(300000)}) {
    std::string endpoint = config.endpoint.value_or("https://" + config.account + ".blob.core.windows.net");
    size_t host_start = endpoint.find("://") + 3;
    size_t path_start = endpoint.find('/', host_start);
    scheme_ = endpoint.substr(0, host_start - 3);
    for (char &c : scheme_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    authority_ = endpoint.substr(host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
    path_base_ = path_start == std::string::npos ? "" : endpoint.substr(path_start);
    client_.set_restricted(config.restricted);
    client_.set_ca_file(config.ca_file);
    if (config.auth == AzureAuth::SharedKey) key_ = std::make_unique<azure::SharedKey>(config.account, config.account_key);
    if (config.auth == AzureAuth::Token) {
        azure::TokenOptions options;
        options.provider = config.token_provider == "client_secret"        ? azure::TokenProvider::ClientSecret
                           : config.token_provider == "client_certificate" ? azure::TokenProvider::ClientCertificate
                           : config.token_provider == "workload_identity"  ? azure::TokenProvider::WorkloadIdentity
                           : config.token_provider == "managed_identity"   ? azure::TokenProvider::ManagedIdentity
                                                                           : azure::TokenProvider::Chain;
        options.client_id = config.client_id;
        options.backend = backend_key_;
        tokens_ = std::make_unique<BearerTokenCache>([options](int64_t) -> BearerToken {
            return azure::fetch_token(options);
        });
    }
}

AzureStore::~AzureStore() = default;

void AzureStore::set_default_timeouts(long connect_ms, long request_ms) {
    client_.set_timeouts({config_.connect_timeout_ms ? *config_.connect_timeout_ms : connect_ms,
                          config_.request_timeout_ms ? *config_.request_timeout_ms : request_ms});
}

std::string AzureStore::bearer_token() {
    if (config_.restricted)
        throw Error(ErrorKind::PermissionDenied,
                    "storage backend " + quoted(backend_key_) +
                        " may not use the database server's own credentials: it was not registered by a superuser");
    return tokens_->get(static_cast<int64_t>(std::time(nullptr)));
}

const azure::SharedKey &AzureStore::shared_key() const {
    if (!key_)
        throw Error(ErrorKind::NotSupported,
                    "backend " + quoted(backend_key_) + " authorizes with a SAS token and cannot sign URLs", {},
                    "Signed URLs are service SAS made with the account key: set the option account_key.");
    return *key_;
}

void AzureStore::validate_key(std::string_view key, bool allow_reserved) const {
    check_object_key(key, config_.prefix.size(), kMaxName, allow_reserved);
    // Azure turns '\\' into '/': the blob would have another name.
    if (key.find('\\') != std::string_view::npos) reject_key(key, "Azure blob names cannot contain '\\'");
    // A URL path resolves "." and ".." segments before the service sees
    // them: such a name would land elsewhere than it says.
    size_t start = 0;
    for (;;) {
        size_t end = key.find('/', start);
        std::string_view segment = key.substr(start, end == std::string_view::npos ? end : end - start);
        if (segment == "." || segment == "..") reject_key(key, "Azure blob names cannot have \".\" or \"..\" segments");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    if (key.back() == '.' || key.back() == '/') reject_key(key, "Azure blob names cannot end with '.' or '/'");
}

std::string AzureStore::path_of(std::string_view full_name) const {
    std::string path = path_base_ + "/" + config_.container;
    if (!full_name.empty()) {
        path += '/';
        uri::encode(full_name, true, path);
    }
    return path;
}

std::string AzureStore::url_of(std::string_view full_name) const {
    return scheme_ + "://" + authority_ + path_of(full_name);
}

http::Request AzureStore::build(const Call &call) {
    std::string path = !call.path.empty() ? call.path : call.account_level ? path_base_ + "/" : path_of(call.blob);
    azure::Params headers = call.headers;
    headers.emplace_back("x-ms-date", azure::rfc1123_date(static_cast<int64_t>(std::time(nullptr))));
    headers.emplace_back("x-ms-version", azure::kServiceVersion);
    if (call.method == "PUT" || call.body_size > 0) headers.emplace_back("Content-Length", std::to_string(call.body_size));
    http::Request request;
    request.method = call.method;
    std::string query = query_string(call.query);
    if (key_) {
        headers.emplace_back("Authorization", key_->authorization(call.method, path, call.query, headers));
    } else if (tokens_) {
        headers.emplace_back("Authorization", "Bearer " + bearer_token());
    } else {
        query += (query.empty() ? "" : "&") + config_.sas_token;
    }
    request.url = scheme_ + "://" + authority_ + path + (query.empty() ? "" : "?" + query);
    request.headers = std::move(headers);
    request.body = call.body;
    request.body_size = call.body_size;
    request.body_destination = call.destination;
    request.max_destination = call.max_destination;
    request.max_body = call.max_body;
    request.ignore_interrupts = call.ignore_interrupts;
    return request;
}

http::Response AzureStore::execute(const Call &call) {
    return perform_with_retries(client_, where(), config_.max_retries, call.ignore_interrupts,
                                [&] { return build(call); });
}

void AzureStore::fail(const http::Response &response, const std::string &what, const std::string &key) const {
    std::string code, message, request_id;
    if (const std::string *h = response.header("x-ms-error-code")) code = *h;
    try {
        if (code.empty()) code = s3xml::text(response.body, "Code");
        message = s3xml::text(response.body, "Message");
    } catch (const Error &) {
        message.clear();  // not an error document: the status says enough
    }
    message = message.substr(0, message.find('\n'));  // then come "RequestId:..." and "Time:..."
    if (const std::string *h = response.header("x-ms-request-id")) request_id = *h;
    if (response.status == 404 && (code.empty() || code == "BlobNotFound")) throw_not_found(backend_key_, key);
    if (response.status == 412 || code == "BlobAlreadyExists") throw_already_exists(backend_key_, key);
    std::string detail = "HTTP status " + std::to_string(response.status) +
                         (request_id.empty() ? "" : ", request id " + message_text(request_id));
    std::string reason = code.empty() ? "HTTP " + std::to_string(response.status)
                                      : message_text(code) + (message.empty() ? "" : ": " + message_text(message));
    std::string text = "Azure Blob Storage refused to " + what + " " + quoted(key) + " in backend " +
                       quoted(backend_key_) + ": " + reason;
    if (code == "BlobArchived")
        throw Error(ErrorKind::NotConfigured, text, detail,
                    "Blobs in the Archive tier must be rehydrated (Set Blob Tier) before they can be read.");
    static const char *const kAuthCodes[] = {"AuthenticationFailed", "AuthorizationFailure",
                                             "AuthorizationPermissionMismatch", "AuthorizationProtocolMismatch",
                                             "AuthorizationResourceTypeMismatch", "InvalidAuthenticationInfo",
                                             "NoAuthenticationInformation", "KeyBasedAuthenticationNotPermitted"};
    bool auth = response.status == 403 || response.status == 401 ||
                std::any_of(std::begin(kAuthCodes), std::end(kAuthCodes), [&](const char *c) { return code == c; });
    throw Error(auth ? ErrorKind::PermissionDenied : ErrorKind::Io, text, detail);
}

PutRequest AzureStore::with_defaults(const PutRequest &request) const {
    PutRequest merged = request;
    merged.attributes = merge_attributes(config_.default_attributes, request.attributes);
    return merged;
}

azure::Params AzureStore::put_headers(const PutRequest &request) const {
    if (!http::printable_ascii(request.content_type))
        throw Error(ErrorKind::InvalidParameter, "content type " + quoted(request.content_type) +
                                                     " cannot be sent to Azure: it must be printable ASCII");
    azure::Params headers = {{"x-ms-blob-content-type", request.content_type}};
    for (auto &h : encode_metadata(request.metadata_json)) headers.push_back(std::move(h));
    const ObjectAttributes &a = request.attributes;
    if (a.cache_control) headers.emplace_back("x-ms-blob-cache-control", *a.cache_control);
    if (a.content_disposition) headers.emplace_back("x-ms-blob-content-disposition", *a.content_disposition);
    if (a.content_encoding) headers.emplace_back("x-ms-blob-content-encoding", *a.content_encoding);
    if (a.content_language) headers.emplace_back("x-ms-blob-content-language", *a.content_language);
    if (a.storage_class) headers.emplace_back("x-ms-access-tier", access_tier(*a.storage_class));
    if (a.tags && !a.tags->empty()) headers.emplace_back("x-ms-tags", tagging_query(azure_tags(*a.tags)));
    return headers;
}

ObjectMeta AzureStore::written(const PutRequest &request, const http::Response &response, uint64_t size,
                               std::string checksum) const {
    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = request.key;
    meta.content_type = request.content_type;
    meta.size = static_cast<int64_t>(size);
    meta.last_modified = http::parse_http_date(find(response, "last-modified"))
                             .value_or(http::parse_http_date(find(response, "date"))
                                           .value_or(static_cast<double>(std::time(nullptr))));
    meta.checksum = std::move(checksum);
    meta.metadata = request.metadata_json;
    ObjectAttributes attributes = request.attributes;
    if (attributes.tags && attributes.tags->empty()) attributes.tags.reset();
    meta.attributes = format_attributes(attributes);
    return meta;
}

ObjectMeta AzureStore::put_single(const PutRequest &request, const std::string &full_name, bool create_only) {
    std::string_view content(request.data, request.size);
    std::string md5 = crypto::md5(content);
    Call call;
    call.method = "PUT";
    call.blob = full_name;
    call.headers = put_headers(request);
    call.headers.emplace_back("x-ms-blob-type", "BlockBlob");
    call.headers.emplace_back("Content-MD5", crypto::base64(md5));
    if (create_only) call.headers.emplace_back("If-None-Match", "*");
    call.body = request.data;
    call.body_size = request.size;
    http::Response response = execute(call);
    if (response.status != 201) fail(response, "write", request.key);
    ObjectMeta meta = written(request, response, request.size, crypto::hex(crypto::sha256(content)));
    meta.etag = crypto::hex(md5);
    return meta;
}

std::string AzureStore::new_upload_nonce() const { return crypto::hex(crypto::random_bytes(8)); }

namespace {

// Block ids of one blob must all have the same length; the nonce keeps two
// writers of one name from ever committing each other's blocks.
std::string block_id(const std::string &nonce, int number) {
    char n[16];
    std::snprintf(n, sizeof n, "%06d", number);
    return crypto::base64(nonce + "-" + n);
}

}  // namespace

std::string AzureStore::put_block(const std::string &full_name, const std::string &nonce, int number,
                                  std::string_view data) {
    std::string id = block_id(nonce, number);
    Call call;
    call.method = "PUT";
    call.blob = full_name;
    call.query = {{"comp", "block"}, {"blockid", id}};
    call.headers = {{"Content-MD5", crypto::base64(crypto::md5(data))}};
    call.body = data.data();
    call.body_size = data.size();
    http::Response response = execute(call);
    if (response.status != 201)
        fail(response, "write block " + std::to_string(number) + " of", full_name.substr(config_.prefix.size()));
    return id;
}

ObjectMeta AzureStore::commit_blocks(const PutRequest &request, const azure::Params &headers,
                                     const std::string &full_name, const std::vector<std::string> &block_ids,
                                     bool create_only, uint64_t size, const ContentHashes &hashes) {
    std::string body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
    for (const auto &id : block_ids) body += "<Latest>" + id + "</Latest>";
    body += "</BlockList>";
    Call call;
    call.method = "PUT";
    call.blob = full_name;
    call.query = {{"comp", "blocklist"}};
    call.headers = headers;
    call.headers.emplace_back("Content-MD5", crypto::base64(crypto::md5(body)));
    // The service keeps no MD5 of a block list's content unless told: with
    // it, every blob we write has one, which values record as etag.
    call.headers.emplace_back("x-ms-blob-content-md5", crypto::base64(hashes.md5));
    if (create_only) call.headers.emplace_back("If-None-Match", "*");
    call.body = body.data();
    call.body_size = body.size();
    http::Response response = execute(call);
    if (response.status != 201) fail(response, "finish writing", request.key);
    ObjectMeta meta = written(request, response, size, hashes.sha256_hex);
    meta.etag = crypto::hex(hashes.md5);
    return meta;
}

ObjectMeta AzureStore::put_blocks(const PutRequest &request, const std::string &full_name, bool create_only) {
    const azure::Params headers = put_headers(request);
    const size_t block_size = static_cast<size_t>(config_.block_size);
    std::string_view content(request.data, request.size);
    ContentHashes hashes{crypto::md5(content), crypto::hex(crypto::sha256(content))};
    const std::string nonce = new_upload_nonce();
    struct Block {
        int number;
        std::string_view data;
        std::string id;
    };
    std::vector<Block> blocks;
    for (size_t offset = 0, number = 1; offset < request.size; offset += block_size, ++number)
        blocks.push_back({static_cast<int>(number), content.substr(offset, block_size), ""});
    // In rounds, all pending blocks in parallel; those that failed in a
    // retryable way go again after a backoff. An abandoned upload commits
    // nothing: there is nothing to abort.
    std::vector<Block *> pending;
    for (auto &b : blocks) pending.push_back(&b);
    for (int round = 0; !pending.empty(); ++round) {
        std::vector<http::Outcome> outcomes =
            client_.perform_as_ready(pending.size(), config_.max_concurrency, [&](size_t i, http::Request &slot) {
                Block &b = *pending[i];
                b.id = block_id(nonce, b.number);
                Call call;
                call.method = "PUT";
                call.blob = full_name;
                call.query = {{"comp", "block"}, {"blockid", b.id}};
                call.headers = {{"Content-MD5", crypto::base64(crypto::md5(b.data))}};
                call.body = b.data.data();
                call.body_size = b.data.size();
                slot = build(call);
                return true;
            });
        std::vector<Block *> again;
        for (size_t i = 0; i < pending.size(); ++i) {
            const http::Outcome &o = outcomes[i];
            if (o.transport_ok && o.response.status == 201) continue;
            bool retryable = o.transport_ok ? retryable_status(o.response.status) : o.retryable;
            if (!retryable || round >= config_.max_retries) {
                if (!o.transport_ok) throw_unreachable(where(), o.error);
                fail(o.response, "write block " + std::to_string(pending[i]->number) + " of", request.key);
            }
            note_store_retry();
            again.push_back(pending[i]);
        }
        pending = std::move(again);
        if (!pending.empty()) retry_backoff(round);
    }
    std::vector<std::string> ids;
    for (const auto &b : blocks) ids.push_back(b.id);
    return commit_blocks(request, headers, full_name, ids, create_only, request.size, hashes);
}

ObjectMeta AzureStore::create(const PutRequest &call_request) {
    const PutRequest request = with_defaults(call_request);
    if (request.size > static_cast<size_t>(config_.block_size))
        return put_blocks(request, full_name(request.key), true);
    return put_single(request, full_name(request.key), true);
}

namespace {

// A put from several calls (or from a source): whole blocks go out as they
// fill, the rest waits in one buffer; an object that never fills a block
// is one Put Blob. Abandoned, it leaves only uncommitted blocks.
class AzureUpload final : public StreamingUpload {
public:
    AzureUpload(AzureStore &store, PutRequest request, size_t block_size)
        : store_(store), request_(std::move(request)), headers_(store.put_headers(request_)), blocks_(block_size),
          full_name_(store.full_name(request_.key)), nonce_(store.new_upload_nonce()) {
        request_.data = nullptr;
    }

    void append(const char *data, size_t size) override {
        md5_.update(data, size);
        sha256_.update(data, size);
        size_ += size;
        blocks_.append(std::string_view(data, size), [this](std::string_view block) { send(block); });
    }
    uint64_t size() const override { return size_; }

    ObjectMeta finish() override {
        const std::string &rest = blocks_.rest();
        if (ids_.empty()) {
            PutRequest whole = request_;
            whole.data = rest.data();
            whole.size = rest.size();
            return store_.put_single(whole, full_name_, true);
        }
        if (!rest.empty()) send(rest);
        AzureStore::ContentHashes hashes{md5_.finish(), crypto::hex(sha256_.finish())};
        return store_.commit_blocks(request_, headers_, full_name_, ids_, true, size_, hashes);
    }
    // Uncommitted blocks are invisible and expire on their own.
    void abort() override { ids_.clear(); }
    bool abort_uses_network() const override { return false; }

private:
    void send(std::string_view block) {
        ids_.push_back(store_.put_block(full_name_, nonce_, static_cast<int>(ids_.size()) + 1, block));
    }

    AzureStore &store_;
    PutRequest request_;
    azure::Params headers_;
    PartSplitter blocks_;
    std::string full_name_, nonce_;
    std::vector<std::string> ids_;
    crypto::Digest md5_{crypto::Digest::Algorithm::Md5}, sha256_{crypto::Digest::Algorithm::Sha256};
    uint64_t size_ = 0;
};

}  // namespace

std::unique_ptr<StreamingUpload> AzureStore::begin_upload(const PutRequest &request) {
    return std::make_unique<AzureUpload>(*this, with_defaults(request), static_cast<size_t>(config_.block_size));
}

ObjectMeta AzureStore::create_from(const PutRequest &request, ByteSource &source) {
    // One block at a time through one buffer: memory stays at block_size.
    AzureUpload upload(*this, with_defaults(request), static_cast<size_t>(config_.block_size));
    for (;;) {
        std::string_view piece = source.next(static_cast<size_t>(config_.block_size));
        if (piece.empty()) break;
        upload.append(piece.data(), piece.size());
    }
    return upload.finish();
}

std::unique_ptr<ByteSource> AzureStore::open_reader(const std::string &key, const std::string &handle,
                                                    const std::string &) {
    auto meta = handle.empty() ? stat(key, "") : stat(handle, "");
    if (!meta) throw_not_found(backend_key_, key);
    return std::make_unique<RangedReader>(*this, key, handle, "", static_cast<uint64_t>(meta->size.value_or(0)));
}

ObjectMeta AzureStore::stage(const PutRequest &call_request, const std::string &tag, std::string *handle) {
    const PutRequest request = with_defaults(call_request);
    *handle = std::string(kStagingPrefix) + tag + "-" + crypto::hex(crypto::random_bytes(8));
    PutRequest staged = request;
    staged.key = *handle;
    ObjectMeta meta = request.size > static_cast<size_t>(config_.block_size)
                          ? put_blocks(staged, full_name(*handle), false)
                          : put_single(staged, full_name(*handle), false);
    meta.filename = request.key;
    // Copy Blob copies neither tier nor tags: promote() asks for them again.
    ObjectAttributes asked;
    asked.storage_class = request.attributes.storage_class;
    asked.tags = request.attributes.tags;
    if (asked.storage_class || asked.tags) staged_attributes_[*handle] = asked;
    return meta;
}

void AzureStore::copy_blob(const std::string &source_url, const std::string &source_backend,
                           const std::string &source_key, const std::string &key, const ObjectAttributes &asked,
                           bool create_only) {
    Call copy;
    copy.method = "PUT";
    copy.blob = full_name(key);
    copy.headers = {{"x-ms-copy-source", source_url}};
    // With a token, the source is authorized by the same token.
    if (tokens_) copy.headers.emplace_back("x-ms-copy-source-authorization", "Bearer " + bearer_token());
    if (asked.storage_class) copy.headers.emplace_back("x-ms-access-tier", access_tier(*asked.storage_class));
    if (asked.tags && !asked.tags->empty()) copy.headers.emplace_back("x-ms-tags", tagging_query(*asked.tags));
    if (create_only) copy.headers.emplace_back("If-None-Match", "*");
    http::Response response = execute(copy);
    if (response.status == 404) throw_not_found(source_backend, source_key);
    if (response.status != 202 && response.status != 201) fail(response, "copy to", key);
    // Within an account a copy is usually done at once; otherwise wait.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(client_.timeouts().request_ms);
    const std::string *status = find(response, "x-ms-copy-status");
    std::string state = status ? *status : "success";
    while (state == "pending") {
        if (std::chrono::steady_clock::now() > deadline)
            throw Error(ErrorKind::Io, "the copy to " + quoted(key) + " in backend " + quoted(backend_key_) +
                                           " did not finish within the request timeout");
        http::interruptible_sleep(200);
        Call head;
        head.method = "HEAD";
        head.blob = full_name(key);
        http::Response progress = execute(head);
        if (progress.status != 200) fail(progress, "follow the copy to", key);
        const std::string *s = find(progress, "x-ms-copy-status");
        state = s ? *s : "success";
    }
    if (state != "success")
        throw Error(ErrorKind::Io, "the copy to " + quoted(key) + " in backend " + quoted(backend_key_) + " ended " +
                                       message_text(state));
}

Backup AzureStore::promote(const std::string &key, const std::string &handle, const std::string &) {
    ObjectAttributes asked;
    auto it = staged_attributes_.find(handle);
    if (it != staged_attributes_.end()) {
        asked = it->second;
        staged_attributes_.erase(it);
    }
    copy_blob(source_url(full_name(handle)), backend_key_, key, key, asked, false);
    // The staged blob is removed once the transaction has committed
    // (drop_backup); the copy cannot be undone.
    Backup backup;
    backup.key = key;
    backup.handle = handle;
    backup.restorable = false;
    return backup;
}

std::string AzureStore::source_url(const std::string &full) const {
    std::string url = url_of(full);
    // Within one account Shared Key authorizes the source too; a SAS token
    // must travel with it.
    if (config_.auth == AzureAuth::SasToken) url += "?" + config_.sas_token;
    return url;
}

void AzureStore::discard(const std::string &key, const std::string &handle) {
    staged_attributes_.erase(handle);
    Call call;
    call.method = "DELETE";
    call.blob = full_name(handle);
    http::Response response = execute(call);
    if (response.status != 202 && response.status != 200 && response.status != 404)
        fail(response, "discard the new version of", key);
}

bool AzureStore::restore(const Backup &) { return false; }  // as S3: a copy has no undo

void AzureStore::drop_backup(const Backup &backup) {
    if (!backup.handle.empty()) discard(backup.key, backup.handle);
}

bool AzureStore::remove(const std::string &key, const ObjectMeta *expected) {
    Call call;
    call.method = "DELETE";
    call.blob = full_name(key);
    // A later put may have reused the key: then the blob there is not ours
    // to remove. The check and the delete are one request (If-Match).
    if (expected && expected->etag) {
        std::optional<http::Response> current = head(key);
        if (!current || content_identity(*current) != *expected->etag) return false;
        if (const std::string *etag = find(*current, "etag")) call.headers.emplace_back("If-Match", *etag);
    }
    http::Response response = execute(call);
    if (response.status == 404 || response.status == 412) return false;
    if (response.status != 202 && response.status != 200) fail(response, "delete", key);
    return true;
}

std::optional<http::Response> AzureStore::head(const std::string &key) {
    Call call;
    call.method = "HEAD";
    call.blob = full_name(key);
    http::Response response = execute(call);
    if (response.status == 404) return std::nullopt;
    if (response.status != 200) fail(response, "look up", key);
    return response;
}

bool AzureStore::exists(const std::string &key, const std::string &) { return head(key).has_value(); }

std::optional<ObjectMeta> AzureStore::stat(const std::string &key, const std::string &) {
    std::optional<http::Response> found = head(key);
    if (!found) return std::nullopt;
    const http::Response &response = *found;
    ObjectMeta meta;
    meta.backend = backend_key_;
    meta.filename = key;
    if (const auto *type = find(response, "content-type")) meta.content_type = *type;
    if (const auto *length = find(response, "content-length")) meta.size = std::strtoll(length->c_str(), nullptr, 10);
    meta.last_modified = http::parse_http_date(find(response, "last-modified"));
    if (std::string identity = content_identity(response); !identity.empty()) meta.etag = identity;
    meta.metadata = decode_metadata(response.headers);
    ObjectAttributes attributes;
    s3attr::read_standard_headers(response.headers, attributes);
    const std::string *inferred = find(response, "x-ms-access-tier-inferred");
    if (auto tier = http::printable_header(response.headers, "x-ms-access-tier");
        tier && !(inferred && *inferred == "true")) {
        for (char &c : *tier) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        attributes.storage_class = *tier;
    }
    // Tags are not among the headers, only their count: more requests.
    if (const auto *count = find(response, "x-ms-tag-count"); count && std::atoi(count->c_str()) > 0)
        attributes.tags = read_tags(path_of(full_name(key)), key);
    meta.attributes = format_attributes(attributes);
    return meta;
}

Tags AzureStore::tags_of(const std::string &path, const std::string &backend, const std::string &key) {
    Call head;
    head.method = "HEAD";
    head.path = path;
    http::Response response = execute(head);
    if (response.status == 404) throw_not_found(backend, key);
    if (response.status != 200) fail(response, "look up", key);
    const std::string *count = find(response, "x-ms-tag-count");
    if (!count || std::atoi(count->c_str()) <= 0) return {};
    return read_tags(path, key);
}

Tags AzureStore::read_tags(const std::string &path, const std::string &key) {
    Call tagging;
    tagging.path = path;
    tagging.query = {{"comp", "tags"}};
    http::Response tags = execute(tagging);
    if (tags.status != 200) fail(tags, "read the tags of", key);
    Tags set;
    for (std::string_view tag : s3xml::blocks(tags.body, "Tag"))
        set.emplace_back(s3xml::text(tag, "Key"), s3xml::text(tag, "Value"));
    std::sort(set.begin(), set.end());
    return set;
}

size_t AzureStore::fetch(const std::string &key, const std::string &handle, const std::string &, uint64_t offset,
                         std::optional<uint64_t> length, const std::function<char *(uint64_t)> &allocate) {
    const std::string blob = full_name(handle.empty() ? key : handle);
    if (length && *length == 0) {
        if (!exists(handle.empty() ? key : handle, "")) throw_not_found(backend_key_, key);
        allocate(0);
        return 0;
    }
    Call call;
    call.blob = blob;
    if (offset > 0 || length)
        call.headers = {{"x-ms-range", "bytes=" + std::to_string(offset) + "-" +
                                           (length ? std::to_string(offset + *length - 1) : "")}};
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
    if (response.status != 200 && response.status != 206) fail(response, "read", key);
    if (!allocated) allocate(0);  // an empty blob: no body arrived
    return static_cast<size_t>(response.body_written);
}

void AzureStore::list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) {
    std::string marker;
    std::set<std::string> seen_markers;
    int empty_pages = 0;
    for (;;) {
        Call call;
        call.query = {{"restype", "container"}, {"comp", "list"}, {"prefix", config_.prefix + prefix}};
        if (!marker.empty()) call.query.emplace_back("marker", marker);
        call.max_body = kMaxListingPage;
        http::Response response = execute(call);
        if (response.status != 200) fail(response, "list", prefix);
        bool listed_any = false;
        for (std::string_view entry : s3xml::blocks(response.body, "Blob")) {
            throw_if_interrupted();
            listed_any = true;
            std::string full = s3xml::text(entry, "Name");
            if (full.compare(0, config_.prefix.size(), config_.prefix) != 0)
                throw Error(ErrorKind::Io, "the storage server listed " + quoted(full) + ", outside the prefix " +
                                               quoted(config_.prefix) + " of backend " + quoted(backend_key_));
            ListedObject item;
            item.key = full.substr(config_.prefix.size());
            item.size = std::strtoull(s3xml::text(entry, "Content-Length").c_str(), nullptr, 10);
            std::string modified = s3xml::text(entry, "Last-Modified");
            item.last_modified = http::parse_http_date(&modified).value_or(0);
            // The content's MD5, as values record it, when the blob has one.
            auto md5 = crypto::base64_decode(s3xml::text(entry, "Content-MD5"));
            std::string etag = s3xml::text(entry, "Etag");
            item.etag = md5 && md5->size() == 16 ? crypto::hex(*md5) : http::strip_quotes(&etag);
            each(item);
        }
        marker = s3xml::text(response.body, "NextMarker");
        if (marker.empty()) break;
        empty_pages = listed_any ? 0 : empty_pages + 1;
        if (!seen_markers.insert(marker).second || empty_pages > kMaxEmptyListingPages)
            throw Error(ErrorKind::Io, "the storage server of backend " + quoted(backend_key_) +
                                           " sent a listing that does not end",
                        empty_pages > kMaxEmptyListingPages
                            ? std::to_string(empty_pages) + " pages in a row listed nothing"
                            : "it handed back a marker it had sent before");
    }
}

void AzureStore::sign(std::string_view key, const SignRequest &request, std::string &url) {
    if (request.expires_in > azure::kMaxSasExpiry)
        throw Error(ErrorKind::InvalidParameter, "Azure signed URLs expire after at most 7 days (604800 seconds)");
    if (request.method == HttpMethod::Put && (request.download_as || request.download_type))
        throw Error(ErrorKind::InvalidParameter, "download_as and download_type apply to downloads only");
    // Kept between calls: signing a URL per row allocates little.
    azure::BlobSas &sas = sas_;
    sas.permissions = request.method == HttpMethod::Put ? "cw" : "r";
    sas.expiry = request.now + request.expires_in;
    sas.container = config_.container;
    sas.blob.assign(config_.prefix).append(key);
    sas.protocol = scheme_ == "https" ? "https" : "https,http";
    sas.content_disposition.clear();
    sas.content_type.clear();
    if (request.download_as) sas.content_disposition = http::attachment_disposition(*request.download_as);
    if (request.download_type) sas.content_type = *request.download_type;
    url.clear();
    url += scheme_;
    url += "://";
    url += authority_;
    url += path_base_;
    url += '/';
    url += config_.container;
    url += '/';
    uri::encode(sas.blob, true, url);
    url += '?';
    if (tokens_) {
        url += azure::user_delegation_sas_query(delegation_key(sas.expiry), config_.account, sas);
        return;
    }
    if (!sas_signer_) sas_signer_ = std::make_unique<azure::SasSigner>(shared_key());
    sas_signer_->append_query(url, sas);
}

SignedUpload AzureStore::sign_upload(const UploadSignRequest &request) {
    if (request.form != UploadForm::Put)
        throw Error(ErrorKind::NotSupported, "Azure Blob Storage takes no form (POST) uploads", {},
                    "Sign the upload with method => 'PUT'.");
    SignRequest sign_request;
    sign_request.method = HttpMethod::Put;
    sign_request.now = request.now;
    sign_request.expires_in = request.expires_in;
    SignedUpload upload;
    upload.method = "PUT";
    sign(request.key, sign_request, upload.url);
    // The headers a Put Blob of this upload sends. A SAS binds none of
    // them: so_adopt checks size and type of what arrived.
    PutRequest put;
    put.key = request.key;
    put.content_type = request.content_type;
    put.attributes = config_.default_attributes;
    upload.headers = put_headers(put);
    upload.headers.emplace_back("x-ms-blob-type", "BlockBlob");
    upload.headers.emplace_back("If-None-Match", "*");
    return upload;
}

const azure::DelegationKey &AzureStore::delegation_key(int64_t sas_expiry) {
    // One key serves every URL that expires before it does: a request per
    // week of URLs, not per URL.
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    if (delegation_ && delegation_->expiry >= sas_expiry && delegation_->start <= now) return *delegation_;
    std::string start = http::iso8601(now - 300), expiry = http::iso8601(now + azure::kMaxSasExpiry);
    std::string body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo><Start>" + start + "</Start><Expiry>" +
                       expiry + "</Expiry></KeyInfo>";
    Call call;
    call.method = "POST";
    call.account_level = true;
    call.query = {{"restype", "service"}, {"comp", "userdelegationkey"}};
    call.headers = {{"Content-Type", "application/xml"}};
    call.body = body.data();
    call.body_size = body.size();
    http::Response response = execute(call);
    if (response.status != 200) fail(response, "get a user delegation key for account", config_.account);
    azure::DelegationKey key;
    key.object_id = s3xml::text(response.body, "SignedOid");
    key.tenant_id = s3xml::text(response.body, "SignedTid");
    key.signed_start = s3xml::text(response.body, "SignedStart");
    key.signed_expiry = s3xml::text(response.body, "SignedExpiry");
    key.service = s3xml::text(response.body, "SignedService");
    key.version = s3xml::text(response.body, "SignedVersion");
    auto value = crypto::base64_decode(s3xml::text(response.body, "Value"));
    if (!value || value->empty() || key.object_id.empty())
        throw Error(ErrorKind::Io, "Azure Blob Storage sent backend " + quoted(backend_key_) +
                                       " a user delegation key it cannot read");
    key.value = std::move(*value);
    key.start = static_cast<int64_t>(http::parse_iso8601(key.signed_start));
    key.expiry = static_cast<int64_t>(http::parse_iso8601(key.signed_expiry));
    delegation_ = std::move(key);
    if (delegation_->expiry < sas_expiry)
        throw Error(ErrorKind::InvalidParameter, "the URL would outlive the user delegation key of backend " +
                                                     quoted(backend_key_) + " (at most 7 days)");
    return *delegation_;
}

std::optional<ObjectMeta> AzureStore::copy_within(const Store &source, const std::string &source_key,
                                                  const std::string &, const std::string &key) {
    const auto *azure_source = dynamic_cast<const AzureStore *>(&source);
    if (!azure_source || azure_source->config_.account != config_.account ||
        azure_source->authority_ != authority_ || azure_source->path_base_ != path_base_)
        return std::nullopt;
    // As an S3 copy: the tier is this backend's, the tags the source's
    // unless this backend sets its own (Copy Blob copies none).
    ObjectAttributes asked = config_.default_attributes;
    if (!asked.tags) asked.tags = tags_of(azure_source->path_of(azure_source->full_name(source_key)),
                                          azure_source->backend_key(), source_key);
    copy_blob(azure_source->source_url(azure_source->full_name(source_key)), azure_source->backend_key(), source_key,
              key, asked, true);
    auto meta = stat(key, "");
    if (!meta) throw_not_found(backend_key_, key);
    return *meta;
}

}  // namespace so
