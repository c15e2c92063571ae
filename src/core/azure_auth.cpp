#include "core/azure_auth.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/http_values.hpp"
#include "core/uri.hpp"

namespace so::azure {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// The value of a header named name (any case), or "".
std::string header(const Params &headers, std::string_view name) {
    for (const auto &[n, v] : headers)
        if (lower(n) == name) return v;
    return "";
}

// A header value as the service reads it: trimmed. Runs of blanks inside
// are signed as sent, as the Azure SDKs and Azurite sign them (folding
// them, as one page of the documentation says, breaks such values).
std::string trimmed(std::string_view v) {
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    while (!v.empty() && blank(v.front())) v.remove_prefix(1);
    while (!v.empty() && blank(v.back())) v.remove_suffix(1);
    return std::string(v);
}

// name=value, URL-encoded, after a '&' unless first; nothing for an empty value.
void append_param(std::string &q, const char *name, const std::string &value) {
    if (value.empty()) return;
    if (!q.empty()) q += '&';
    q += name;
    q += '=';
    uri::encode(value, false, q);
}

// The response headers a SAS overrides (rscc ... rsct), in the SDKs' order.
void append_response_overrides(std::string &q, const BlobSas &sas) {
    append_param(q, "rscc", sas.cache_control);
    append_param(q, "rscd", sas.content_disposition);
    append_param(q, "rsce", sas.content_encoding);
    append_param(q, "rscl", sas.content_language);
    append_param(q, "rsct", sas.content_type);
}

}  // namespace

std::string rfc1123_date(int64_t unix_seconds) {
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[40];
    std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

std::string canonicalized_resource(std::string_view account, std::string_view encoded_path, const Params &query) {
    std::string out = "/" + std::string(account) + std::string(encoded_path.empty() ? "/" : encoded_path);
    std::map<std::string, std::vector<std::string>> by_name;
    for (const auto &[name, value] : query) by_name[lower(name)].push_back(value);
    for (auto &[name, values] : by_name) {
        std::sort(values.begin(), values.end());
        out += "\n" + name + ":";
        for (size_t i = 0; i < values.size(); ++i) out += (i ? "," : "") + values[i];
    }
    return out;
}

std::string canonicalized_headers(const Params &headers) {
    std::vector<std::pair<std::string, std::string>> ms;
    for (const auto &[name, value] : headers) {
        std::string l = lower(name);
        if (l.rfind("x-ms-", 0) == 0) ms.emplace_back(l, trimmed(value));
    }
    std::sort(ms.begin(), ms.end());
    std::string out;
    for (const auto &[name, value] : ms) out += name + ":" + value + "\n";
    return out;
}

std::string shared_key_string_to_sign(std::string_view method, const Params &headers,
                                      std::string_view canonical_resource) {
    std::string length = header(headers, "content-length");
    if (length == "0") length.clear();
    std::string out(method);
    out += '\n';
    for (const char *name : {"content-encoding", "content-language"}) out += header(headers, name) + "\n";
    out += length + "\n";
    for (const char *name : {"content-md5", "content-type", "date", "if-modified-since", "if-match",
                             "if-none-match", "if-unmodified-since", "range"})
        out += header(headers, name) + "\n";
    out += canonicalized_headers(headers);
    out += canonical_resource;
    return out;
}

SharedKey::SharedKey(std::string account, std::string_view key_base64) : account_(std::move(account)) {
    auto key = crypto::base64_decode(key_base64);
    if (!key || key->empty())
        throw Error(ErrorKind::InvalidParameter, "the Azure account key is not base64",
                    {}, "Copy the key as the portal or `az storage account keys list` shows it.");
    key_ = std::move(*key);
}

std::string SharedKey::sign(std::string_view text) const { return crypto::base64(crypto::hmac_sha256(key_, text)); }

std::string SharedKey::authorization(std::string_view method, std::string_view encoded_path, const Params &query,
                                     const Params &headers) const {
    std::string to_sign =
        shared_key_string_to_sign(method, headers, canonicalized_resource(account_, encoded_path, query));
    return "SharedKey " + account_ + ":" + sign(to_sign);
}

std::string sas_string_to_sign(std::string_view account, const BlobSas &sas) {
    std::string resource = "/blob/" + std::string(account) + "/" + sas.container + "/" + sas.blob;
    std::string out;
    for (const std::string &field :
         {sas.permissions, sas.start ? http::iso8601(sas.start) : std::string(), http::iso8601(sas.expiry), resource,
          sas.identifier, sas.ip, sas.protocol, std::string(kServiceVersion), std::string("b"),
          std::string() /* snapshot time */, std::string() /* encryption scope */, sas.cache_control,
          sas.content_disposition, sas.content_encoding, sas.content_language})
        out += field + "\n";
    out += sas.content_type;
    return out;
}

std::string blob_sas_query(const SharedKey &key, const BlobSas &sas) {
    std::string signature = key.sign(sas_string_to_sign(key.account(), sas));
    std::string q;
    auto add = [&q](const char *name, const std::string &value) { append_param(q, name, value); };
    add("sv", kServiceVersion);
    add("spr", sas.protocol);
    add("st", sas.start ? http::iso8601(sas.start) : "");
    add("se", http::iso8601(sas.expiry));
    add("sr", "b");
    add("sp", sas.permissions);
    add("sip", sas.ip);
    add("si", sas.identifier);
    append_response_overrides(q, sas);
    add("sig", signature);
    return q;
}

SasSigner::SasSigner(const SharedKey &key) : account_(key.account()) { hmac_.set_key(key.raw_key()); }

void SasSigner::append_query(std::string &url, const BlobSas &sas) {
    // The string to sign up to the blob's name, and the query up to sr=b,
    // depend on these alone: kept while they stay the same.
    if (!warm_ || sas.start != start_ || sas.expiry != expiry_ || sas.permissions != permissions_ ||
        sas.container != container_ || sas.protocol != protocol_) {
        warm_ = true;
        start_ = sas.start;
        expiry_ = sas.expiry;
        permissions_ = sas.permissions;
        container_ = sas.container;
        protocol_ = sas.protocol;
        std::string start = sas.start ? http::iso8601(sas.start) : std::string();
        std::string expiry = http::iso8601(sas.expiry);
        hmac_.set_prefix(sas.permissions + "\n" + start + "\n" + expiry + "\n/blob/" + account_ + "/" +
                         sas.container + "/");
        query_head_.clear();
        append_param(query_head_, "sv", kServiceVersion);
        append_param(query_head_, "spr", sas.protocol);
        append_param(query_head_, "st", start);
        append_param(query_head_, "se", expiry);
        append_param(query_head_, "sr", "b");
        append_param(query_head_, "sp", sas.permissions);
    }
    rest_.assign(sas.blob);
    for (const std::string *field : {&sas.identifier, &sas.ip, &sas.protocol}) {
        rest_ += '\n';
        rest_ += *field;
    }
    rest_ += "\n";
    rest_ += kServiceVersion;
    rest_ += "\nb\n\n";  // resource; no snapshot time, no encryption scope
    for (const std::string *field : {&sas.cache_control, &sas.content_disposition, &sas.content_encoding,
                                     &sas.content_language, &sas.content_type}) {
        rest_ += '\n';
        rest_ += *field;
    }
    crypto::Sha256Digest mac = hmac_.mac(rest_);
    signature_ = crypto::base64(std::string_view(reinterpret_cast<const char *>(mac.data()), mac.size()));
    size_t start_of_query = url.size();
    url += query_head_;
    std::string q;  // the rarely set parameters after sp
    append_param(q, "sip", sas.ip);
    append_param(q, "si", sas.identifier);
    append_response_overrides(q, sas);
    if (!q.empty()) url += "&" + q;
    url += url.size() > start_of_query ? "&sig=" : "sig=";
    uri::encode(signature_, false, url);
}

std::string user_delegation_sas_string_to_sign(const DelegationKey &key, std::string_view account,
                                               const BlobSas &sas) {
    std::string resource = "/blob/" + std::string(account) + "/" + sas.container + "/" + sas.blob;
    std::string out;
    for (const std::string &field :
         {sas.permissions, sas.start ? http::iso8601(sas.start) : std::string(), http::iso8601(sas.expiry), resource,
          key.object_id, key.tenant_id, key.signed_start, key.signed_expiry, key.service, key.version,
          std::string() /* authorized user object id */, std::string() /* unauthorized user object id */,
          std::string() /* correlation id */, sas.ip, sas.protocol, std::string(kServiceVersion), std::string("b"),
          std::string() /* snapshot time */, std::string() /* encryption scope */, sas.cache_control,
          sas.content_disposition, sas.content_encoding, sas.content_language})
        out += field + "\n";
    out += sas.content_type;
    return out;
}

std::string user_delegation_sas_query(const DelegationKey &key, std::string_view account, const BlobSas &sas) {
    std::string signature =
        crypto::base64(crypto::hmac_sha256(key.value, user_delegation_sas_string_to_sign(key, account, sas)));
    std::string q;
    auto add = [&q](const char *name, const std::string &value) { append_param(q, name, value); };
    add("sv", kServiceVersion);
    add("spr", sas.protocol);
    add("st", sas.start ? http::iso8601(sas.start) : "");
    add("se", http::iso8601(sas.expiry));
    add("skoid", key.object_id);
    add("sktid", key.tenant_id);
    add("skt", key.signed_start);
    add("ske", key.signed_expiry);
    add("sks", key.service);
    add("skv", key.version);
    add("sr", "b");
    add("sp", sas.permissions);
    add("sip", sas.ip);
    append_response_overrides(q, sas);
    add("sig", signature);
    return q;
}

}  // namespace so::azure
