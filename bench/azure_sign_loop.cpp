// The limit for bench/azure_sign.sh: Azure service SAS URLs for one blob
// each (sr=b, read, no start time), as so_sign makes them for an Azure
// backend, in a bare C++ loop with no database around it.
//
//   azure_sign_loop MODE ENDPOINT ACCOUNT ACCOUNT_KEY CONTAINER COUNT EXPIRES [UNIX_TIME]
//
// MODE
//   bare   written here, against Microsoft's "Create a service SAS" (version
//          2020-12-06 and later) and nothing of ours: the string to sign
//          (sp, st, se, /blob/ACCOUNT/CONTAINER/BLOB, si, sip, spr, sv, sr,
//          snapshot time, encryption scope, rscc, rscd, rsce, rscl, rsct,
//          joined by '\n'), HMAC-SHA256 with the decoded account key by
//          OpenSSL's one-shot HMAC() (the digest fetched once), base64,
//          and the query sv=2021-08-06&spr=...&se=...&sr=b&sp=r&sig=...
//          with every value percent-encoded except A-Z a-z 0-9 - _ . ~
//          (the blob name likewise, '/' kept). One string-to-sign buffer
//          and one URL buffer reused; the expiry text made once (every URL
//          of the loop has the same signing time, as in one so_sign
//          statement).
//   bare-pads  the same URLs, HMAC-SHA256 computed from SHA-256 states
//          saved once: the key's padded blocks and the text every string
//          to sign of the loop begins with (permissions, expiry,
//          "/blob/ACCOUNT/CONTAINER/"), as the extension's S3 signer
//          (crypto::HmacSha256) does; OpenSSL's low-level SHA256_*
//          (diagnostic: how much a cheaper HMAC would give).
//   core   the extension's own SAS code (src/core/azure_auth.cpp:
//          so::azure::SasSigner, as so_sign uses it, compiled into this program), the URL
//          put together as AzureStore::sign does: our signer without the
//          database (diagnostic).
//   print-bare, print-bare-pads, print-core  print the COUNT URLs, one a line, untimed.
//
// ENDPOINT is path style, e.g. http://127.0.0.1:PORT/devstoreaccount1
// (spr=https,http for an http:// endpoint, else https, as the backend
// does). Key i (1..COUNT) is "photos/<i>/photo <i>.jpg", as in the other
// peers; keys are prepared before the clock starts. Prints "rate
// <URLs/s>", "seconds <s>", "bytes <total URL bytes>" and "sample <URL of
// key 1>"; UNIX_TIME pins the signing time (default: now).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The low-level SHA256_* functions of the bare-pads mode (deprecated in
// OpenSSL 3, kept; the extension's S3 signer uses them the same way).
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "core/azure_auth.hpp"

namespace {

constexpr const char *kVersion = "2021-08-06";

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

void encode(std::string_view s, bool keep_slash, std::string &out) {
    static const char digits[] = "0123456789ABCDEF";
    for (unsigned char c : s) {
        if (unreserved(c) || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 0xF];
        }
    }
}

std::string iso8601(int64_t unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

std::string base64_decode(const std::string &text) {
    std::string out(text.size() / 4 * 3 + 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(&out[0]),
                            reinterpret_cast<const unsigned char *>(text.data()), static_cast<int>(text.size()));
    if (n < 0 || text.size() % 4) throw std::runtime_error("the account key is not base64");
    size_t pad = text.size() >= 2 ? (text[text.size() - 1] == '=') + (text[text.size() - 2] == '=') : 0;
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

// The bare signer: the account key, the digest and the text that is the
// same for every URL, prepared once.
class BareSigner {
public:
    BareSigner(const std::string &base_url, const std::string &account, const std::string &key_base64,
               const std::string &container, const std::string &protocol, int64_t expiry, bool pads)
        : key_(base64_decode(key_base64)), sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), pads_(pads) {
        if (!sha256_) throw std::runtime_error("OpenSSL provides no SHA256");
        const std::string se = iso8601(expiry);
        head_ = std::string("r\n\n") + se + "\n/blob/" + account + "/" + container + "/";
        // si, sip, spr, sv, sr, snapshot time, encryption scope, rscc,
        // rscd, rsce, rscl, then rsct without a newline.
        tail_ = std::string("\n\n\n") + protocol + "\n" + kVersion + "\nb\n\n\n\n\n\n\n";
        prefix_ = base_url + "/" + container + "/";
        query_ = "?sv=";
        encode(kVersion, false, query_);
        query_ += "&spr=";
        encode(protocol, false, query_);
        query_ += "&se=";
        encode(se, false, query_);
        query_ += "&sr=b&sp=r&sig=";
        if (pads_) {
            unsigned char block[SHA256_CBLOCK] = {};
            if (key_.size() > sizeof block)
                SHA256(reinterpret_cast<const unsigned char *>(key_.data()), key_.size(), block);
            else
                std::memcpy(block, key_.data(), key_.size());
            unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
            for (size_t i = 0; i < sizeof block; ++i) {
                ipad[i] = block[i] ^ 0x36;
                opad[i] = block[i] ^ 0x5c;
            }
            SHA256_Init(&inner_);
            SHA256_Update(&inner_, ipad, sizeof ipad);
            SHA256_Update(&inner_, head_.data(), head_.size());
            SHA256_Init(&outer_);
            SHA256_Update(&outer_, opad, sizeof opad);
        }
    }
    ~BareSigner() { EVP_MD_free(sha256_); }

    void sign_into(std::string &url, const std::string &blob) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (pads_) {
            SHA256_CTX ctx = inner_;
            SHA256_Update(&ctx, blob.data(), blob.size());
            SHA256_Update(&ctx, tail_.data(), tail_.size());
            unsigned char inner_digest[SHA256_DIGEST_LENGTH];
            SHA256_Final(inner_digest, &ctx);
            ctx = outer_;
            SHA256_Update(&ctx, inner_digest, sizeof inner_digest);
            SHA256_Final(mac, &ctx);
            len = SHA256_DIGEST_LENGTH;
        } else {
            to_sign_.assign(head_);
            to_sign_ += blob;
            to_sign_ += tail_;
            if (!HMAC(sha256_, key_.data(), static_cast<int>(key_.size()),
                      reinterpret_cast<const unsigned char *>(to_sign_.data()), to_sign_.size(), mac, &len))
                throw std::runtime_error("OpenSSL HMAC failed");
        }
        unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
        int n = EVP_EncodeBlock(b64, mac, static_cast<int>(len));
        url.assign(prefix_);
        encode(blob, true, url);
        url += query_;
        encode(std::string_view(reinterpret_cast<char *>(b64), static_cast<size_t>(n)), false, url);
    }

private:
    std::string key_;
    EVP_MD *sha256_;
    bool pads_;
    SHA256_CTX inner_, outer_;
    std::string head_, tail_, prefix_, query_, to_sign_;
};

// Our signer, as AzureStore::sign uses it.
class CoreSigner {
public:
    CoreSigner(const std::string &base_url, const std::string &account, const std::string &key_base64,
               const std::string &container, const std::string &protocol, int64_t expiry)
        : key_(account, key_base64), base_url_(base_url) {
        sas_.permissions = "r";
        sas_.expiry = expiry;
        sas_.container = container;
        sas_.protocol = protocol;
    }
    void sign_into(std::string &url, const std::string &blob) {
        sas_.blob = blob;
        url.clear();
        url += base_url_;
        url += '/';
        url += sas_.container;
        url += '/';
        encode(blob, true, url);
        url += '?';
        signer_.append_query(url, sas_);
    }

private:
    so::azure::SharedKey key_;
    so::azure::SasSigner signer_{key_};
    std::string base_url_;
    so::azure::BlobSas sas_;
};

template <class Signer>
int run(Signer &signer, const std::vector<std::string> &keys, bool print) {
    std::string url;
    if (print) {
        for (const std::string &key : keys) {
            signer.sign_into(url, key);
            std::printf("%s\n", url.c_str());
        }
        return 0;
    }
    signer.sign_into(url, keys[0]);  // warm-up: sizes the buffers
    const std::string sample = url;
    size_t bytes = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (const std::string &key : keys) {
        signer.sign_into(url, key);
        bytes += url.size();  // keeps the work observable
    }
    auto t1 = std::chrono::steady_clock::now();
    double seconds = std::chrono::duration<double>(t1 - t0).count();
    std::printf("rate %.0f\nseconds %.6f\nbytes %zu\nsample %s\n", static_cast<double>(keys.size()) / seconds, seconds,
                bytes, sample.c_str());
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9) {
        std::fprintf(stderr,
                     "usage: %s bare|bare-pads|core|print-MODE ENDPOINT ACCOUNT ACCOUNT_KEY CONTAINER COUNT EXPIRES "
                     "[UNIX_TIME]\n",
                     argv[0]);
        return 2;
    }
    try {
        const std::string mode = argv[1];
        std::string base_url = argv[2];
        while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
        const long count = std::strtol(argv[6], nullptr, 10);
        const int64_t expires = std::strtoll(argv[7], nullptr, 10);
        const int64_t now = argc == 9 ? std::strtoll(argv[8], nullptr, 10) : static_cast<int64_t>(std::time(nullptr));
        if (count < 1) throw std::runtime_error("COUNT must be positive");
        const std::string protocol = base_url.compare(0, 8, "https://") == 0 ? "https" : "https,http";

        std::vector<std::string> keys;
        keys.reserve(static_cast<size_t>(count));
        for (long i = 1; i <= count; ++i)
            keys.push_back("photos/" + std::to_string(i) + "/photo " + std::to_string(i) + ".jpg");

        if (mode == "bare" || mode == "print-bare" || mode == "bare-pads" || mode == "print-bare-pads") {
            bool pads = mode == "bare-pads" || mode == "print-bare-pads";
            BareSigner signer(base_url, argv[3], argv[4], argv[5], protocol, now + expires, pads);
            return run(signer, keys, mode.compare(0, 6, "print-") == 0);
        }
        if (mode == "core" || mode == "print-core") {
            CoreSigner signer(base_url, argv[3], argv[4], argv[5], protocol, now + expires);
            return run(signer, keys, mode == "print-core");
        }
        throw std::runtime_error("MODE must be bare, bare-pads, core or print- and one of them");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "azure_sign_loop: %s\n", e.what());
        return 1;
    }
}
