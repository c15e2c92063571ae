#include <gtest/gtest.h>

#include <random>

#include "core/error.hpp"
#include "core/json.hpp"

using so::Error;
using so::ErrorKind;
namespace json = so::json;

namespace {

std::string canonical(const std::string &text) { return json::write(json::parse(text)); }

std::string error_of(const std::string &text) {
    try {
        json::parse(text);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidTextRepresentation);
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST(Json, CanonicalFormSortsKeysAndDropsWhitespace) {
    EXPECT_EQ(canonical(" { \"b\" : [1, 2.50, -3e2], \"a\": {\"y\": null, \"x\": true} } "),
              "{\"a\":{\"x\":true,\"y\":null},\"b\":[1,2.50,-3e2]}");
}

TEST(Json, DuplicateKeysLastWinsLikeJsonb) {
    EXPECT_EQ(canonical("{\"a\":1,\"b\":2,\"a\":3}"), "{\"a\":3,\"b\":2}");
}

TEST(Json, StringEscapesRoundTrip) {
    EXPECT_EQ(canonical("[\"\\u00e9\\n\\t\\\"\\\\\\/\\u001f\"]"), "[\"\xc3\xa9\\n\\t\\\"\\\\/\\u001f\"]");
    // A surrogate pair becomes one 4-byte UTF-8 character.
    EXPECT_EQ(canonical("[\"\\ud83d\\ude00\"]"), "[\"\xf0\x9f\x98\x80\"]");
    EXPECT_EQ(canonical("[\"\xf0\x9f\x98\x80\"]"), "[\"\xf0\x9f\x98\x80\"]");
}

TEST(Json, RejectsMalformedInputWithPosition) {
    EXPECT_EQ(error_of("{\"a\":1,}"), "malformed JSON at byte 7: expected a string as object key");
    EXPECT_EQ(error_of(""), "malformed JSON at byte 0: unexpected end of input");
    EXPECT_EQ(error_of("{} x"), "malformed JSON at byte 3: unexpected data after the JSON value");
    EXPECT_EQ(error_of("[01]"), "malformed JSON at byte 2: expected ',' or ']' in array");
    EXPECT_EQ(error_of("[1.]"), "malformed JSON at byte 3: invalid number");
    EXPECT_EQ(error_of("\"abc"), "malformed JSON at byte 4: unterminated string");
    EXPECT_EQ(error_of("[tru]"), "malformed JSON at byte 1: invalid literal");
}

TEST(Json, RejectsNulAndBadUnicode) {
    EXPECT_EQ(error_of("[\"a\\u0000\"]"), "malformed JSON at byte 3: \\u0000 (NUL) is not allowed");
    EXPECT_EQ(error_of(std::string("[\"a\0\"]", 6)), "malformed JSON at byte 3: NUL byte is not allowed");
    EXPECT_EQ(error_of("[\"\\ud800\"]"), "malformed JSON at byte 2: unpaired UTF-16 surrogate in \\u escape");
    EXPECT_EQ(error_of("[\"\xc3\"]"), "malformed JSON at byte 2: invalid UTF-8 byte sequence");
    EXPECT_EQ(error_of("[\"\xed\xa0\x80\"]"), "malformed JSON at byte 2: invalid UTF-8 byte sequence");
    EXPECT_EQ(error_of("[\"\xc0\xaf\"]"), "malformed JSON at byte 2: invalid UTF-8 byte sequence");
    EXPECT_EQ(error_of("[\"a\tb\"]"), "malformed JSON at byte 3: unescaped control character in string");
}

TEST(Json, DeepNestingIsAnErrorNotACrash) {
    std::string deep(100000, '[');
    EXPECT_NE(error_of(deep).find("nesting deeper than"), std::string::npos);
    std::string ok(json::kMaxDepth, '[');
    ok += std::string(json::kMaxDepth, ']');
    EXPECT_EQ(canonical(ok), ok);
}

TEST(Json, NumbersAsIntegersAndDoubles) {
    EXPECT_EQ(json::as_int64(json::parse("9223372036854775807")).value(), INT64_MAX);
    EXPECT_FALSE(json::as_int64(json::parse("9223372036854775808")).has_value());
    EXPECT_FALSE(json::as_int64(json::parse("1.5")).has_value());
    EXPECT_DOUBLE_EQ(json::as_double(json::parse("1700000000.123456")).value(), 1700000000.123456);
    EXPECT_FALSE(json::as_double(json::parse("1e999")).has_value());
    EXPECT_EQ(json::format_double(1700000000.123456), "1700000000.123456");
    EXPECT_EQ(json::format_double(0.1), "0.1");
}

// Whatever the bytes, parse either returns or throws our error.
TEST(Json, RandomBytesNeverCrash) {
    std::mt19937 rng(42);
    const std::string alphabet = "{}[]\",:\\u0123456789abcdefnulltrue-+.eE \t\n\x01\x80\xc3\xff";
    for (int i = 0; i < 20000; ++i) {
        std::string s;
        int len = rng() % 40;
        for (int j = 0; j < len; ++j) s += alphabet[rng() % alphabet.size()];
        try {
            std::string once = json::write(json::parse(s));
            EXPECT_EQ(json::write(json::parse(once)), once) << s;  // canonical is a fixed point
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidTextRepresentation);
        }
    }
}
