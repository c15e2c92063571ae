// Google Cloud Storage V4 signed URLs: GOOG4-RSA-SHA256 with a service
// account's private key, checked against Google's public conformance cases
// (tests/unit/gcs_signer_test.cpp), and GOOG4-HMAC-SHA256 with an HMAC
// key, the same canonical request signed with the key chain GCS documents.
// Our own canonical request and string to sign; RSA and HMAC by OpenSSL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/rsa_key.hpp"

namespace so::gcs {

// What a V4 signature needs of a service account key file (JSON).
struct ServiceAccount {
    std::string client_email;
    std::string private_key_pem;
    std::string private_key_id;  // may be empty
    std::string token_uri = "https://oauth2.googleapis.com/token";
};

// Reads a service account key file; throws Error(InvalidParameter) naming
// what is missing (never echoing the key).
ServiceAccount parse_service_account(std::string_view json_text);

enum class UrlStyle { PathStyle, VirtualHosted, BucketBoundDomain };

struct UrlRequest {
    std::string method = "GET";
    std::string bucket;
    std::string object;  // empty: the bucket itself (a listing)
    std::vector<std::pair<std::string, std::string>> headers;  // signed; the client sends them
    std::vector<std::pair<std::string, std::string>> query;    // extra query parameters
    int64_t expires_in = 0;    // seconds, 1 .. 604800
    int64_t unix_seconds = 0;  // the signing time
    std::string scheme = "https";
    UrlStyle style = UrlStyle::PathStyle;
    std::string host = "storage.googleapis.com";  // path style and virtual hosted
    std::string bucket_bound_domain;              // BucketBoundDomain
};

class RsaSigner {
public:
    // Throws Error(InvalidParameter) when the key is not an RSA private key.
    explicit RsaSigner(const ServiceAccount &account);
    ~RsaSigner();
    RsaSigner(const RsaSigner &) = delete;
    RsaSigner &operator=(const RsaSigner &) = delete;

    std::string sign_url(const UrlRequest &request) const;
    // RSASSA-PKCS1-v1_5 with SHA-256 of data (a JWT's, a URL's string to sign).
    std::string sign_bytes(std::string_view data) const;

    // The canonical request and string to sign of the last sign_url, for tests.
    const std::string &canonical_request() const { return canonical_request_; }

private:
    std::unique_ptr<crypto::RsaPrivateKey> key_;
    std::string client_email_;
    mutable std::string canonical_request_;
};

// V4 signed URLs with an HMAC key (access id and secret), as the S3
// backend's gs:// flavour signs. Keeps the day's signing key.
class HmacSigner {
public:
    HmacSigner(std::string access_id, std::string secret);
    std::string sign_url(const UrlRequest &request) const;
    // The canonical request of the last request signed, or of the last URL
    // with signed headers or query parameters (for tests).
    const std::string &canonical_request() const { return canonical_request_; }

    // A header-signed request: the Authorization, x-goog-date and
    // x-goog-content-sha256 headers to add. encoded_path as sent; headers
    // (host among them) are all signed; payload_sha256 lowercase hex.
    std::vector<std::pair<std::string, std::string>> sign_request(
        std::string_view method, std::string_view encoded_path,
        const std::vector<std::pair<std::string, std::string>> &query,
        const std::vector<std::pair<std::string, std::string>> &headers, std::string_view payload_sha256,
        int64_t unix_seconds) const;

private:
    const std::string &key_for(const std::string &date) const;
    // URLs that sign only host (so_sign's, row after row): what depends
    // only on the time, lifetime, method and host is made once and kept,
    // the key's HMAC state too, so each URL hashes its path and little else.
    bool sign_plain_url(const UrlRequest &request, std::string &url) const;
    struct PlainUrlState;
    std::shared_ptr<PlainUrlState> plain_;
    std::string access_id_, secret_;
    mutable std::string key_date_, key_, canonical_request_;
};

}  // namespace so::gcs
