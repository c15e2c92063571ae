#include "core/rsa_key.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/crypto.hpp"
#include "core/error.hpp"

namespace so::crypto {

namespace {

struct Bio {
    BIO *bio;
    explicit Bio(std::string_view text) : bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))) {
        if (!bio) throw Error(ErrorKind::Internal, "out of memory reading PEM");
    }
    ~Bio() { BIO_free(bio); }
};

}  // namespace

struct RsaPrivateKey::Key {
    EVP_PKEY *pkey = nullptr;
    ~Key() { EVP_PKEY_free(pkey); }
};

RsaPrivateKey::RsaPrivateKey(std::string_view pem, const std::string &what) : key_(std::make_unique<Key>()) {
    Bio in(pem);
    key_->pkey = PEM_read_bio_PrivateKey(in.bio, nullptr, nullptr, nullptr);
    if (!key_->pkey || EVP_PKEY_base_id(key_->pkey) != EVP_PKEY_RSA)
        throw Error(ErrorKind::InvalidParameter, what + " is not an RSA private key in PEM");
}

RsaPrivateKey::~RsaPrivateKey() = default;

std::string RsaPrivateKey::sign_sha256(std::string_view data) const {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    std::string signature(static_cast<size_t>(EVP_PKEY_get_size(key_->pkey)), '\0');
    size_t length = signature.size();
    bool ok = ctx && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
              EVP_DigestSign(ctx, reinterpret_cast<unsigned char *>(signature.data()), &length,
                             reinterpret_cast<const unsigned char *>(data.data()), data.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) throw Error(ErrorKind::Internal, "RSA signing failed");
    signature.resize(length);
    return signature;
}

std::optional<std::string> certificate_sha1_thumbprint(std::string_view pem) {
    Bio in(pem);
    X509 *certificate = PEM_read_bio_X509(in.bio, nullptr, nullptr, nullptr);
    if (!certificate) return std::nullopt;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    bool ok = X509_digest(certificate, EVP_sha1(), digest, &length) == 1;
    X509_free(certificate);
    if (!ok) throw Error(ErrorKind::Internal, "could not digest a certificate");
    return std::string(reinterpret_cast<char *>(digest), length);
}

std::string rs256_jwt(const RsaPrivateKey &key, std::string_view header_json, std::string_view claims_json) {
    std::string unsigned_jwt = base64url(header_json) + "." + base64url(claims_json);
    return unsigned_jwt + "." + base64url(key.sign_sha256(unsigned_jwt));
}

}  // namespace so::crypto
