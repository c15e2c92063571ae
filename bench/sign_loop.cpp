// The limit for bench/s3_sign.sh: presigned GET URLs from our own SigV4
// signer (src/core/sigv4.hpp) in a bare C++ loop, with no database around
// it. One Signer (it keeps the signing key of the day and the text that
// depends only on the request time), one URL buffer reused through
// presign_into, keys prepared before the clock starts.
//
//   sign_loop ENDPOINT BUCKET ACCESS_KEY SECRET_KEY REGION COUNT EXPIRES [UNIX_TIME]
//
// Key i (1..COUNT) is "photos/<i>/photo <i>.jpg", as in the other peers.
// Prints "rate <URLs/s>", "seconds <s>", "bytes <total URL bytes>" and
// "sample <URL of key 1>"; UNIX_TIME pins the signing time (default: now).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sigv4.hpp"

int main(int argc, char **argv) {
    if (argc != 8 && argc != 9) {
        std::fprintf(stderr,
                     "usage: %s ENDPOINT BUCKET ACCESS_KEY SECRET_KEY REGION COUNT EXPIRES [UNIX_TIME]\n",
                     argv[0]);
        return 2;
    }
    try {
        namespace sigv4 = so::sigv4;
        const std::string bucket = argv[2];
        const long count = std::strtol(argv[6], nullptr, 10);
        const int64_t expires = std::strtoll(argv[7], nullptr, 10);
        const int64_t now = argc == 9 ? std::strtoll(argv[8], nullptr, 10) : static_cast<int64_t>(std::time(nullptr));
        if (count < 1) throw std::runtime_error("COUNT must be positive");

        sigv4::Signer signer(sigv4::Credentials{argv[3], argv[4], ""}, argv[5]);
        const sigv4::Endpoint endpoint = sigv4::Endpoint::parse(argv[1]);

        std::vector<std::string> keys;
        keys.reserve(static_cast<size_t>(count));
        for (long i = 1; i <= count; ++i)
            keys.push_back("photos/" + std::to_string(i) + "/photo " + std::to_string(i) + ".jpg");

        // Warm-up: derives the signing key and sizes the buffers.
        std::string url;
        signer.presign_into(url, "GET", sigv4::s3_target(endpoint, sigv4::AddressingStyle::Path, bucket, keys[0]),
                            expires, now);
        const std::string sample = url;

        size_t bytes = 0;
        auto t0 = std::chrono::steady_clock::now();
        for (const std::string &key : keys) {
            sigv4::Target target = sigv4::s3_target(endpoint, sigv4::AddressingStyle::Path, bucket, key);
            signer.presign_into(url, "GET", target, expires, now);
            bytes += url.size();  // keeps the work observable
        }
        auto t1 = std::chrono::steady_clock::now();
        double seconds = std::chrono::duration<double>(t1 - t0).count();
        std::printf("rate %.0f\nseconds %.6f\nbytes %zu\nsample %s\n", static_cast<double>(count) / seconds, seconds,
                    bytes, sample.c_str());
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "sign_loop: %s\n", e.what());
        return 1;
    }
}
