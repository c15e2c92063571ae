#include <gtest/gtest.h>

#include "core/crypto.hpp"

namespace crypto = so::crypto;

TEST(Crypto, KnownDigests) {
    EXPECT_EQ(crypto::hex(crypto::md5("")), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(crypto::hex(crypto::sha256("abc")),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // RFC 4231 test case 2
    EXPECT_EQ(crypto::hex(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, IncrementalDigestMatchesOneShot) {
    crypto::Digest d(crypto::Digest::Algorithm::Sha256);
    d.update("ab", 2);
    d.update("c", 1);
    EXPECT_EQ(d.finish(), crypto::sha256("abc"));
}

TEST(Crypto, Encodings) {
    EXPECT_EQ(crypto::base64(""), "");
    EXPECT_EQ(crypto::base64("f"), "Zg==");
    EXPECT_EQ(crypto::base64("fo"), "Zm8=");
    EXPECT_EQ(crypto::base64("foo"), "Zm9v");
    EXPECT_EQ(crypto::base64("\xfb\xff"), "+/8=");
    EXPECT_EQ(crypto::base64url("\xfb\xff"), "-_8");
    EXPECT_TRUE(crypto::constant_time_equal("abc", "abc"));
    EXPECT_FALSE(crypto::constant_time_equal("abc", "abd"));
    EXPECT_FALSE(crypto::constant_time_equal("abc", "ab"));
    EXPECT_EQ(crypto::random_bytes(16).size(), 16u);
}

TEST(Crypto, ReusableHmacMatchesOneShot) {
    crypto::HmacSha256 hmac;
    for (std::string key : {std::string("k"), std::string(64, 'x'), std::string(200, 'y')}) {
        hmac.set_key(key);
        for (std::string message : {"", "abc", "GET\nkey\n123"}) {
            auto digest = hmac.mac(message);
            EXPECT_EQ(std::string(reinterpret_cast<const char *>(digest.data()), digest.size()),
                      crypto::hmac_sha256(key, message));
        }
        hmac.set_prefix("GET\n");
        auto digest = hmac.mac("rest");
        EXPECT_EQ(std::string(reinterpret_cast<const char *>(digest.data()), digest.size()),
                  crypto::hmac_sha256(key, "GET\nrest"));
        hmac.set_prefix("");
    }
}
