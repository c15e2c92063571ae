// The limit for bench/gcs_sign.sh: Google Cloud Storage V4 signed URLs
// (GET, one object each, path style), as so_sign makes them for a gs://
// backend, in a bare C++ loop with no database around it.
//
//   gcs_sign_loop MODE ENDPOINT BUCKET PREFIX CREDENTIALS COUNT EXPIRES [UNIX_TIME]
//
// MODE
//   hmac-bare  GOOG4-HMAC-SHA256, written here against Google's "V4
//          signing process with your own program" and "Signatures"
//          (cloud.google.com/storage/docs/access-control/signing-urls-manually,
//          .../authentication/signatures) and nothing of ours: the
//          canonical request
//            GET \n /BUCKET/OBJECT \n CANONICAL_QUERY \n host:HOST \n \n host \n UNSIGNED-PAYLOAD
//          (the object percent-encoded except A-Z a-z 0-9 - _ . ~ and '/';
//          the query X-Goog-Algorithm, -Credential, -Date, -Expires,
//          -SignedHeaders, names and values percent-encoded, sorted), the
//          string to sign
//            GOOG4-HMAC-SHA256 \n YYYYMMDDTHHMMSSZ \n YYYYMMDD/auto/storage/goog4_request \n hex(SHA-256(canonical request))
//          and the signature hex(HMAC-SHA256(signing key, string to sign)),
//          the signing key being the HMAC chain "GOOG4" + secret -> date ->
//          "auto" -> "storage" -> "goog4_request". OpenSSL's one-shot
//          EVP_Digest and HMAC() (the digest fetched once). What a careful
//          loop keeps across URLs is made once: the day's signing key, the
//          canonical query (the same for every URL of one signing time),
//          the percent-encoded bucket and prefix, the head of the string
//          to sign; one buffer each for the canonical request, the string
//          to sign and the URL, reused.
//   hmac-bare-pads  the same URLs, with HMAC-SHA256 resumed from SHA-256
//          states saved once (the signing key's padded blocks and the head
//          of the string to sign), OpenSSL's low-level SHA256_*, as the
//          extension's S3 signer (crypto::HmacSha256) does (diagnostic: how
//          much a cheaper HMAC would give).
//   hmac-core  the extension's own signer (src/core/gcs_signer.cpp:
//          so::gcs::HmacSigner::sign_url, compiled into this program),
//          its request made per URL as S3Store::gcs_url_request and
//          sign_gcs make it: our signer without the database (diagnostic).
//   rsa-bare   GOOG4-RSA-SHA256 from a service account key file: the same
//          canonical request with X-Goog-Credential CLIENT_EMAIL/scope, the
//          signature hex(RSASSA-PKCS1-v1_5 SHA-256(string to sign)) by
//          OpenSSL's EVP_DigestSign; the key read and parsed once, the
//          digest fetched once, one EVP_MD_CTX reused.
//   rsa-core   so::gcs::RsaSigner::sign_url (diagnostic).
//   print-MODE  print the COUNT URLs of MODE, one a line, untimed.
//
// ENDPOINT is scheme and host, e.g. http://127.0.0.1:PORT (the signed host
// is its host, lowercase, without a default port, as the backend signs
// it). PREFIX is the backend URL's path (gs://BUCKET/PREFIX), "" for none;
// object i (1..COUNT) is PREFIX/"photos/<i>/photo <i>.jpg", as in the
// other peers; keys are prepared before the clock starts. CREDENTIALS is
// ACCESS_ID:SECRET for the hmac modes and the path of a service account
// key file (JSON) for the rsa modes. Prints "rate <URLs/s>", "seconds <s>",
// "bytes <total URL bytes>" and "sample <URL of key 1>"; UNIX_TIME pins the
// signing time (default: now).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The low-level SHA256_* functions of the hmac-bare-pads mode (deprecated
// in OpenSSL 3, kept; the extension's S3 signer uses them the same way).
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "core/gcs_signer.hpp"

namespace {

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

std::string encoded(std::string_view s) {
    std::string out;
    encode(s, false, out);
    return out;
}

void append_hex(const unsigned char *bytes, size_t n, std::string &out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        out += digits[bytes[i] >> 4];
        out += digits[bytes[i] & 0xF];
    }
}

std::string utc(int64_t unix_seconds, const char *format) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, format, &tm);
    return out;
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A JSON string member of a flat object, unescaped: enough for the two
// fields of a service account key file this loop needs.
std::string json_string(const std::string &json, const std::string &name) {
    const std::string quoted = "\"" + name + "\"";
    for (size_t at = json.find(quoted); at != std::string::npos; at = json.find(quoted, at + 1)) {
        size_t p = at + quoted.size();
        while (p < json.size() && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n' || json[p] == '\r')) ++p;
        if (p >= json.size() || json[p] != ':') continue;
        ++p;
        while (p < json.size() && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n' || json[p] == '\r')) ++p;
        if (p >= json.size() || json[p] != '"') continue;
        std::string out;
        for (++p; p < json.size() && json[p] != '"'; ++p) {
            if (json[p] != '\\') {
                out += json[p];
                continue;
            }
            if (++p >= json.size()) break;
            switch (json[p]) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': throw std::runtime_error("\\u escapes in the key file are not handled here");
                default: out += json[p];  // \" \\ \/
            }
        }
        return out;
    }
    throw std::runtime_error("the service account key file has no \"" + name + "\"");
}

struct Endpoint {
    std::string scheme, host;  // host: lowercase, default port dropped
};

Endpoint parse_endpoint(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    size_t sep = url.find("://");
    if (sep == std::string::npos) throw std::runtime_error("ENDPOINT must be scheme://host[:port]");
    Endpoint e{url.substr(0, sep), url.substr(sep + 3)};
    for (char &c : e.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char &c : e.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string default_port = e.scheme == "https" ? ":443" : ":80";
    if (e.host.size() > default_port.size() &&
        e.host.compare(e.host.size() - default_port.size(), default_port.size(), default_port) == 0)
        e.host.resize(e.host.size() - default_port.size());
    return e;
}

std::string object_prefix(std::string prefix) {
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    return prefix;
}

// What both bare signers share: everything of the URL that is the same for
// every object at one signing time, made once.
class BareCommon {
public:
    BareCommon(const Endpoint &endpoint, const std::string &bucket, const std::string &prefix, const char *algorithm,
               const std::string &credential_id, int64_t expires, int64_t now) {
        const std::string date = utc(now, "%Y%m%d"), timestamp = utc(now, "%Y%m%dT%H%M%SZ");
        date_ = date;
        const std::string scope = date + "/auto/storage/goog4_request";
        // Sorted by name; these five need no re-sorting.
        query_ = "X-Goog-Algorithm=" + encoded(algorithm) + "&X-Goog-Credential=" + encoded(credential_id + "/" + scope) +
                 "&X-Goog-Date=" + encoded(timestamp) + "&X-Goog-Expires=" + std::to_string(expires) +
                 "&X-Goog-SignedHeaders=host";
        path_head_ = "/";
        encode(bucket, false, path_head_);
        path_head_ += '/';
        encode(object_prefix(prefix), true, path_head_);
        canonical_head_ = "GET\n" + path_head_;
        canonical_tail_ = "\n" + query_ + "\nhost:" + endpoint.host + "\n\nhost\nUNSIGNED-PAYLOAD";
        to_sign_head_ = std::string(algorithm) + "\n" + timestamp + "\n" + scope + "\n";
        url_head_ = endpoint.scheme + "://" + endpoint.host + path_head_;
        url_query_ = "?" + query_ + "&X-Goog-Signature=";
    }

protected:
    // canonical_ = the canonical request of key; url_ = the URL up to
    // "X-Goog-Signature=".
    void build(const std::string &key) {
        canonical_.assign(canonical_head_);
        size_t mark = canonical_.size();
        encode(key, true, canonical_);
        url_.assign(url_head_);
        url_.append(canonical_, mark, canonical_.size() - mark);  // the encoded key
        url_ += url_query_;
        canonical_ += canonical_tail_;
    }

    std::string date_, query_, path_head_, canonical_head_, canonical_tail_, to_sign_head_, url_head_, url_query_;
    std::string canonical_, to_sign_, url_;
};

class BareHmacSigner : BareCommon {
public:
    BareHmacSigner(const Endpoint &endpoint, const std::string &bucket, const std::string &prefix,
                   const std::string &access_id, const std::string &secret, int64_t expires, int64_t now, bool pads)
        : BareCommon(endpoint, bucket, prefix, "GOOG4-HMAC-SHA256", access_id, expires, now),
          sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
          pads_(pads) {
        if (!sha256_) throw std::runtime_error("OpenSSL provides no SHA256");
        // The day's signing key.
        std::string k = "GOOG4" + secret;
        for (const std::string &part : {date_, std::string("auto"), std::string("storage"), std::string("goog4_request")}) {
            unsigned char mac[EVP_MAX_MD_SIZE];
            unsigned int len = 0;
            if (!HMAC(sha256_, k.data(), static_cast<int>(k.size()), reinterpret_cast<const unsigned char *>(part.data()),
                      part.size(), mac, &len))
                throw std::runtime_error("OpenSSL HMAC failed");
            k.assign(reinterpret_cast<char *>(mac), len);
        }
        key_ = k;
        if (pads_) {
            unsigned char ipad[SHA256_CBLOCK], opad[SHA256_CBLOCK];
            for (size_t i = 0; i < sizeof ipad; ++i) {
                unsigned char b = i < key_.size() ? static_cast<unsigned char>(key_[i]) : 0;
                ipad[i] = b ^ 0x36;
                opad[i] = b ^ 0x5c;
            }
            SHA256_Init(&inner_);
            SHA256_Update(&inner_, ipad, sizeof ipad);
            SHA256_Update(&inner_, to_sign_head_.data(), to_sign_head_.size());
            SHA256_Init(&outer_);
            SHA256_Update(&outer_, opad, sizeof opad);
        }
    }
    ~BareHmacSigner() { EVP_MD_free(sha256_); }

    void sign_into(std::string &url, const std::string &key) {
        build(key);
        unsigned char digest[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(canonical_.data(), canonical_.size(), digest, &len, sha256_, nullptr) != 1)
            throw std::runtime_error("OpenSSL digest failed");
        if (pads_) {
            to_sign_.clear();
            append_hex(digest, len, to_sign_);
            SHA256_CTX ctx = inner_;
            SHA256_Update(&ctx, to_sign_.data(), to_sign_.size());
            unsigned char inner_digest[SHA256_DIGEST_LENGTH];
            SHA256_Final(inner_digest, &ctx);
            ctx = outer_;
            SHA256_Update(&ctx, inner_digest, sizeof inner_digest);
            SHA256_Final(mac, &ctx);
            len = SHA256_DIGEST_LENGTH;
        } else {
            to_sign_.assign(to_sign_head_);
            append_hex(digest, len, to_sign_);
            if (!HMAC(sha256_, key_.data(), static_cast<int>(key_.size()),
                      reinterpret_cast<const unsigned char *>(to_sign_.data()), to_sign_.size(), mac, &len))
                throw std::runtime_error("OpenSSL HMAC failed");
        }
        url.assign(url_);
        append_hex(mac, len, url);
    }

private:
    EVP_MD *sha256_;
    bool pads_;
    std::string key_;
    SHA256_CTX inner_, outer_;
};

class BareRsaSigner : BareCommon {
public:
    BareRsaSigner(const Endpoint &endpoint, const std::string &bucket, const std::string &prefix,
                  const std::string &client_email, const std::string &pem, int64_t expires, int64_t now)
        : BareCommon(endpoint, bucket, prefix, "GOOG4-RSA-SHA256", client_email, expires, now),
          sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)),
          ctx_(EVP_MD_CTX_new()) {
        if (!sha256_ || !ctx_) throw std::runtime_error("OpenSSL provides no SHA256");
        BIO *bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
        pkey_ = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
        BIO_free(bio);
        if (!pkey_ || EVP_PKEY_base_id(pkey_) != EVP_PKEY_RSA) throw std::runtime_error("private_key is not RSA");
        signature_.resize(static_cast<size_t>(EVP_PKEY_get_size(pkey_)));
    }
    ~BareRsaSigner() {
        EVP_PKEY_free(pkey_);
        EVP_MD_CTX_free(ctx_);
        EVP_MD_free(sha256_);
    }

    void sign_into(std::string &url, const std::string &key) {
        build(key);
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(canonical_.data(), canonical_.size(), digest, &len, sha256_, nullptr) != 1)
            throw std::runtime_error("OpenSSL digest failed");
        to_sign_.assign(to_sign_head_);
        append_hex(digest, len, to_sign_);
        size_t length = signature_.size();
        if (EVP_MD_CTX_reset(ctx_) != 1 || EVP_DigestSignInit(ctx_, nullptr, sha256_, nullptr, pkey_) != 1 ||
            EVP_DigestSign(ctx_, signature_.data(), &length, reinterpret_cast<const unsigned char *>(to_sign_.data()),
                           to_sign_.size()) != 1)
            throw std::runtime_error("RSA signing failed");
        url.assign(url_);
        append_hex(signature_.data(), length, url);
    }

private:
    EVP_MD *sha256_;
    EVP_MD_CTX *ctx_;
    EVP_PKEY *pkey_ = nullptr;
    std::vector<unsigned char> signature_;
};

// Our signer, its request made as S3Store::gcs_url_request and sign_gcs
// make it for every URL.
template <class GcsSigner>
class CoreSigner {
public:
    template <class... Args>
    CoreSigner(const Endpoint &endpoint, const std::string &bucket, const std::string &prefix, int64_t expires,
               int64_t now, Args &&...args)
        : signer_(std::forward<Args>(args)...),
          endpoint_(endpoint),
          bucket_(bucket),
          prefix_(object_prefix(prefix)),
          expires_(expires),
          now_(now) {}

    void sign_into(std::string &url, const std::string &key) {
        so::gcs::UrlRequest r;
        r.bucket = bucket_;
        r.object = prefix_ + key;
        r.unix_seconds = now_;
        r.expires_in = expires_;
        r.scheme = endpoint_.scheme;
        r.host = endpoint_.host;
        r.style = so::gcs::UrlStyle::PathStyle;
        r.method = "GET";
        url = signer_.sign_url(r);
    }

private:
    GcsSigner signer_;
    Endpoint endpoint_;
    std::string bucket_, prefix_;
    int64_t expires_, now_;
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
                     "usage: %s hmac-bare|hmac-bare-pads|hmac-core|rsa-bare|rsa-core|print-MODE ENDPOINT BUCKET PREFIX "
                     "CREDENTIALS COUNT EXPIRES [UNIX_TIME]\n",
                     argv[0]);
        return 2;
    }
    try {
        std::string mode = argv[1];
        const bool print = mode.compare(0, 6, "print-") == 0;
        if (print) mode.erase(0, 6);
        const Endpoint endpoint = parse_endpoint(argv[2]);
        const std::string bucket = argv[3], prefix = argv[4], credentials = argv[5];
        const long count = std::strtol(argv[6], nullptr, 10);
        const int64_t expires = std::strtoll(argv[7], nullptr, 10);
        const int64_t now = argc == 9 ? std::strtoll(argv[8], nullptr, 10) : static_cast<int64_t>(std::time(nullptr));
        if (count < 1) throw std::runtime_error("COUNT must be positive");

        std::vector<std::string> keys;
        keys.reserve(static_cast<size_t>(count));
        for (long i = 1; i <= count; ++i)
            keys.push_back("photos/" + std::to_string(i) + "/photo " + std::to_string(i) + ".jpg");

        if (mode.compare(0, 5, "hmac-") == 0) {
            size_t colon = credentials.find(':');
            if (colon == std::string::npos) throw std::runtime_error("hmac modes take ACCESS_ID:SECRET");
            const std::string id = credentials.substr(0, colon), secret = credentials.substr(colon + 1);
            if (mode == "hmac-bare" || mode == "hmac-bare-pads") {
                BareHmacSigner signer(endpoint, bucket, prefix, id, secret, expires, now, mode == "hmac-bare-pads");
                return run(signer, keys, print);
            }
            if (mode == "hmac-core") {
                CoreSigner<so::gcs::HmacSigner> signer(endpoint, bucket, prefix, expires, now, id, secret);
                return run(signer, keys, print);
            }
        } else if (mode == "rsa-bare") {
            const std::string json = read_file(credentials);
            BareRsaSigner signer(endpoint, bucket, prefix, json_string(json, "client_email"),
                                 json_string(json, "private_key"), expires, now);
            return run(signer, keys, print);
        } else if (mode == "rsa-core") {
            // As S3Store::gcs_signed_url: the key file parsed by the extension.
            CoreSigner<so::gcs::RsaSigner> signer(endpoint, bucket, prefix, expires, now,
                                                  so::gcs::parse_service_account(read_file(credentials)));
            return run(signer, keys, print);
        }
        throw std::runtime_error("MODE must be hmac-bare, hmac-bare-pads, hmac-core, rsa-bare, rsa-core or print-MODE");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "gcs_sign_loop: %s\n", e.what());
        return 1;
    }
}
