#include "core/sigv4.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <ctime>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace so::sigv4 {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kScopeTerminator = "aws4_request";
constexpr size_t kAmzDateLength = 16;  // "yyyymmddThhmmssZ"
constexpr int64_t kLastSecondOfYear9999 = 253402300799;

// Headers botocore leaves out of the signature because proxies and HTTP
// libraries add or rewrite them.
constexpr std::string_view kUnsignedHeaders[] = {"expect", "user-agent", "x-amzn-trace-id"};
// Headers the signer itself sets; a caller passing them is a bug.
constexpr std::string_view kSignerHeaders[] = {"host", "authorization", "x-amz-date",
                                               "x-amz-content-sha256", "x-amz-security-token"};
// Query parameters of a presigned URL's signature.
constexpr std::string_view kAuthQueryNames[] = {
    "X-Amz-Algorithm", "X-Amz-Credential",     "X-Amz-Date",     "X-Amz-Expires",
    "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"};

using Digest = crypto::Sha256Digest;
using crypto::HmacSha256;
using crypto::Sha256;

Error invalid(const std::string &message) { return Error(ErrorKind::InvalidParameter, message); }

// --- Characters and encodings ---------------------------------------------------

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

// RFC 9110 token characters, the only ones allowed in a header name.
bool is_token_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char &c : out) c = lower(c);
    return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

constexpr size_t kHexDigestSize = 2 * std::tuple_size<Digest>::value;

void write_hex(char (&out)[kHexDigestSize], const Digest &bytes) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xF];
    }
}

void append_hex(std::string &out, const Digest &bytes) {
    char text[kHexDigestSize];
    write_hex(text, bytes);
    out.append(text, sizeof text);
}

void append_number(std::string &out, int64_t value) {
    char buf[24];
    auto result = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, result.ptr);
}

// Writes value as exactly `width` decimal digits.
void put_digits(char *out, int value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

void format_amz_date(int64_t unix_seconds, char out[kAmzDateLength]) {
    if (unix_seconds < 0 || unix_seconds > kLastSecondOfYear9999)
        throw invalid("signing time must be between 1970 and 9999, got " +
                      std::to_string(unix_seconds) + " Unix seconds");
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    if (!gmtime_r(&t, &tm)) throw invalid("signing time cannot be represented");
    put_digits(out, tm.tm_year + 1900, 4);
    put_digits(out + 4, tm.tm_mon + 1, 2);
    put_digits(out + 6, tm.tm_mday, 2);
    out[8] = 'T';
    put_digits(out + 9, tm.tm_hour, 2);
    put_digits(out + 11, tm.tm_min, 2);
    put_digits(out + 13, tm.tm_sec, 2);
    out[15] = 'Z';
}

// SigV4 "Trimall": no leading or trailing blanks, inner runs of blanks
// collapsed to one space (botocore: ' '.join(value.split())).
std::string trim_all(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    bool pending_space = false;
    for (char c : value) {
        if (c == ' ' || c == '\t') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) out += ' ';
        pending_space = false;
        out += c;
    }
    return out;
}

// --- Validation -------------------------------------------------------------------

void check_method(std::string_view method) {
    bool ok = !method.empty() && method.size() <= 16;
    for (char c : method) ok = ok && c >= 'A' && c <= 'Z';
    if (!ok)
        throw invalid("HTTP method must be uppercase letters, got " + quoted(std::string(method)));
}

void check_expiry(int64_t expires_seconds) {
    if (expires_seconds < kMinPresignExpiry || expires_seconds > kMaxPresignExpiry)
        throw invalid("presigned URL expiry must be between 1 and 604800 seconds (7 days), got " +
                      std::to_string(expires_seconds));
}

void check_payload_hash(std::string_view hash) {
    if (hash == kUnsignedPayload) return;
    bool ok = hash.size() == 64;
    for (char c : hash) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
    if (!ok)
        throw invalid("payload hash must be 64 lowercase hex digits or UNSIGNED-PAYLOAD, got " +
                      quoted(std::string(hash)));
}

void check_header_name(std::string_view name) {
    bool ok = !name.empty();
    for (unsigned char c : name) ok = ok && is_token_char(c);
    if (!ok) throw invalid("invalid HTTP header name " + quoted(std::string(name)));
    for (std::string_view reserved : kSignerHeaders)
        if (equals_ignoring_case(name, reserved))
            throw invalid("header " + quoted(std::string(name)) + " is set by the signer");
}

// Printable ASCII and tabs only: no CR/LF (header injection) and nothing
// whose whitespace handling differs between implementations.
bool is_header_value_safe(std::string_view value) {
    for (unsigned char c : value)
        if (c != '\t' && (c < 0x20 || c >= 0x7f)) return false;
    return true;
}

void check_header_value(std::string_view name, std::string_view value) {
    if (!is_header_value_safe(value))
        throw invalid("value of header " + quoted(std::string(name)) +
                      " must be printable ASCII (control characters and non-ASCII bytes are "
                      "not allowed)");
}

void check_extra_query(const Params &extra_query) {
    for (size_t i = 0; i < extra_query.size(); ++i) {
        const std::string &name = extra_query[i].first;
        if (name.empty()) throw invalid("presigned URL query parameter name must not be empty");
        for (std::string_view reserved : kAuthQueryNames)
            if (equals_ignoring_case(name, reserved))
                throw invalid("query parameter " + quoted(name) + " is set by the signer");
        for (size_t j = 0; j < i; ++j)
            if (extra_query[j].first == name)
                throw invalid("query parameter " + quoted(name) + " is given twice");
    }
}

// A name allowed in a credential scope: "us-east-1", "auto", "s3".
void check_scope_part(const char *what, std::string_view value) {
    bool ok = !value.empty();
    for (char c : value)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    if (!ok)
        throw invalid(std::string("signing ") + what +
                      " must be letters, digits, '-' or '_', got " + quoted(std::string(value)));
}

// A bucket that can be the first label of a host name: botocore's rule
// (3 to 63 of a-z 0-9 '-', not starting or ending with '-'). Names with '.'
// are refused, as botocore does: a wildcard TLS certificate covers one
// label only.
bool is_dns_compatible_bucket(std::string_view bucket) {
    if (bucket.size() < 3 || bucket.size() > 63) return false;
    if (bucket.front() == '-' || bucket.back() == '-') return false;
    for (char c : bucket)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

// --- Endpoint parsing ------------------------------------------------------------

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

bool is_ipv6_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
}

int parse_port(std::string_view text, const std::string &url) {
    int port = 0;
    auto result = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || result.ec != std::errc() || result.ptr != text.data() + text.size() ||
        port < 1 || port > 65535)
        throw invalid("endpoint URL " + quoted(url) + " has an invalid port");
    return port;
}

// Splits "host[:port]" or "[v6]:port"; returns the port, 0 when none.
int split_host_port(std::string_view authority, std::string_view &host, const std::string &url) {
    size_t port_colon = std::string_view::npos;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos)
            throw invalid("endpoint URL " + quoted(url) + " has an unterminated IPv6 address");
        host = authority.substr(0, close + 1);
        bool ok = close > 1;
        for (char c : host.substr(1, close - 1)) ok = ok && is_ipv6_char(c);
        if (!ok) throw invalid("endpoint URL " + quoted(url) + " has an invalid IPv6 address");
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':')
                throw invalid("endpoint URL " + quoted(url) + " has text after the IPv6 address");
            port_colon = close + 1;
        }
    } else {
        port_colon = authority.find(':');
        host = authority.substr(0, port_colon);
        bool ok = !host.empty();
        for (char c : host) ok = ok && is_host_char(c);
        if (!ok) throw invalid("endpoint URL " + quoted(url) + " has an invalid host name");
    }
    if (port_colon == std::string_view::npos) return 0;
    return parse_port(authority.substr(port_colon + 1), url);
}

// --- Canonical pieces -------------------------------------------------------------

using QueryPair = std::pair<std::string_view, std::string_view>;

// Appends an already encoded query ("a=1&b=&c") in canonical order. This
// is what botocore does to the query string of the URL it signs.
void append_sorted_query(std::string &out, std::string_view query, std::vector<QueryPair> &pairs) {
    pairs.clear();
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        size_t eq = item.find('=');
        if (eq == std::string_view::npos) pairs.emplace_back(item, std::string_view());
        else pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    std::sort(pairs.begin(), pairs.end());
    for (size_t i = 0; i < pairs.size(); ++i) {
        if (i) out += '&';
        out += pairs[i].first;
        out += '=';
        out += pairs[i].second;
    }
}

void append_query_param(std::string &out, std::string_view name, std::string_view value) {
    append_uri_encoded(out, name, false);
    out += '=';
    append_uri_encoded(out, value, false);
}

struct CanonicalHeader {
    std::string name;   // lowercase
    std::string value;  // trimmed; duplicates joined with ','
};

bool is_unsigned_header(std::string_view lowercase_name) {
    for (std::string_view skip : kUnsignedHeaders)
        if (lowercase_name == skip) return true;
    return false;
}

// Every header to sign, lowercase, sorted by name; values of a repeated
// header joined with ',' in the order given.
std::vector<CanonicalHeader> canonical_headers(const HttpRequest &request,
                                               std::string_view amz_date,
                                               std::string_view session_token) {
    std::vector<CanonicalHeader> headers;
    headers.push_back({"host", request.target.host});
    for (const auto &[name, value] : request.headers) {
        check_header_name(name);
        check_header_value(name, value);
        std::string lowercase_name = to_lower(name);
        if (is_unsigned_header(lowercase_name)) continue;
        headers.push_back({std::move(lowercase_name), trim_all(value)});
    }
    headers.push_back({"x-amz-date", std::string(amz_date)});
    headers.push_back({"x-amz-content-sha256", request.payload_sha256});
    if (!session_token.empty()) headers.push_back({"x-amz-security-token", std::string(session_token)});

    std::stable_sort(headers.begin(), headers.end(),
                     [](const CanonicalHeader &a, const CanonicalHeader &b) { return a.name < b.name; });
    std::vector<CanonicalHeader> merged;
    for (auto &header : headers) {
        if (!merged.empty() && merged.back().name == header.name) {
            merged.back().value += ',';
            merged.back().value += header.value;
        } else {
            merged.push_back(std::move(header));
        }
    }
    return merged;
}

// Appends to url the target, "?", the operation parameters and the
// authentication parameters up to X-Amz-Expires; returns where the query
// starts.
size_t start_presigned_url(std::string &url, const Target &target, const Params &extra_query,
                           std::string_view query_head, int64_t expires_seconds) {
    url += target.base_url;
    url += target.path;
    url += '?';
    const size_t query_start = url.size();
    for (const auto &[name, value] : extra_query) {
        append_query_param(url, name, value);
        url += '&';
    }
    url += query_head;
    append_number(url, expires_seconds);
    return query_start;
}

}  // namespace

// --- Public helpers ------------------------------------------------------------------

void append_uri_encoded(std::string &out, std::string_view text, bool keep_slash) {
    static const char digits[] = "0123456789ABCDEF";
    // Copies runs of characters kept as they are in one append each.
    size_t run_start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (is_unreserved(c) || (keep_slash && c == '/')) continue;
        out.append(text.data() + run_start, i - run_start);
        const char escaped[3] = {'%', digits[c >> 4], digits[c & 0xF]};
        out.append(escaped, 3);
        run_start = i + 1;
    }
    out.append(text.data() + run_start, text.size() - run_start);
}

std::string uri_encode(std::string_view text, bool keep_slash) {
    std::string out;
    out.reserve(text.size() * 3);
    append_uri_encoded(out, text, keep_slash);
    return out;
}

std::string amz_date(int64_t unix_seconds) {
    char text[kAmzDateLength];
    format_amz_date(unix_seconds, text);
    return std::string(text, kAmzDateLength);
}

std::string payload_sha256(std::string_view payload) { return crypto::hex(crypto::sha256(payload)); }

Endpoint Endpoint::parse(std::string_view url_view) {
    const std::string url(url_view);
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos)
        throw invalid("endpoint URL " + quoted(url) + " must start with http:// or https://");
    Endpoint endpoint;
    endpoint.scheme = to_lower(url.substr(0, scheme_end));
    if (endpoint.scheme != "http" && endpoint.scheme != "https")
        throw invalid("endpoint URL " + quoted(url) + " must start with http:// or https://");

    std::string_view rest = std::string_view(url).substr(scheme_end + 3);
    size_t authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view after = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
    // Not quoted: user information may hold a password.
    if (authority.find('@') != std::string_view::npos)
        throw invalid("endpoint URL must not contain user information (user:password@)");
    if (!after.empty() && after != "/")
        throw invalid("endpoint URL " + quoted(url) +
                      " must be scheme and host only, without a path, query or fragment");

    std::string_view host;
    int port = split_host_port(authority, host, url);
    const int default_port = endpoint.scheme == "https" ? 443 : 80;
    endpoint.authority = std::string(authority);
    endpoint.host = to_lower(host);
    if (port != 0 && port != default_port) endpoint.host += ":" + std::to_string(port);
    return endpoint;
}

Target s3_target(const Endpoint &endpoint, AddressingStyle style, std::string_view bucket,
                 std::string_view key) {
    if (bucket.empty()) throw invalid("S3 bucket name must not be empty");
    if (bucket.find('/') != std::string_view::npos)
        throw invalid("S3 bucket name " + quoted(std::string(bucket)) + " must not contain '/'");
    const bool virtual_hosted = style == AddressingStyle::VirtualHosted;
    // botocore quietly falls back to path-style here; we say so instead.
    if (virtual_hosted && !is_dns_compatible_bucket(bucket))
        throw invalid("S3 bucket name " + quoted(std::string(bucket)) +
                      " cannot be used in a virtual-hosted-style URL (it needs 3 to 63 "
                      "of a-z, 0-9 and '-', without '.'); use path-style addressing");
    Target target;
    target.base_url.reserve(endpoint.scheme.size() + 4 + bucket.size() + endpoint.authority.size());
    target.base_url += endpoint.scheme;
    target.base_url += "://";
    target.path.reserve(2 + bucket.size() + key.size() * 3);
    target.path += '/';
    if (virtual_hosted) {
        target.base_url += bucket;
        target.base_url += '.';
        target.host.reserve(bucket.size() + 1 + endpoint.host.size());
        target.host += bucket;
        target.host += '.';
    } else {
        append_uri_encoded(target.path, bucket, false);
        if (!key.empty()) target.path += '/';
    }
    target.base_url += endpoint.authority;
    target.host += endpoint.host;
    append_uri_encoded(target.path, key, true);
    return target;
}

std::string canonical_query_string(const Params &query) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(query.size());
    for (const auto &[name, value] : query)
        encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto &[name, value] : encoded) {
        if (!out.empty()) out += '&';
        out += name;
        out += '=';
        out += value;
    }
    return out;
}

std::string request_url(const Target &target, const Params &query) {
    std::string url = target.base_url + target.path;
    if (!query.empty()) {
        url += '?';
        url += canonical_query_string(query);
    }
    return url;
}

std::string derive_signing_key(std::string_view secret_access_key, std::string_view date,
                               std::string_view region, std::string_view service) {
    std::string secret = "AWS4";
    secret += secret_access_key;
    std::string key = crypto::hmac_sha256(secret, date);
    OPENSSL_cleanse(secret.data(), secret.size());
    for (std::string_view part : {region, service, kScopeTerminator}) {
        std::string next = crypto::hmac_sha256(key, part);
        OPENSSL_cleanse(key.data(), key.size());
        key = std::move(next);
    }
    return key;
}

Params AuthHeaders::to_send() const {
    Params headers = {{"Authorization", authorization},
                      {"x-amz-date", amz_date},
                      {"x-amz-content-sha256", content_sha256}};
    if (!security_token.empty()) headers.emplace_back("x-amz-security-token", security_token);
    return headers;
}

// --- Signer -------------------------------------------------------------------------

struct Signer::State {
    Credentials credentials;
    std::string region;
    std::string service;
    // "&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]": the end of
    // every presigned URL's authentication parameters, and the same in
    // canonical order (the token sorts before SignedHeaders).
    std::string presign_query_tail;
    std::string canonical_presign_query_tail;

    // The signing key for key_date (yyyymmdd), with the scope strings that
    // depend on the same date. signing_hmac has the string to sign's first
    // three lines (string_to_sign_head) as its prefix.
    std::string key_date;
    HmacSha256 signing_hmac;
    std::string scope;               // yyyymmdd/region/service/aws4_request
    std::string encoded_credential;  // access key id/scope, URI-encoded

    // The request time and the text that depends only on it, kept because
    // a loop signs many requests in the same second.
    bool has_stamp = false;
    int64_t stamp_seconds = 0;
    char stamp[kAmzDateLength] = {};
    std::string string_to_sign_head;  // algorithm, time and scope lines
    std::string presign_query_head;   // "X-Amz-Algorithm=...&X-Amz-Expires="

    // Buffers reused from call to call.
    Sha256 sha256;
    std::string canonical_request;
    std::vector<QueryPair> query_pairs;

    ~State() {
        OPENSSL_cleanse(credentials.secret_access_key.data(), credentials.secret_access_key.size());
    }

    std::string_view amz_date() const { return std::string_view(stamp, kAmzDateLength); }
    std::string_view date() const { return std::string_view(stamp, 8); }

    // Sets the request time: the signing key for its date and the text
    // built from it.
    void set_time(int64_t unix_seconds) {
        if (has_stamp && unix_seconds == stamp_seconds) return;
        has_stamp = false;  // until everything below has succeeded
        format_amz_date(unix_seconds, stamp);
        if (date() != key_date) refresh_signing_key();
        // Appends into the existing buffers: no allocation per second.
        string_to_sign_head.clear();
        string_to_sign_head.append(kAlgorithm).append("\n").append(amz_date());
        string_to_sign_head.append("\n").append(scope).append("\n");
        signing_hmac.set_prefix(string_to_sign_head);
        presign_query_head.clear();
        presign_query_head.append("X-Amz-Algorithm=").append(kAlgorithm);
        presign_query_head.append("&X-Amz-Credential=").append(encoded_credential);
        presign_query_head.append("&X-Amz-Date=").append(amz_date()).append("&X-Amz-Expires=");
        stamp_seconds = unix_seconds;
        has_stamp = true;
    }

    void refresh_signing_key() {
        key_date.clear();  // until the new key is in place
        std::string key = derive_signing_key(credentials.secret_access_key, date(), region, service);
        signing_hmac.set_key(key);
        OPENSSL_cleanse(key.data(), key.size());
        key_date = std::string(date());
        scope = key_date + "/" + region + "/" + service + "/" + std::string(kScopeTerminator);
        encoded_credential = uri_encode(credentials.access_key_id + "/" + scope, false);
    }

    // Hashes canonical_request and appends the hex signature to out. The
    // string to sign is string_to_sign_head followed by that hash in hex.
    void append_signature(std::string &out) {
        Digest request_hash = sha256.digest(canonical_request);
        char request_hash_hex[kHexDigestSize];
        write_hex(request_hash_hex, request_hash);
        append_hex(out, signing_hmac.mac(std::string_view(request_hash_hex, kHexDigestSize)));
    }
};

Signer::Signer(Credentials credentials, std::string region, std::string service)
    : state_(std::make_unique<State>()) {
    // Messages never show the secret or the token, only which is wrong.
    if (credentials.access_key_id.empty()) throw invalid("S3 access key id must not be empty");
    if (credentials.secret_access_key.empty())
        throw invalid("S3 secret access key must not be empty");
    if (!is_header_value_safe(credentials.session_token))
        throw invalid("S3 session token must be printable ASCII");
    check_scope_part("region", region);
    check_scope_part("service", service);
    std::string token_param;
    if (!credentials.session_token.empty()) {
        token_param = "&X-Amz-Security-Token=";
        append_uri_encoded(token_param, credentials.session_token, false);
    }
    state_->presign_query_tail = "&X-Amz-SignedHeaders=host" + token_param;
    state_->canonical_presign_query_tail = token_param + "&X-Amz-SignedHeaders=host";
    state_->credentials = std::move(credentials);
    state_->region = std::move(region);
    state_->service = std::move(service);
}

Signer::~Signer() = default;
Signer::Signer(Signer &&) noexcept = default;
Signer &Signer::operator=(Signer &&) noexcept = default;

const std::string &Signer::region() const { return state_->region; }
const std::string &Signer::service() const { return state_->service; }

AuthHeaders Signer::sign_headers(const HttpRequest &request, int64_t unix_seconds) {
    check_method(request.method);
    check_payload_hash(request.payload_sha256);
    State &s = *state_;
    s.set_time(unix_seconds);
    const std::string &token = s.credentials.session_token;
    std::vector<CanonicalHeader> headers = canonical_headers(request, s.amz_date(), token);

    std::string signed_header_names;
    for (const auto &header : headers) {
        if (!signed_header_names.empty()) signed_header_names += ';';
        signed_header_names += header.name;
    }

    std::string &canonical = s.canonical_request;
    canonical.clear();
    canonical += request.method;
    canonical += '\n';
    canonical += request.target.path;
    canonical += '\n';
    canonical += canonical_query_string(request.query);
    canonical += '\n';
    for (const auto &header : headers) {
        canonical += header.name;
        canonical += ':';
        canonical += header.value;
        canonical += '\n';
    }
    canonical += '\n';
    canonical += signed_header_names;
    canonical += '\n';
    canonical += request.payload_sha256;

    AuthHeaders result;
    result.authorization = std::string(kAlgorithm) + " Credential=" + s.credentials.access_key_id +
                           "/" + s.scope + ", SignedHeaders=" + signed_header_names + ", Signature=";
    s.append_signature(result.authorization);
    result.amz_date = std::string(s.amz_date());
    result.content_sha256 = request.payload_sha256;
    result.security_token = token;
    result.canonical_request = canonical;
    result.string_to_sign = s.string_to_sign_head + payload_sha256(canonical);
    return result;
}

std::string Signer::presign(std::string_view method, const Target &target, int64_t expires_seconds,
                            int64_t unix_seconds, const Params &extra_query, const Params &signed_headers) {
    std::string url;
    presign_into(url, method, target, expires_seconds, unix_seconds, extra_query, signed_headers);
    return url;
}

void Signer::presign_into(std::string &url, std::string_view method, const Target &target,
                          int64_t expires_seconds, int64_t unix_seconds, const Params &extra_query,
                          const Params &signed_headers) {
    check_method(method);
    check_expiry(expires_seconds);
    check_extra_query(extra_query);
    State &s = *state_;
    s.set_time(unix_seconds);
    if (!signed_headers.empty()) {
        presign_with_headers(url, method, target, expires_seconds, extra_query, signed_headers);
        return;
    }

    // The layout botocore produces: operation parameters in the order
    // given, then the authentication parameters, the signature last.
    url.clear();
    url.reserve(target.base_url.size() + target.path.size() + s.presign_query_head.size() +
                s.presign_query_tail.size() + 128);
    const size_t query_start = start_presigned_url(url, target, extra_query, s.presign_query_head, expires_seconds);
    url += s.presign_query_tail;

    // A presigned URL signs only the host header and no payload.
    std::string &canonical = s.canonical_request;
    canonical.clear();
    canonical += method;
    canonical += '\n';
    canonical += target.path;
    canonical += '\n';
    if (extra_query.empty()) {
        // The authentication parameters alone: in canonical order already
        // but for the token, which the tail puts before SignedHeaders.
        canonical += s.presign_query_head;
        append_number(canonical, expires_seconds);
        canonical += s.canonical_presign_query_tail;
    } else {
        // Sorted as botocore does it: from the query the URL carries.
        append_sorted_query(canonical, std::string_view(url).substr(query_start), s.query_pairs);
    }
    canonical += "\nhost:";
    canonical += target.host;
    canonical += "\n\nhost\n";
    canonical += kUnsignedPayload;

    url += "&X-Amz-Signature=";
    s.append_signature(url);
}

Signer::PostAuth Signer::post_auth(int64_t unix_seconds) {
    State &s = *state_;
    s.set_time(unix_seconds);
    PostAuth auth;
    auth.credential = s.credentials.access_key_id + "/" + s.scope;
    auth.amz_date = std::string(s.amz_date());
    auth.security_token = s.credentials.session_token;
    return auth;
}

void Signer::sign_post_policy(PostAuth &auth, std::string_view base64_policy) {
    State &s = *state_;
    // The policy is the whole string to sign, under the day's signing key.
    std::string key = derive_signing_key(s.credentials.secret_access_key, auth.amz_date.substr(0, 8), s.region,
                                         s.service);
    auth.signature = crypto::hex(crypto::hmac_sha256(key, base64_policy));
    OPENSSL_cleanse(key.data(), key.size());
}

// The rare form (SSE-C keys): headers beside host are signed, so the
// precomputed query tail does not apply; built plainly instead.
void Signer::presign_with_headers(std::string &url, std::string_view method, const Target &target,
                                  int64_t expires_seconds, const Params &extra_query, const Params &signed_headers) {
    State &s = *state_;
    std::vector<std::pair<std::string, std::string>> headers{{"host", target.host}};
    for (const auto &[name, value] : signed_headers) {
        check_header_name(name);
        check_header_value(name, value);
        std::string lower_name = to_lower(name);
        if (lower_name == "host") throw invalid("header \"host\" is always signed");
        headers.emplace_back(std::move(lower_name), trim_all(value));
    }
    std::sort(headers.begin(), headers.end());
    std::string names;
    for (const auto &h : headers) names += (names.empty() ? "" : ";") + h.first;

    // The default tail is "&X-Amz-SignedHeaders=host" followed by the token.
    const std::string token_param = s.presign_query_tail.substr(std::strlen("&X-Amz-SignedHeaders=host"));
    url.clear();
    const size_t query_start = start_presigned_url(url, target, extra_query, s.presign_query_head, expires_seconds);
    url += "&X-Amz-SignedHeaders=";
    append_uri_encoded(url, names, false);
    url += token_param;

    std::string &canonical = s.canonical_request;
    canonical.clear();
    canonical += method;
    canonical += '\n';
    canonical += target.path;
    canonical += '\n';
    append_sorted_query(canonical, std::string_view(url).substr(query_start), s.query_pairs);
    canonical += '\n';
    for (const auto &[name, value] : headers) canonical += name + ":" + value + "\n";
    canonical += '\n';
    canonical += names;
    canonical += '\n';
    canonical += kUnsignedPayload;

    url += "&X-Amz-Signature=";
    s.append_signature(url);
}

}  // namespace so::sigv4
