// The S3 backend: objects in a bucket of AWS S3 or any S3-compatible store
// (MinIO, Ceph RGW, Cloudflare R2), spoken to over HTTP(S) with libcurl,
// every request signed with our own SigV4 signer.
//
// Create-only puts send If-None-Match: *, so the store itself refuses an
// existing key (412). Bodies carry Content-MD5 and their real SHA-256 in
// x-amz-content-sha256, so the store rejects corrupted uploads. Puts above
// part_size are multipart, with parts uploaded in parallel and the upload
// aborted on any failure. Requests that fail with 5xx, 429/SlowDown or a
// dropped connection are retried with exponential backoff and jitter.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "core/aws_credential_chain.hpp"
#include "core/backend_config.hpp"
#include "core/bearer_token.hpp"
#include "core/gcs_signer.hpp"
#include "core/http_client.hpp"
#include "core/sigv4.hpp"
#include "core/store.hpp"

namespace so {

class S3Store final : public Store {
public:
    S3Store(std::string backend_key, const S3Config &config);
    ~S3Store() override;

    bool uses_network() const override { return true; }
    bool keeps_attributes() const override { return true; }
    void validate_key(std::string_view key, bool allow_reserved = false) const override;
    ObjectMeta create(const PutRequest &request) override;
    ObjectMeta create_from(const PutRequest &request, ByteSource &source) override;
    std::unique_ptr<ByteSource> open_reader(const std::string &key, const std::string &handle,
                                            const std::string &version_id) override;
    ObjectMeta stage(const PutRequest &request, const std::string &tag, std::string *handle) override;
    Backup promote(const std::string &key, const std::string &handle, const std::string &tag) override;
    void discard(const std::string &key, const std::string &handle) override;
    bool restore(const Backup &backup) override;
    void drop_backup(const Backup &backup) override;
    bool remove(const std::string &key, const ObjectMeta *expected) override;
    bool exists(const std::string &key, const std::string &version_id) override;
    std::optional<ObjectMeta> stat(const std::string &key, const std::string &version_id) override;
    size_t fetch(const std::string &key, const std::string &handle, const std::string &version_id, uint64_t offset,
                 std::optional<uint64_t> length,
                 const std::function<char *(uint64_t)> &allocate) override;
    void sign(std::string_view key, const SignRequest &request, std::string &url) override;
    // A SigV4 POST policy (form upload) or a PUT URL that signs
    // Content-Type, Content-Length and If-None-Match: *.
    SignedUpload sign_upload(const UploadSignRequest &request) override;
    void set_default_timeouts(long connect_ms, long request_ms) override;

    // Page by page through ListObjectsV2; keys relative to the backend's prefix.
    void list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) override;

    std::unique_ptr<StreamingUpload> begin_upload(const PutRequest &request) override;
    // The multipart steps a StreamingUpload takes (request: with defaults).
    std::string start_upload(const PutRequest &request);
    std::string upload_part(const std::string &key, const std::string &upload_id, int number, std::string_view data);
    ObjectMeta finish_upload(const PutRequest &request, const std::string &upload_id,
                             const std::vector<std::string> &etags, uint64_t size, std::string checksum);
    void abort_upload(const std::string &key, const std::string &upload_id);

    // A server-side copy (CopyObject) from a backend on the same endpoint
    // with the same credentials; nullopt otherwise.
    std::optional<ObjectMeta> copy_within(const Store &source, const std::string &source_key,
                                          const std::string &source_version, const std::string &key) override;

    // Connections opened so far by this backend in this session.
    long connections_opened() const { return client_.connections_opened(); }

    static constexpr size_t kMaxKey = 1024;  // bytes, prefix included

private:
    struct Call;
    bool same_store(const S3Store &other) const;
    ObjectMeta copy_from(const S3Store &source, const std::string &source_key, const std::string &source_version,
                         const std::string &key);
    // The request with the backend's default attributes under its own.
    PutRequest with_defaults(const PutRequest &request) const;
    // What a write reports: the attributes sent, and how the store encrypted.
    std::string written_attributes(const PutRequest &request, const http::Response &response) const;
    S3Config config_;
    sigv4::Endpoint endpoint_;
    sigv4::AddressingStyle style_;
    http::Client client_;
    std::unique_ptr<sigv4::Signer> signer_;

    // The target of an object, built in place: only the path changes from
    // one object to the next (signing a URL per row allocates nothing here).
    sigv4::Target object_target_;
    size_t object_path_base_ = 0;  // length of the path before the key
    const sigv4::Target &object_target(std::string_view key_in_bucket);
    const sigv4::Target &object_target(std::string_view prefix, std::string_view key);

    sigv4::Signer &signer();
    // The signer of a backend whose credentials are the server's own,
    // renewed with them before they expire.
    sigv4::Signer &ambient_signer();
    std::unique_ptr<aws::CredentialCache> credentials_;
    http::Request build(const Call &call);
    http::Response execute(const Call &call);
    ObjectMeta put_single(const PutRequest &request, const std::string &full_key, bool create_only);
    ObjectMeta put_multipart(const PutRequest &request, const std::string &full_key, bool create_only);
    void abort_multipart(const std::string &full_key, const std::string &upload_id);
    std::string start_multipart(const PutRequest &request, const std::string &full_key);
    ObjectMeta finish_multipart(const PutRequest &request, const std::string &full_key, const std::string &upload_id,
                                const std::vector<std::string> &part_etags, bool create_only, uint64_t size,
                                std::string checksum);
    sigv4::Params object_headers(const PutRequest &request) const;
    // Where GCS's XML API differs (gcs_headers.hpp): the create-only
    // condition, the version parameter and header, the copy source header.
    void add_create_only(sigv4::Params &headers) const;
    const char *service_name() const { return config_.gcs ? "GCS" : "S3"; }
    const char *version_param() const;
    const char *copy_source_header() const;
    std::optional<std::string> version_of(const http::Response &response) const;
    void append_storage_class(const ObjectAttributes &attributes, sigv4::Params &headers) const;
    // GCS signed URLs (GOOG4-HMAC-SHA256, or -RSA- with a service account).
    void sign_gcs(std::string_view key, const SignRequest &request, std::string &url);
    SignedUpload sign_gcs_upload(const UploadSignRequest &request);
    gcs::UrlRequest gcs_url_request(std::string_view key, int64_t now, int64_t expires_in) const;
    std::string gcs_signed_url(const gcs::UrlRequest &request);
    // The OAuth token of a gs:// backend with "credentials" (gcs_credentials.hpp).
    std::string gcs_token();
    std::unique_ptr<BearerTokenCache> gcs_tokens_;
    std::unique_ptr<gcs::HmacSigner> gcs_hmac_;
    // GCS: the object each multipart upload writes its parts to (by upload
    // id), copied to the key when it is finished.
    std::map<std::string, std::string> gcs_multipart_keys_;
    std::string multipart_key(const std::string &full_key, const std::string &upload_id) const;
    // The value of an object a multipart upload (or GCS's copy of one) made:
    // etag and version from the answer, the rest from the request.
    ObjectMeta assembled_meta(const PutRequest &request, const http::Response &response, uint64_t size,
                              std::string checksum) const;
    ObjectMeta finish_gcs_multipart(const PutRequest &request, const std::string &full_key,
                                    const std::string &completed_key, bool create_only, uint64_t size,
                                    std::string checksum);
    const gcs::HmacSigner &gcs_hmac();
    std::unique_ptr<gcs::RsaSigner> gcs_rsa_;
    [[noreturn]] void fail(const http::Response &response, const std::string &what, const std::string &key) const;
    std::string full_key(const std::string &key) const { return config_.prefix + key; }
    // The storage class each staged object asked for: promote()'s copy must
    // ask again (CopyObject does not copy it). Keyed by handle.
    std::map<std::string, ObjectAttributes> staged_class_;
};

}  // namespace so
