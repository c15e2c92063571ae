// AWS Signature Version 4 for S3: URI encoding, canonical requests, signing
// keys, the Authorization header and presigned URLs.
//
// The output is byte for byte what botocore's pure-Python signer produces
// (S3SigV4Auth for headers, S3SigV4QueryAuth for presigned URLs), which
// tests/unit/sigv4_test.cpp checks against botocore itself. Time is always
// passed in as Unix seconds (UTC); nothing here reads the clock.
//
// The secret access key never appears in an exception message or in any
// returned value; the session token appears only where S3 needs it (the
// x-amz-security-token header, the X-Amz-Security-Token URL parameter) and
// never in a message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace so::sigv4 {

// x-amz-content-sha256 value for a payload that is not hashed (presigned
// URLs, or streamed uploads over HTTPS).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty payload, for GET, HEAD and DELETE.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// S3's limits on X-Amz-Expires: one second to seven days.
inline constexpr int64_t kMinPresignExpiry = 1;
inline constexpr int64_t kMaxPresignExpiry = 604800;

// Query parameters or headers as (name, value) pairs: unencoded, in order.
using Params = std::vector<std::pair<std::string, std::string>>;

// --- Encoding ---------------------------------------------------------------

// Appends text with every byte except A-Z a-z 0-9 - _ . ~ written as %XX
// (uppercase hex). keep_slash leaves '/' as is: true for an object key in a
// path, false for query names and values.
void append_uri_encoded(std::string &out, std::string_view text, bool keep_slash);
std::string uri_encode(std::string_view text, bool keep_slash);

// "20130524T000000Z" for a time in Unix seconds. Throws InvalidParameter
// for a time before 1970 or after 9999.
std::string amz_date(int64_t unix_seconds);

// Lowercase hex SHA-256 of a payload, the x-amz-content-sha256 value.
std::string payload_sha256(std::string_view payload);

// --- Where a request goes ------------------------------------------------------

// An S3 endpoint such as "https://s3.eu-west-1.amazonaws.com" or
// "http://127.0.0.1:9000": scheme and authority only (no path, query,
// user info). parse() throws InvalidParameter naming what is wrong.
struct Endpoint {
    std::string scheme;     // "http" or "https", lowercase
    std::string authority;  // host[:port] as written, used in URLs
    std::string host;       // Host header value: lowercase, default port dropped

    static Endpoint parse(std::string_view url);
};

enum class AddressingStyle {
    Path,           // scheme://endpoint/bucket/key
    VirtualHosted,  // scheme://bucket.endpoint/key
};

// One bucket or object on an endpoint: what a request is sent to and signs.
struct Target {
    std::string base_url;  // "https://bucket.s3.eu-west-1.amazonaws.com"
    std::string host;      // Host header value (signed)
    std::string path;      // URI-encoded canonical path, e.g. "/bucket/a%20b"
};

// The target of an object, or of the bucket itself when key is empty. The
// key is signed exactly as given: S3 does not normalize "//", "." or "..".
// Throws InvalidParameter for an empty bucket or one with '/', and, when
// VirtualHosted is asked for, for a bucket botocore would not put in a host
// name: not 3 to 63 of a-z 0-9 '-', or containing '.' (a wildcard TLS
// certificate covers one label only).
Target s3_target(const Endpoint &endpoint, AddressingStyle style, std::string_view bucket,
                 std::string_view key);

// Query parameters in SigV4 canonical form: names and values encoded,
// sorted by name then value, "name=value" joined by '&' (an empty value
// gives "name=").
std::string canonical_query_string(const Params &query);

// The URL to send a header-signed request to: base URL, path and the
// canonical query string.
std::string request_url(const Target &target, const Params &query);

// --- Keys ----------------------------------------------------------------------

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty: long-term credentials, no token
};

// The 32-byte signing key: HMAC chain "AWS4"+secret → date (yyyymmdd) →
// region → service → "aws4_request".
std::string derive_signing_key(std::string_view secret_access_key, std::string_view date,
                               std::string_view region, std::string_view service);

// --- Signing -------------------------------------------------------------------

// A request to sign with the Authorization header.
struct HttpRequest {
    std::string method = "GET";
    Target target;
    Params query;    // e.g. {"uploads", ""}, {"partNumber", "1"}
    // Headers the request sends, to sign (Range, Content-Type, Content-MD5,
    // x-amz-meta-*, ...). Not Host, Authorization or the x-amz-date,
    // x-amz-content-sha256 and x-amz-security-token the signer adds. Values
    // must be printable ASCII (tabs allowed); they are signed trimmed, with
    // inner runs of blanks collapsed, and a repeated name's values joined
    // with ','. Expect, User-Agent and X-Amzn-Trace-Id may be listed but
    // are left unsigned, as botocore does, since proxies rewrite them. A
    // Date header is signed as given, next to x-amz-date.
    Params headers;
    // Lowercase hex SHA-256 of the body, or kUnsignedPayload.
    std::string payload_sha256 = std::string(kEmptyPayloadSha256);
};

// The headers that authenticate a request, from sign_headers().
struct AuthHeaders {
    std::string authorization;
    std::string amz_date;        // x-amz-date
    std::string content_sha256;  // x-amz-content-sha256
    std::string security_token;  // x-amz-security-token; empty when none
    // For diagnosing SignatureDoesNotMatch: S3 returns its own versions of
    // these two in the error body. Neither contains a secret.
    std::string canonical_request;
    std::string string_to_sign;

    // The headers to add to the request besides HttpRequest::headers,
    // as (name, value): Authorization, x-amz-date, x-amz-content-sha256
    // and, with a session token, x-amz-security-token.
    Params to_send() const;
};

// Signs requests for one set of credentials, region and service. Keeps the
// derived signing key for the current date (re-derived when the date
// changes), the text that depends only on the request time, and reusable
// OpenSSL state and buffers, so keep one per backend and reuse it. Not
// thread-safe: use one per thread. A moved-from Signer may only be
// destroyed or assigned to.
class Signer {
public:
    // Throws InvalidParameter for an empty access key id or secret, a
    // session token that is not printable ASCII, or a region or service
    // that is not letters, digits, '-' and '_' (e.g. "us-east-1", "auto").
    Signer(Credentials credentials, std::string region, std::string service = "s3");
    ~Signer();
    Signer(Signer &&) noexcept;
    Signer &operator=(Signer &&) noexcept;
    Signer(const Signer &) = delete;
    Signer &operator=(const Signer &) = delete;

    const std::string &region() const;
    const std::string &service() const;

    // Signs a request at the given time. Throws InvalidParameter for a bad
    // method, header name or value, or payload hash.
    AuthHeaders sign_headers(const HttpRequest &request, int64_t unix_seconds);

    // A presigned URL, valid for expires_seconds (1..604800) from
    // unix_seconds. extra_query holds operation parameters such as
    // response-content-disposition, response-content-type or versionId;
    // they come first in the URL in the order given, followed by
    // X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders,
    // -Security-Token (with a session token) and -Signature. The host
    // header is signed, and signed_headers too (the client must send them
    // exactly: SSE-C keys). Throws InvalidParameter for an expiry out of
    // range, a bad method, header, or duplicate or reserved extra
    // parameter names.
    std::string presign(std::string_view method, const Target &target, int64_t expires_seconds,
                        int64_t unix_seconds, const Params &extra_query = {}, const Params &signed_headers = {});
    // The same, written into url (cleared first) to reuse its buffer.
    void presign_into(std::string &url, std::string_view method, const Target &target,
                      int64_t expires_seconds, int64_t unix_seconds,
                      const Params &extra_query = {}, const Params &signed_headers = {});

    // A browser POST upload's authentication (SigV4): the credential
    // (access key id/scope), the time (yyyymmddThhmmssZ), the session token
    // (empty without), and the signature of the base64 policy document.
    struct PostAuth {
        std::string credential, amz_date, security_token, signature;
    };
    // The credential, time and token a policy must name, before it is signed.
    PostAuth post_auth(int64_t unix_seconds);
    // Signs the base64 policy for auth (from post_auth at the same time).
    void sign_post_policy(PostAuth &auth, std::string_view base64_policy);

private:
    void presign_with_headers(std::string &url, std::string_view method, const Target &target,
                              int64_t expires_seconds, const Params &extra_query, const Params &signed_headers);
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace so::sigv4
