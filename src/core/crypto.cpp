#include "core/crypto.hpp"

// The low-level SHA256_* functions: see the comment on Sha256 in crypto.hpp.
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/error.hpp"

#include <cstring>
#include <utility>

namespace so::crypto {

namespace {

// Fetched once: OpenSSL 3's EVP_md5()/EVP_sha256() look the algorithm up in
// the provider on every use, which costs more than hashing a short string.
const EVP_MD *fetched(const char *name) {
    EVP_MD *md = EVP_MD_fetch(nullptr, name, nullptr);
    if (!md) throw Error(ErrorKind::Internal, std::string("OpenSSL provides no ") + name);
    return md;
}

const EVP_MD *md5_md() {
    static const EVP_MD *md = fetched("MD5");
    return md;
}

const EVP_MD *sha256_md() {
    static const EVP_MD *md = fetched("SHA256");
    return md;
}

const EVP_MD *md(Digest::Algorithm algorithm) {
    return algorithm == Digest::Algorithm::Md5 ? md5_md() : sha256_md();
}

std::string one_shot(const EVP_MD *type, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, type, nullptr) != 1)
        throw Error(ErrorKind::Internal, "OpenSSL digest failed");
    return std::string(reinterpret_cast<char *>(out), len);
}

}  // namespace

std::string sha256(std::string_view data) { return one_shot(sha256_md(), data); }
std::string md5(std::string_view data) { return one_shot(md5_md(), data); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(sha256_md(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char *>(data.data()), data.size(), out, &len))
        throw Error(ErrorKind::Internal, "OpenSSL HMAC failed");
    return std::string(reinterpret_cast<char *>(out), len);
}

Digest::Digest(Algorithm algorithm) : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX *>(ctx_), md(algorithm), nullptr) != 1) {
        EVP_MD_CTX_free(static_cast<EVP_MD_CTX *>(ctx_));
        throw Error(ErrorKind::Internal, "OpenSSL digest setup failed");
    }
}

Digest::~Digest() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX *>(ctx_)); }

void Digest::update(const void *data, size_t len) {
    if (EVP_DigestUpdate(static_cast<EVP_MD_CTX *>(ctx_), data, len) != 1)
        throw Error(ErrorKind::Internal, "OpenSSL digest failed");
}

std::string Digest::finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX *>(ctx_), out, &len) != 1)
        throw Error(ErrorKind::Internal, "OpenSSL digest failed");
    return std::string(reinterpret_cast<char *>(out), len);
}

namespace {

[[noreturn]] void hash_failure() { throw Error(ErrorKind::Internal, "OpenSSL digest failed"); }

}  // namespace

struct Sha256::State {
    SHA256_CTX ctx;
};

Sha256::Sha256() : state_(new State()) {}

Sha256::~Sha256() {
    OPENSSL_cleanse(state_, sizeof *state_);  // may hold a key's padded block
    delete state_;
}

void Sha256::start() {
    if (SHA256_Init(&state_->ctx) != 1) hash_failure();
}

void Sha256::start_from(const Sha256 &saved) { *state_ = *saved.state_; }

void Sha256::update(const void *data, size_t size) {
    if (SHA256_Update(&state_->ctx, data, size) != 1) hash_failure();
}

Sha256Digest Sha256::finish() {
    Sha256Digest out;
    if (SHA256_Final(out.data(), &state_->ctx) != 1) hash_failure();
    return out;
}

Sha256Digest Sha256::digest(std::string_view data) {
    start();
    update(data);
    return finish();
}

void HmacSha256::set_key(std::string_view key) {
    Sha256Digest long_key;
    if (key.size() > kBlockSize) {  // RFC 2104: a long key is replaced by its hash
        long_key = work_.digest(key);
        key = std::string_view(reinterpret_cast<const char *>(long_key.data()), long_key.size());
    }
    unsigned char pad[kBlockSize];
    for (auto [state, fill] : {std::pair<Sha256 *, unsigned char>{&key_inner_, 0x36}, {&outer_, 0x5c}}) {
        std::memset(pad, fill, kBlockSize);
        for (size_t i = 0; i < key.size(); ++i) pad[i] ^= static_cast<unsigned char>(key[i]);
        state->start();
        state->update(pad, kBlockSize);
    }
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(long_key.data(), long_key.size());
    set_prefix({});
}

void HmacSha256::set_prefix(std::string_view prefix) {
    inner_.start_from(key_inner_);
    inner_.update(prefix);
}

Sha256Digest HmacSha256::mac(std::string_view rest) {
    work_.start_from(inner_);
    work_.update(rest);
    Sha256Digest inner_digest = work_.finish();
    work_.start_from(outer_);
    work_.update(inner_digest.data(), inner_digest.size());
    return work_.finish();
}

std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out(bytes.size() * 2, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) {
        unsigned char b = static_cast<unsigned char>(bytes[i]);
        out[2 * i] = digits[b >> 4];
        out[2 * i + 1] = digits[b & 0xF];
    }
    return out;
}

std::string base64(std::string_view bytes) {
    static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned n = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8 |
                     (unsigned char)bytes[i + 2];
        out += table[n >> 18];
        out += table[(n >> 12) & 63];
        out += table[(n >> 6) & 63];
        out += table[n & 63];
    }
    if (size_t rest = bytes.size() - i) {
        unsigned n = (unsigned char)bytes[i] << 16 | (rest == 2 ? (unsigned char)bytes[i + 1] << 8 : 0);
        out += table[n >> 18];
        out += table[(n >> 12) & 63];
        out += rest == 2 ? table[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        bool last = i + 4 == text.size();
        int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
        unsigned n = 0;
        for (int j = 0; j < 4; ++j) {
            int v = j >= 4 - pad ? 0 : value(text[i + j]);
            if (v < 0) return std::nullopt;
            n = n << 6 | static_cast<unsigned>(v);
        }
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

std::string base64url(std::string_view bytes) {
    std::string out = base64(bytes);
    while (!out.empty() && out.back() == '=') out.pop_back();
    for (char &c : out) {
        if (c == '+') c = '-';
        else if (c == '/') c = '_';
    }
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;  // lengths are not secret here
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char *>(out.data()), static_cast<int>(n)) != 1)
        throw Error(ErrorKind::Internal, "could not generate random bytes");
    return out;
}

}  // namespace so::crypto
