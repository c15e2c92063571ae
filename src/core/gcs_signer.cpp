#include "core/gcs_signer.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/rsa_key.hpp"
#include "core/uri.hpp"

namespace so::gcs {

namespace {

constexpr const char *kAlgorithm = "GOOG4-RSA-SHA256";  // RsaSigner's
constexpr int64_t kMaxExpiry = 7 * 24 * 3600;

[[noreturn]] void invalid(const std::string &message) { throw Error(ErrorKind::InvalidParameter, message); }

std::string lower(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Leading and trailing white space removed, runs inside made one space.
std::string canonical_value(std::string_view v) {
    std::string out;
    bool space = false;
    for (char c : v) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string stamp(int64_t unix_seconds, const char *format) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// The canonical request and string to sign of a V4 signed URL, and the
// URL without its signature, for either algorithm.
struct Prepared {
    std::string url_head;  // scheme://host/path?canonical-query
    std::string to_sign;
};

Prepared prepare(const UrlRequest &r, const char *algorithm, const std::string &credential_id,
                 std::string &canonical_request) {
    if (r.expires_in < 1 || r.expires_in > kMaxExpiry)
        invalid("GCS signed URLs expire after 1 second to 7 days (604800 seconds)");
    // Host and path by URL style.
    std::string host, path = "/";
    switch (r.style) {
        case UrlStyle::PathStyle:
            host = r.host;
            path += r.bucket;
            if (!r.object.empty()) path += "/";
            break;
        case UrlStyle::VirtualHosted:
            host = r.bucket + "." + r.host;
            break;
        case UrlStyle::BucketBoundDomain:
            host = r.bucket_bound_domain;
            break;
    }
    uri::encode(r.object, true, path);

    // Signed headers: host and the request's, names lowercase, sorted.
    std::vector<std::pair<std::string, std::string>> headers{{"host", host}};
    std::string payload = "UNSIGNED-PAYLOAD";
    for (const auto &[name, value] : r.headers) {
        std::string n = lower(name);
        if (n == "host") continue;
        headers.emplace_back(n, canonical_value(value));
        if (n == "x-goog-content-sha256") payload = canonical_value(value);
    }
    std::sort(headers.begin(), headers.end());
    std::string signed_names;
    for (const auto &h : headers) signed_names += (signed_names.empty() ? "" : ";") + h.first;

    const std::string date = stamp(r.unix_seconds, "%Y%m%d"), timestamp = stamp(r.unix_seconds, "%Y%m%dT%H%M%SZ");
    const std::string scope = date + "/auto/storage/goog4_request";
    std::vector<std::pair<std::string, std::string>> query{
        {"X-Goog-Algorithm", algorithm},
        {"X-Goog-Credential", credential_id + "/" + scope},
        {"X-Goog-Date", timestamp},
        {"X-Goog-Expires", std::to_string(r.expires_in)},
        {"X-Goog-SignedHeaders", signed_names}};
    for (const auto &p : r.query) query.push_back(p);
    std::vector<std::pair<std::string, std::string>> encoded;
    for (const auto &[name, value] : query) encoded.emplace_back(uri::encode(name, false), uri::encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string canonical_query;
    for (const auto &[name, value] : encoded) canonical_query += (canonical_query.empty() ? "" : "&") + name + "=" + value;

    std::string &c = canonical_request;
    c = r.method + "\n" + path + "\n" + canonical_query + "\n";
    for (const auto &[name, value] : headers) c += name + ":" + value + "\n";
    c += "\n" + signed_names + "\n" + payload;
    std::string to_sign = std::string(algorithm) + "\n" + timestamp + "\n" + scope + "\n" + crypto::hex(crypto::sha256(c));

    return {r.scheme + "://" + host + path + "?" + canonical_query, std::move(to_sign)};
}

}  // namespace

ServiceAccount parse_service_account(std::string_view json_text) {
    json::Value root;
    try {
        root = json::parse(json_text);
    } catch (const Error &) {
        invalid("the service account key file is not valid JSON");
    }
    auto text = [&](const char *name) {
        const json::Value *v = root.find(name);
        if (!v || v->kind != json::Value::Kind::String || v->text.empty())
            invalid(std::string("the service account key file has no \"") + name + "\"");
        return v->text;
    };
    ServiceAccount account{text("client_email"), text("private_key")};
    auto optional = [&](const char *name, std::string &field) {
        const json::Value *v = root.find(name);
        if (v && v->kind == json::Value::Kind::String && !v->text.empty()) field = v->text;
    };
    optional("private_key_id", account.private_key_id);
    optional("token_uri", account.token_uri);
    return account;
}

RsaSigner::RsaSigner(const ServiceAccount &account)
    : key_(std::make_unique<crypto::RsaPrivateKey>(account.private_key_pem, "the service account's private_key")),
      client_email_(account.client_email) {}

RsaSigner::~RsaSigner() = default;

std::string RsaSigner::sign_url(const UrlRequest &r) const {
    Prepared p = prepare(r, kAlgorithm, client_email_, canonical_request_);
    return p.url_head + "&X-Goog-Signature=" + crypto::hex(sign_bytes(p.to_sign));
}

std::string RsaSigner::sign_bytes(std::string_view data) const { return key_->sign_sha256(data); }

HmacSigner::HmacSigner(std::string access_id, std::string secret)
    : plain_(std::make_shared<PlainUrlState>()), access_id_(std::move(access_id)), secret_(std::move(secret)) {
    if (access_id_.empty() || secret_.empty()) invalid("a GCS HMAC key needs its access id and secret");
}

const std::string &HmacSigner::key_for(const std::string &date) const {
    // The signing key: HMAC chain from "GOOG4" + secret over the scope.
    if (date != key_date_) {
        std::string k = crypto::hmac_sha256("GOOG4" + secret_, date);
        k = crypto::hmac_sha256(k, "auto");
        k = crypto::hmac_sha256(k, "storage");
        key_ = crypto::hmac_sha256(k, "goog4_request");
        key_date_ = date;
    }
    return key_;
}

struct HmacSigner::PlainUrlState {
    bool warm = false;
    int64_t unix_seconds = 0, expires_in = 0;
    std::string method, host, scheme;
    std::string canonical_query;  // also the URL's query, before the signature
    std::string canonical_tail;   // "\n" query "\nhost:" host "\n\nhost\nUNSIGNED-PAYLOAD"
    crypto::HmacSha256 hmac;      // the day's key, the string to sign up to the hash
    crypto::Sha256 sha;
    std::string path, canonical, hex;
};

bool HmacSigner::sign_plain_url(const UrlRequest &r, std::string &url) const {
    if (!r.headers.empty() || !r.query.empty() || r.style != UrlStyle::PathStyle || r.expires_in < 1 ||
        r.expires_in > kMaxExpiry)
        return false;
    PlainUrlState &s = *plain_;
    if (!s.warm || s.unix_seconds != r.unix_seconds || s.expires_in != r.expires_in || s.method != r.method ||
        s.host != r.host || s.scheme != r.scheme) {
        s.warm = true;
        s.unix_seconds = r.unix_seconds;
        s.expires_in = r.expires_in;
        s.method = r.method;
        s.host = r.host;
        s.scheme = r.scheme;
        const std::string date = stamp(r.unix_seconds, "%Y%m%d"), timestamp = stamp(r.unix_seconds, "%Y%m%dT%H%M%SZ");
        const std::string scope = date + "/auto/storage/goog4_request";
        // The five parameters sort as written.
        s.canonical_query = "X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=" +
                            uri::encode(access_id_ + "/" + scope, false) + "&X-Goog-Date=" + timestamp +
                            "&X-Goog-Expires=" + std::to_string(r.expires_in) + "&X-Goog-SignedHeaders=host";
        s.canonical_tail = "\n" + s.canonical_query + "\nhost:" + r.host + "\n\nhost\nUNSIGNED-PAYLOAD";
        s.hmac.set_key(key_for(date));
        s.hmac.set_prefix("GOOG4-HMAC-SHA256\n" + timestamp + "\n" + scope + "\n");
    }
    s.path.assign("/").append(r.bucket);
    if (!r.object.empty()) s.path += '/';
    uri::encode(r.object, true, s.path);
    s.sha.start();
    s.sha.update(r.method);
    s.sha.update("\n", 1);
    s.sha.update(s.path);
    s.sha.update(s.canonical_tail);
    crypto::Sha256Digest digest = s.sha.finish();
    s.hex = crypto::hex(std::string_view(reinterpret_cast<const char *>(digest.data()), digest.size()));
    crypto::Sha256Digest mac = s.hmac.mac(s.hex);
    url.assign(r.scheme).append("://").append(r.host).append(s.path).append("?").append(s.canonical_query);
    url += "&X-Goog-Signature=";
    url += crypto::hex(std::string_view(reinterpret_cast<const char *>(mac.data()), mac.size()));
    return true;
}

std::string HmacSigner::sign_url(const UrlRequest &r) const {
    std::string url;
    if (sign_plain_url(r, url)) return url;
    Prepared p = prepare(r, "GOOG4-HMAC-SHA256", access_id_, canonical_request_);
    return p.url_head + "&X-Goog-Signature=" +
           crypto::hex(crypto::hmac_sha256(key_for(stamp(r.unix_seconds, "%Y%m%d")), p.to_sign));
}

std::vector<std::pair<std::string, std::string>> HmacSigner::sign_request(
    std::string_view method, std::string_view encoded_path,
    const std::vector<std::pair<std::string, std::string>> &query,
    const std::vector<std::pair<std::string, std::string>> &headers, std::string_view payload_sha256,
    int64_t unix_seconds) const {
    const std::string date = stamp(unix_seconds, "%Y%m%d"), timestamp = stamp(unix_seconds, "%Y%m%dT%H%M%SZ");
    const std::string scope = date + "/auto/storage/goog4_request";
    std::vector<std::pair<std::string, std::string>> added{{"x-goog-date", timestamp},
                                                           {"x-goog-content-sha256", std::string(payload_sha256)}};
    std::vector<std::pair<std::string, std::string>> canonical;
    for (const auto &[name, value] : headers) canonical.emplace_back(lower(name), canonical_value(value));
    for (const auto &[name, value] : added) canonical.emplace_back(name, value);
    std::sort(canonical.begin(), canonical.end());
    std::string signed_names, canonical_headers;
    for (size_t i = 0; i < canonical.size(); ++i) {
        // A repeated name is one line, its values joined by commas.
        if (i > 0 && canonical[i].first == canonical[i - 1].first) {
            canonical_headers.pop_back();
            canonical_headers += "," + canonical[i].second + "\n";
            continue;
        }
        signed_names += (signed_names.empty() ? "" : ";") + canonical[i].first;
        canonical_headers += canonical[i].first + ":" + canonical[i].second + "\n";
    }
    std::vector<std::pair<std::string, std::string>> encoded;
    for (const auto &[name, value] : query) encoded.emplace_back(uri::encode(name, false), uri::encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string canonical_query;
    for (const auto &[name, value] : encoded) canonical_query += (canonical_query.empty() ? "" : "&") + name + "=" + value;
    std::string &c = canonical_request_;
    c.assign(method).append("\n").append(encoded_path).append("\n").append(canonical_query).append("\n");
    c += canonical_headers + "\n" + signed_names + "\n" + std::string(payload_sha256);
    std::string to_sign = "GOOG4-HMAC-SHA256\n" + timestamp + "\n" + scope + "\n" + crypto::hex(crypto::sha256(c));
    added.emplace_back("Authorization", "GOOG4-HMAC-SHA256 Credential=" + access_id_ + "/" + scope +
                                            ", SignedHeaders=" + signed_names + ", Signature=" +
                                            crypto::hex(crypto::hmac_sha256(key_for(date), to_sign)));
    return added;
}

}  // namespace so::gcs
