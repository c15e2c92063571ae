#include "core/local_signer.hpp"

#include <map>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/uri.hpp"

namespace so {

namespace {

const char *method_name(HttpMethod m) { return m == HttpMethod::Put ? "PUT" : "GET"; }

// The path of an http(s) URL, decoded ("" when it has none).
std::string decoded_path(const std::string &url) {
    size_t host = url.find("://");
    size_t slash = url.find('/', host == std::string::npos ? 0 : host + 3);
    if (slash == std::string::npos) return "";
    return uri::decode(url.substr(slash)).value_or("");
}

// The query's parameters; nullopt when one appears twice (web servers and
// frameworks disagree on which one counts, so such a URL is never valid).
std::optional<std::map<std::string, std::string>> query_params(std::string_view query) {
    std::map<std::string, std::string> params;
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        size_t eq = pair.find('=');
        auto name = uri::decode(pair.substr(0, eq));
        auto value = uri::decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
        if (name && value && !params.emplace(*name, *value).second) return std::nullopt;
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return params;
}

bool all_digits(const std::string &s) {
    if (s.empty() || s.size() > 18) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

}  // namespace

LocalSigner::LocalSigner(std::string backend_key, const LocalConfig &config)
    : backend_key_(std::move(backend_key)),
      base_url_(config.base_url),
      base_path_(config.base_url ? decoded_path(*config.base_url) : ""),
      scheme_(config.sign_scheme),
      secret_(config.signing_secret),
      hmac_(std::make_unique<crypto::HmacSha256>()) {
    hmac_->set_key(secret_);
}

std::string LocalSigner::mac(const std::string &key, HttpMethod method, const std::string &expires) const {
    if (scheme_ == LocalSignScheme::NginxSecureLink)
        return crypto::base64url(crypto::md5(expires + base_path_ + "/" + key + " " + secret_));
    std::string message = std::string(method_name(method)) + "\n" + key + "\n" + expires;
    crypto::Sha256Digest digest = hmac_->mac(message);
    return crypto::base64url(std::string_view(reinterpret_cast<const char *>(digest.data()), digest.size()));
}

std::string LocalSigner::sign(const std::string &key, HttpMethod method, int64_t expires_at) const {
    if (!base_url_)
        throw Error(ErrorKind::NotConfigured,
                    "storage backend " + quoted(backend_key_) + " has no base_url to sign URLs with",
                    {}, "Set the URL where a web server publishes the backend's directory: "
                        "so_alter_backend('" + backend_key_ + "', options => '{\"base_url\": \"https://...\"}').");
    if (secret_.empty())
        throw Error(ErrorKind::NotConfigured, "storage backend " + quoted(backend_key_) + " has no signing secret");
    if (method == HttpMethod::Put && scheme_ == LocalSignScheme::NginxSecureLink)
        throw Error(ErrorKind::NotSupported,
                    "storage backend " + quoted(backend_key_) + " signs for nginx secure_link, which serves downloads only");
    std::string expires = std::to_string(expires_at);
    std::string url = *base_url_ + "/";
    uri::encode(key, true, url);
    if (scheme_ == LocalSignScheme::NginxSecureLink)
        url += "?md5=" + mac(key, method, expires) + "&expires=" + expires;
    else
        url += "?expires=" + expires + "&signature=" + mac(key, method, expires);
    return url;
}

std::string upload_name(std::string_view key) { return crypto::hex(crypto::sha256(key)); }

std::string LocalSigner::sign_upload(const std::string &key, int64_t expires_at) const {
    if (scheme_ != LocalSignScheme::NginxSecureLink)
        throw Error(ErrorKind::NotSupported,
                    "storage backend " + quoted(backend_key_) + " signs with hmac: no web server takes its uploads",
                    {}, "Signed uploads to local backends go through nginx: set sign_scheme \"nginx_secure_link\" "
                        "and configure nginx as the README shows.");
    if (!base_url_)
        throw Error(ErrorKind::NotConfigured,
                    "storage backend " + quoted(backend_key_) + " has no base_url to sign URLs with");
    std::string expires = std::to_string(expires_at);
    std::string path = "/" + std::string(kUploadArea) + "/" + upload_name(key);
    // nginx: secure_link_md5 "$secure_link_expires$uri$request_method SECRET"
    std::string md5 = crypto::base64url(crypto::md5(expires + base_path_ + path + "PUT " + secret_));
    return *base_url_ + path + "?md5=" + md5 + "&expires=" + expires;
}

LocalSigner::Verdict LocalSigner::verify(std::string_view url, HttpMethod method, int64_t now) const {
    if (!base_url_ || secret_.empty()) return Verdict::Foreign;
    std::string prefix = *base_url_ + "/";
    if (url.substr(0, prefix.size()) != prefix) return Verdict::Foreign;
    url.remove_prefix(prefix.size());
    size_t question = url.find('?');
    if (question == std::string_view::npos) return Verdict::Tampered;
    auto key = uri::decode(url.substr(0, question));
    if (!key || key->empty()) return Verdict::Tampered;
    auto parsed = query_params(url.substr(question + 1));
    if (!parsed) return Verdict::Tampered;
    auto &params = *parsed;
    const std::string &expires = params["expires"];
    const std::string &given = params[scheme_ == LocalSignScheme::NginxSecureLink ? "md5" : "signature"];
    if (!all_digits(expires) || given.empty()) return Verdict::Tampered;
    // nginx's MAC does not cover the method, and the scheme serves downloads only.
    if (method == HttpMethod::Put && scheme_ == LocalSignScheme::NginxSecureLink) return Verdict::Tampered;
    if (!crypto::constant_time_equal(mac(*key, method, expires), given)) return Verdict::Tampered;
    return std::stoll(expires) < now ? Verdict::Expired : Verdict::Valid;
}

}  // namespace so
