// Hashes, HMAC, encodings and randomness on OpenSSL, for etags, checksums
// and URL signatures.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace so::crypto {

std::string sha256(std::string_view data);  // 32 raw bytes
std::string md5(std::string_view data);     // 16 raw bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes

// Incremental digest for content seen in pieces.
class Digest {
public:
    enum class Algorithm { Md5, Sha256 };
    explicit Digest(Algorithm algorithm);
    ~Digest();
    Digest(const Digest &) = delete;
    Digest &operator=(const Digest &) = delete;
    void update(const void *data, size_t len);
    std::string finish();  // raw bytes

private:
    void *ctx_;
};

std::string hex(std::string_view bytes);            // lowercase
std::string base64(std::string_view bytes);         // standard, padded
std::string base64url(std::string_view bytes);      // URL-safe, no padding
bool constant_time_equal(std::string_view a, std::string_view b);

// Cryptographically strong random bytes; throws Error(Internal) on failure.
std::string random_bytes(size_t n);

}  // namespace so::crypto
