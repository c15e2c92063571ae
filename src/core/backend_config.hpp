// A registered storage backend, parsed from its registry row (key, url,
// options). Parsing validates everything a row may hold, so the registry
// never caches a backend that cannot be used, and the messages name the
// offending option but never echo a value (values may be secrets).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/object_attributes.hpp"

namespace so {

enum class BackendKind { Local, S3, Azure };

enum class LocalSignScheme { Hmac, NginxSecureLink };

struct LocalConfig {
    std::string root;  // absolute directory, no trailing slash
    std::optional<std::string> base_url;
    LocalSignScheme sign_scheme = LocalSignScheme::Hmac;
    std::string signing_secret;
    int64_t max_expires_in = 7 * 24 * 3600;  // seconds a signed URL may live, as S3's presigned URLs
    // Directories 0750 and files 0640 instead of 0700/0600, in the group of
    // the root directory (made set-group-ID by the administrator): a web
    // server in that group reads what it serves (and writes uploads into
    // ROOT/.so-uploads, 0770), and nothing else of the server's.
    bool group_access = false;
};

// Where an S3 backend's credentials come from (aws_credential_chain.hpp).
enum class CredentialSource {
    Options,           // access_key_id / secret_access_key in the registry
    Environment,       // "credentials": "env": the server's AWS_* variables
    File,              // "credentials": "file:/path": an AWS shared-credentials file
    Chain,             // "credentials": "default": the AWS SDKs' order
    WebIdentity,       // "credentials": "web_identity"
    Container,         // "credentials": "container"
    InstanceMetadata,  // "credentials": "instance": IMDSv2
};

struct S3Config {
    // Google Cloud Storage through its XML API with an HMAC key (gs://):
    // the S3 protocol with GCS's differences (gcs_headers.hpp), signed URLs
    // GOOG4-HMAC-SHA256, or GOOG4-RSA-SHA256 with service_account_file.
    bool gcs = false;
    std::string service_account_file;  // a service account key (JSON) on the server
    // gs:// with an OAuth token instead of an HMAC key: "default",
    // "service_account" or "metadata" (gcs_credentials.hpp); empty: HMAC.
    std::string gcs_credentials;
    std::string bucket;
    std::string prefix;  // "" or ends with '/'
    std::optional<std::string> endpoint;  // scheme://host[:port], no trailing slash
    std::string region = "us-east-1";
    CredentialSource credential_source = CredentialSource::Options;
    std::string credentials_file;
    std::string profile = "default";
    bool profile_set = false;  // the option was given (else AWS_PROFILE, as the SDKs)
    std::string ca_file;       // PEM CA certificates to verify the endpoint with (a private CA)
    std::string access_key_id, secret_access_key, session_token;
    // Registered by a role that is not a superuser: no internal network
    // addresses (network_policy.hpp), no credentials of the server's own.
    // Set by the glue from the backend's owner, not an option.
    bool restricted = false;
    std::optional<bool> path_style;  // default: virtual-hosted on AWS, path-style elsewhere
    bool allow_http = false;
    int64_t part_size = 8 * 1024 * 1024;
    int max_concurrency = 4;
    // Unset: the session's stored_object.connect_timeout / request_timeout.
    std::optional<int> connect_timeout_ms;
    std::optional<int> request_timeout_ms;
    int max_retries = 3;
    // Attributes every put gets unless the call sets its own (option
    // "attributes").
    ObjectAttributes default_attributes;
    // Server-side encryption of every object written: "AES256" or "aws:kms"
    // (with sse_kms_key_id, or the bucket's default KMS key), or SSE-C with
    // a key of ours, sent on every request that touches an object.
    std::string sse, sse_kms_key_id;
    std::string sse_customer_key;      // raw 32 bytes; empty: no SSE-C
    std::string sse_customer_key_md5;  // base64 MD5 of the raw key, as S3 wants it
};

// How an Azure backend authorizes its requests.
enum class AzureAuth {
    SharedKey,  // account_key: every request signed; signed URLs are service SAS
    SasToken,   // sas_token: appended to every request; no URLs signed here
    Token,      // "credentials": Entra tokens of the server's own (azure_credentials.hpp);
                // signed URLs are user delegation SAS
};

struct AzureConfig {
    std::string account;
    std::string container;
    std::string prefix;  // "" or ends with '/'
    // scheme://host[:port][/path] without a trailing slash: the service
    // URL before the container (Azurite: http://127.0.0.1:10000/devstoreaccount1).
    // Unset: https://ACCOUNT.blob.core.windows.net.
    std::optional<std::string> endpoint;
    AzureAuth auth = AzureAuth::SharedKey;
    std::string account_key;  // base64, as the portal shows it
    std::string sas_token;    // without the leading '?'
    // AzureAuth::Token: "default", "client_secret", "client_certificate", "workload_identity", "managed_identity"
    std::string token_provider;
    std::string client_id;       // a user-assigned managed identity
    std::string ca_file;         // PEM CA certificates to verify the endpoint with (a private CA)
    bool restricted = false;  // as S3Config::restricted
    bool allow_http = false;
    int64_t block_size = 8 * 1024 * 1024;
    int max_concurrency = 4;
    std::optional<int> connect_timeout_ms;
    std::optional<int> request_timeout_ms;
    int max_retries = 3;
    ObjectAttributes default_attributes;
};

struct BackendConfig {
    std::string key;
    BackendKind kind = BackendKind::Local;
    LocalConfig local;
    S3Config s3;
    AzureConfig azure;
    // Where the backend's objects are published without a signature (a CDN,
    // a public bucket): public_base_url/key. Any kind of backend.
    std::optional<std::string> public_base_url;
    // What may be stored: objects of at most max_size bytes, of the media
    // types in allowed_content_types ("type/subtype" or "type/*"; empty:
    // any). Any kind of backend.
    std::optional<int64_t> max_size;
    std::vector<std::string> allowed_content_types;
};

// Throws Error(LimitExceeded) when size is beyond the backend's max_size,
// Error(InvalidParameter) when content_type is not one it allows; both
// messages name the limit and the value.
void check_limits(const BackendConfig &config, uint64_t size, std::string_view content_type);
void check_size_limit(const BackendConfig &config, uint64_t size);
void check_content_type_allowed(const BackendConfig &config, std::string_view content_type);

// The public URL of key on a backend with public_base_url (nullopt without).
std::optional<std::string> public_url(const BackendConfig &config, std::string_view key);

// Checks a backend key: 1 to 63 characters of [A-Za-z0-9_.-].
void validate_backend_key(std::string_view key);

// Parses and validates one registry row. data_dir resolves the relative
// paths of osfs:// URLs; a local backend's directory may neither be nor
// contain the data directory, nor lie inside PostgreSQL's own files there
// (Error(PermissionDenied)). Throws Error(InvalidParameter) otherwise.
BackendConfig parse_backend_config(std::string_view key, std::string_view url,
                                   std::string_view options_json, std::string_view data_dir);

// The URL scheme, as registered ("file", "osfs", "s3", "gs", or for Azure
// "az", "azure", "abfs", "abfss"); throws for others.
std::string url_scheme(std::string_view url);

// Whether a backend URL gives access to the server's own files (every
// scheme but those of object stores, conservatively, even when malformed).
bool url_grants_file_access(std::string_view url);

// What only a superuser may configure, named for a message, or empty: the
// server's own credentials ("env", "file:"), or an endpoint whose literal
// host is an internal address unless allowed (network_policy.hpp).
std::string superuser_only_setting(const BackendConfig &config);

// Options whose values are secrets: never shown, never in a message.
const std::vector<std::string> &secret_option_names();

// Options to add when a row is registered: a generated signing secret for
// local backends that have none. Returns the options JSON (canonical).
std::string complete_backend_options(std::string_view url, std::string_view options_json);

}  // namespace so
