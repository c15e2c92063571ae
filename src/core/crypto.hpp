// Hashes, HMAC, encodings and randomness on OpenSSL, for etags, checksums
// and URL signatures.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
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

using Sha256Digest = std::array<unsigned char, 32>;

// SHA-256 whose state is a plain value: saving and resuming a state (the
// HMAC below does it twice per message) is a copy, with no allocation and
// no provider lookup. That is OpenSSL's low-level SHA256_* interface, the
// same assembly as EVP's; OpenSSL 3 marks it deprecated but keeps it, and
// EVP_MD_CTX_copy_ex allocates on every copy, which cost a third of the
// time of signing one URL.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256 &) = delete;
    Sha256 &operator=(const Sha256 &) = delete;

    void start();
    void start_from(const Sha256 &saved);
    void update(const void *data, size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    Sha256Digest finish();
    Sha256Digest digest(std::string_view data);

private:
    struct State;
    State *state_;
};

// HMAC-SHA256 under one fixed key of messages that share a prefix: the
// key's padded blocks are hashed once in set_key(), the prefix once in
// set_prefix(), and each mac() resumes from copies of those states to hash
// only the rest of the message.
class HmacSha256 {
public:
    static constexpr size_t kBlockSize = 64;

    void set_key(std::string_view key);  // any length (long keys are hashed first)
    void set_prefix(std::string_view prefix);
    Sha256Digest mac(std::string_view rest);  // HMAC of prefix + rest

private:
    Sha256 key_inner_;  // after the inner padded key
    Sha256 inner_;      // after the inner padded key and the prefix
    Sha256 outer_;      // after the outer padded key
    Sha256 work_;
};

std::string hex(std::string_view bytes);            // lowercase
std::string base64(std::string_view bytes);         // standard, padded
std::string base64url(std::string_view bytes);      // URL-safe, no padding
// Standard padded base64; nullopt when text is not exactly that.
std::optional<std::string> base64_decode(std::string_view text);
bool constant_time_equal(std::string_view a, std::string_view b);

// Cryptographically strong random bytes; throws Error(Internal) on failure.
std::string random_bytes(size_t n);

}  // namespace so::crypto
