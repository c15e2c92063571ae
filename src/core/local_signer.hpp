// Signed URLs for files of a local backend, served by a web server that
// publishes the backend's root at base_url.
//
//   hmac:              BASE/KEY?expires=E&signature=S
//                      S = base64url(HMAC-SHA256(secret, METHOD "\n" KEY "\n" E)),
//                      checked by so_verify_url (constant time).
//   nginx_secure_link: BASE/KEY?md5=M&expires=E
//                      M = base64url(MD5(E URI " " secret)), URI the decoded
//                      path, which nginx checks with
//                      secure_link_md5 "$secure_link_expires$uri <secret>".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/backend_config.hpp"
#include "core/crypto.hpp"
#include "core/store.hpp"

namespace so {

// Where uploads arrive in a local backend's directory (no key can name
// it): flat, one file per key named by the key's SHA-256 in hex, so the web
// server creates no directories there and never sees a path of the key.
constexpr const char *kUploadArea = ".so-uploads";
std::string upload_name(std::string_view key);

class LocalSigner {
public:
    LocalSigner(std::string backend_key, const LocalConfig &config);

    // Throws Error(InvalidParameter) when the backend has no base_url, or
    // for an upload URL with the nginx scheme.
    std::string sign(const std::string &key, HttpMethod method, int64_t expires_at) const;
    // A URL nginx accepts a PUT of key's upload to (ROOT/.so-uploads/key)
    // for, the method inside the MAC: a download URL never uploads, and an
    // upload URL never downloads. nginx_secure_link only.
    std::string sign_upload(const std::string &key, int64_t expires_at) const;

    enum class Verdict { Foreign, Valid, Tampered, Expired };
    // Whether url is one of ours for method, intact and unexpired at now.
    Verdict verify(std::string_view url, HttpMethod method, int64_t now) const;

private:
    std::string backend_key_;
    std::optional<std::string> base_url_;
    std::string base_path_;  // decoded path of base_url, for nginx's $uri
    LocalSignScheme scheme_;
    std::string secret_;
    // Keyed once: signing a URL per row then hashes only the message.
    std::unique_ptr<crypto::HmacSha256> hmac_;

    std::string mac(const std::string &key, HttpMethod method, const std::string &expires) const;
};

}  // namespace so
