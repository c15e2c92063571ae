// RSA private keys and X.509 certificates read from PEM, and the RS256 JWTs
// that service accounts and service principals sign with them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace so::crypto {

class RsaPrivateKey {
public:
    // Throws Error(InvalidParameter, "<what> is not an RSA private key in
    // PEM") when pem holds none.
    RsaPrivateKey(std::string_view pem, const std::string &what);
    ~RsaPrivateKey();
    RsaPrivateKey(const RsaPrivateKey &) = delete;
    RsaPrivateKey &operator=(const RsaPrivateKey &) = delete;

    // RSASSA-PKCS1-v1_5 with SHA-256 of data.
    std::string sign_sha256(std::string_view data) const;

private:
    struct Key;
    std::unique_ptr<Key> key_;
};

// The SHA-1 digest of the DER encoding of the first certificate in pem
// (20 raw bytes: a JWT's "x5t" once base64url-encoded), or nullopt.
std::optional<std::string> certificate_sha1_thumbprint(std::string_view pem);

// header.claims.signature, each part base64url: a JWT signed RS256.
std::string rs256_jwt(const RsaPrivateKey &key, std::string_view header_json, std::string_view claims_json);

}  // namespace so::crypto
