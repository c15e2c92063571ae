// Azure Storage authorization: Shared Key signatures of Blob service
// requests and service SAS tokens for one blob, as Microsoft documents
// them ("Authorize with Shared Key", "Create a service SAS"). Our own
// strings to sign; HMAC-SHA256 by OpenSSL. Nothing here reads the clock,
// and the account key appears in no message and no returned value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/crypto.hpp"

namespace so::azure {

// The REST and SAS version we speak (the x-ms-version header, sv=).
inline constexpr const char *kServiceVersion = "2021-08-06";
// As S3's presigned URLs: a signed URL lives at most seven days.
inline constexpr int64_t kMaxSasExpiry = 604800;

using Params = std::vector<std::pair<std::string, std::string>>;  // unencoded, in order

// "Sun, 06 Nov 1994 08:49:37 GMT" for x-ms-date.
std::string rfc1123_date(int64_t unix_seconds);

// The CanonicalizedResource of a request: "/account" + the URI path as
// sent (percent-encoded), then each query parameter on its own line as
// "name:value", names lowercase and sorted, values decoded, repeated names
// joined by commas in sorted order.
std::string canonicalized_resource(std::string_view account, std::string_view encoded_path, const Params &query);

// The x-ms-* headers, lowercase, sorted, one "name:value\n" each, values
// trimmed (runs of blanks inside kept, as the SDKs and Azurite sign them).
std::string canonicalized_headers(const Params &headers);

// The Shared Key string to sign (version 2015-02-21 and later: an empty
// Content-Length for a body of 0 bytes).
std::string shared_key_string_to_sign(std::string_view method, const Params &headers,
                                      std::string_view canonical_resource);

// "SharedKey account:signature" for a request.
class SharedKey {
public:
    // key_base64: the account key as the portal shows it. Throws
    // Error(InvalidParameter) when it is not base64.
    SharedKey(std::string account, std::string_view key_base64);
    const std::string &account() const { return account_; }
    std::string authorization(std::string_view method, std::string_view encoded_path, const Params &query,
                              const Params &headers) const;
    // Base64 HMAC-SHA256 of text with the account key.
    std::string sign(std::string_view text) const;
    const std::string &raw_key() const { return key_; }

private:
    std::string account_, key_;
};

// A service SAS for one blob (sr=b).
struct BlobSas {
    std::string permissions;  // "r", "cw", ... in the documented order racwd
    int64_t start = 0;        // 0: no start time (valid at once)
    int64_t expiry = 0;
    std::string container, blob;  // blob: the name in the container, unencoded
    std::string protocol = "https";  // or "https,http"
    std::string identifier;          // a stored access policy
    std::string ip;
    // rscc, rscd, rsce, rscl, rsct: headers the service answers with
    std::string cache_control, content_disposition, content_encoding, content_language, content_type;
};

// The string to sign of a service SAS, version 2020-12-06 and later.
std::string sas_string_to_sign(std::string_view account, const BlobSas &sas);

// The query string of the SAS (without '?'), parameters in the order the
// Azure SDKs write them.
std::string blob_sas_query(const SharedKey &key, const BlobSas &sas);

// blob_sas_query for many blobs, as so_sign makes them row after row: the
// key's HMAC state is kept, and so is the part of the string to sign and
// of the query that depends only on permissions, times and container, so
// each URL hashes only its own part and allocates nothing once warm.
class SasSigner {
public:
    explicit SasSigner(const SharedKey &key);
    // Appends to url the query string blob_sas_query gives for sas.
    void append_query(std::string &url, const BlobSas &sas);

private:
    std::string account_;
    crypto::HmacSha256 hmac_;
    // What the kept prefix was made for.
    bool warm_ = false;
    int64_t start_ = 0, expiry_ = 0;
    std::string permissions_, container_, protocol_;
    std::string query_head_, rest_, signature_;
};

// A user delegation key (Get User Delegation Key), which signs SAS for a
// backend that holds a token instead of the account key.
struct DelegationKey {
    std::string object_id, tenant_id, signed_start, signed_expiry, service, version;
    std::string value;  // raw key bytes
    int64_t start = 0, expiry = 0;
};

// The string to sign of a user delegation SAS for one blob, version
// 2020-12-06 and later.
std::string user_delegation_sas_string_to_sign(const DelegationKey &key, std::string_view account, const BlobSas &sas);

// The query string of a user delegation SAS (without '?').
std::string user_delegation_sas_query(const DelegationKey &key, std::string_view account, const BlobSas &sas);

}  // namespace so::azure
