// The Azure Blob Storage backend: objects as block blobs in a container of
// a storage account (or Azurite), spoken to over HTTP(S) with libcurl,
// every request authorized by our own Shared Key signer, by a SAS token
// the backend was given, or by an Entra token of the server's own
// (managed identity, workload identity).
//
// Create-only writes send If-None-Match: *, so the service itself refuses
// an existing blob (409/412). Objects above block_size go up as blocks
// (Put Block, in parallel, each with its Content-MD5) committed by one Put
// Block List: until then nothing is visible, and an abandoned upload
// leaves only uncommitted blocks, which the service drops after a week.
// Retries and timeouts are the S3 backend's (retrying.hpp).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/azure_auth.hpp"
#include "core/azure_credentials.hpp"
#include "core/backend_config.hpp"
#include "core/http_client.hpp"
#include "core/retrying.hpp"
#include "core/store.hpp"

namespace so {

class AzureStore final : public Store {
public:
    AzureStore(std::string backend_key, const AzureConfig &config);
    ~AzureStore() override;

    bool uses_network() const override { return true; }
    bool keeps_attributes() const override { return true; }
    void set_default_timeouts(long connect_ms, long request_ms) override;
    void validate_key(std::string_view key, bool allow_reserved = false) const override;
    ObjectMeta create(const PutRequest &request) override;
    ObjectMeta create_from(const PutRequest &request, ByteSource &source) override;
    std::unique_ptr<StreamingUpload> begin_upload(const PutRequest &request) override;
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
                 std::optional<uint64_t> length, const std::function<char *(uint64_t)> &allocate) override;
    // Page by page through List Blobs; keys relative to the backend's prefix.
    void list(const std::string &prefix, const std::function<void(const ListedObject &)> &each) override;
    // A service SAS: read ("r"), or create and write ("cw") for a PUT.
    void sign(std::string_view key, const SignRequest &request, std::string &url) override;
    // A PUT with a create-and-write SAS. A SAS binds neither size nor
    // type: adoption checks them (so_adopt).
    SignedUpload sign_upload(const UploadSignRequest &request) override;
    // Copy Blob from a backend of the same account and endpoint.
    std::optional<ObjectMeta> copy_within(const Store &source, const std::string &source_key,
                                          const std::string &source_version, const std::string &key) override;

    // The block steps a StreamingUpload takes (request: with defaults).
    std::string new_upload_nonce() const;
    std::string put_block(const std::string &full_name, const std::string &nonce, int number, std::string_view data);
    struct ContentHashes {
        std::string md5;         // raw
        std::string sha256_hex;  // the value's checksum
    };
    // The headers that describe a new blob (type, metadata, attributes):
    // made, and so checked, before any byte goes out.
    azure::Params put_headers(const PutRequest &request) const;
    ObjectMeta commit_blocks(const PutRequest &request, const azure::Params &put_headers,
                             const std::string &full_name, const std::vector<std::string> &block_ids,
                             bool create_only, uint64_t size, const ContentHashes &hashes);
    ObjectMeta put_single(const PutRequest &request, const std::string &full_name, bool create_only);
    PutRequest with_defaults(const PutRequest &request) const;
    std::string full_name(const std::string &key) const { return config_.prefix + key; }

    long connections_opened() const { return client_.connections_opened(); }

    static constexpr size_t kMaxName = 1024;  // characters of a blob name, prefix included

private:
    struct Call;
    http::Request build(const Call &call);
    http::Response execute(const Call &call);
    [[noreturn]] void fail(const http::Response &response, const std::string &what, const std::string &key) const;
    StoreEndpoint where() const { return {"Azure Blob Storage", authority_, backend_key_}; }
    // The percent-encoded path of a blob (or of the container, for "").
    std::string path_of(std::string_view full_name) const;
    // HEAD of a blob: nullopt when there is none.
    std::optional<http::Response> head(const std::string &key);
    std::string url_of(std::string_view full_name) const;
    ObjectMeta written(const PutRequest &request, const http::Response &response, uint64_t size,
                       std::string checksum) const;
    ObjectMeta put_blocks(const PutRequest &request, const std::string &full_name, bool create_only);
    // Copy Blob from source_url to key, waiting for the service to finish;
    // asked: the tier and tags the copy sets (it copies neither).
    void copy_blob(const std::string &source_url, const std::string &source_backend, const std::string &source_key,
                   const std::string &key, const ObjectAttributes &asked, bool create_only);
    // The tags of the blob at path (of this account), key of backend.
    Tags tags_of(const std::string &path, const std::string &backend, const std::string &key);
    Tags read_tags(const std::string &path, const std::string &key);  // Get Blob Tags alone
    // The URL another request may name as its copy source.
    std::string source_url(const std::string &full) const;
    const azure::SharedKey &shared_key() const;

    AzureConfig config_;
    std::string scheme_, authority_, path_base_;  // path_base_: "/account" on Azurite, "" on Azure
    http::Client client_;
    std::unique_ptr<azure::SharedKey> key_;
    std::unique_ptr<azure::SasSigner> sas_signer_;
    azure::BlobSas sas_;
    std::unique_ptr<BearerTokenCache> tokens_;
    std::optional<azure::DelegationKey> delegation_;
    std::string bearer_token();
    // The user delegation key that signs URLs of a token backend, fetched
    // once and kept while it outlives the URLs asked for.
    const azure::DelegationKey &delegation_key(int64_t sas_expiry);
    // What each staged blob asked for that its promotion's copy must ask
    // again (tier, tags). Keyed by handle.
    std::map<std::string, ObjectAttributes> staged_attributes_;
};

}  // namespace so
