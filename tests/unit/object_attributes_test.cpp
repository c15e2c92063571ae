#include <gtest/gtest.h>

#include <vector>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/object_attributes.hpp"
#include "core/s3_attributes.hpp"

namespace {

std::string error_of(const std::string &json) {
    try {
        so::parse_attributes(json, "attributes");
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::InvalidParameter);
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST(ObjectAttributes, ParsesFormatsAndMerges) {
    so::ObjectAttributes defaults = so::parse_attributes(
        R"({"cache_control":"max-age=60","tags":{"team":"a"},"storage_class":"STANDARD_IA"})", "option");
    so::ObjectAttributes call =
        so::parse_attributes(R"({"content_language":"de","tags":{"x":"1","b":"2"},"cache_control":null})", "call");
    EXPECT_FALSE(call.cache_control);  // null: not given
    so::ObjectAttributes merged = so::merge_attributes(defaults, call);
    EXPECT_EQ(so::format_attributes(merged),
              R"({"cache_control":"max-age=60","content_language":"de","storage_class":"STANDARD_IA","tags":{"b":"2","x":"1"}})");
    EXPECT_EQ(so::format_attributes(so::ObjectAttributes{}), "{}");
    EXPECT_TRUE(so::ObjectAttributes{}.empty());
    EXPECT_FALSE(merged.empty());
    // The value side keeps what the store reported.
    so::ObjectAttributes read = so::read_value_attributes(R"({"sse":"aws:kms","sse_kms_key_id":"k","tags":{"a":"b"}})");
    EXPECT_EQ(read.sse.value(), "aws:kms");
    EXPECT_FALSE(read.has_settable() && !read.tags);
    EXPECT_TRUE(so::read_value_attributes("not json").empty());
}

TEST(ObjectAttributes, RefusesWhatCannotBeSent) {
    EXPECT_EQ(error_of(R"({"colour":"x"})"), "unknown name \"colour\" in attributes");
    EXPECT_EQ(error_of(R"([])"), "attributes must be a JSON object, not an array");
    EXPECT_EQ(error_of(R"({"cache_control":"a\r\nX-Evil: 1"})"), "\"cache_control\" in attributes must be printable ASCII");
    EXPECT_EQ(error_of(R"({"content_disposition":"inline; filename=\"é\""})"),
              "\"content_disposition\" in attributes must be printable ASCII");
    EXPECT_EQ(error_of(R"({"storage_class":"Standard"})"),
              "\"storage_class\" in attributes must be a storage class name such as STANDARD_IA");
    EXPECT_EQ(error_of(R"({"sse_kms_key_id":"k"})"), "\"sse_kms_key_id\" in attributes is reported by the store, not set per object");
    EXPECT_EQ(error_of(R"({"tags":["a"]})"), "\"tags\" in attributes must be an object of strings, not an array");
    EXPECT_EQ(error_of(R"({"tags":{"":"v"}})"), "invalid tag key \"\"");
    EXPECT_EQ(error_of(R"({"tags":{"k":"a&b"}})"), "invalid value of tag \"k\"");
    EXPECT_EQ(error_of(R"({"tags":{"k":"\u00ff\u00ff"}})"), "no error");
    std::string ten = "{";
    for (int i = 0; i < 10; ++i) ten += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":\"v\"";
    EXPECT_EQ(error_of(R"({"tags":)" + ten + "}}"), "no error");
    // 128 characters of two bytes each: a key of 128 characters is fine.
    std::string key;
    for (int i = 0; i < 128; ++i) key += "\u00e9";
    EXPECT_EQ(error_of(R"({"tags":{")" + key + R"(":"v"}})"), "no error");
    EXPECT_NE(error_of(R"({"tags":{")" + key + R"(x":"v"}})"), "no error");
}

TEST(ObjectAttributes, TaggingIsAQueryString) {
    so::Tags tags{{"a b", "c=d"}, {"gr\xc3\xb6\xc3\x9f" "e", "x/y+z"}};
    EXPECT_EQ(so::tagging_query(tags), "a%20b=c%3Dd&gr%C3%B6%C3%9Fe=x%2Fy%2Bz");
    EXPECT_EQ(so::s3attr::parse_tagging(
                  "<Tagging><TagSet><Tag><Key>z</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>&amp;</Value></Tag>"
                  "</TagSet></Tagging>"),
              (so::Tags{{"a", "&"}, {"z", "1"}}));
}

TEST(S3Attributes, HeadersBothWays) {
    so::S3Config config;
    so::s3attr::Headers headers;
    so::s3attr::append_put_headers(so::parse_attributes(R"({"cache_control":"no-cache","storage_class":"GLACIER_IR",
        "tags":{"k":"v"}})", "a"), headers);
    EXPECT_EQ(headers, (so::s3attr::Headers{{"Cache-Control", "no-cache"}, {"x-amz-storage-class", "GLACIER_IR"},
                                            {"x-amz-tagging", "k=v"}}));
    headers.clear();
    EXPECT_THROW(so::s3attr::append_put_headers(so::parse_attributes(R"({"storage_class":"COLD"})", "a"), headers),
                 so::Error);
    config.sse = "aws:kms";
    config.sse_kms_key_id = "alias/k";
    so::s3attr::append_encryption(config, headers);
    EXPECT_EQ(headers, (so::s3attr::Headers{{"x-amz-server-side-encryption", "aws:kms"},
                                            {"x-amz-server-side-encryption-aws-kms-key-id", "alias/k"}}));
    headers.clear();
    config = {};
    config.sse_customer_key = std::string(32, 'k');
    config.sse_customer_key_md5 = so::crypto::base64(so::crypto::md5(config.sse_customer_key));
    so::s3attr::append_customer_key(config, headers, true);
    ASSERT_EQ(headers.size(), 3u);
    EXPECT_EQ(headers[0].first, "x-amz-copy-source-server-side-encryption-customer-algorithm");
    EXPECT_EQ(headers[1].second, so::crypto::base64(std::string(32, 'k')));

    so::ObjectAttributes back = so::s3attr::from_response({{"cache-control", "no-cache"},
                                                           {"x-amz-storage-class", "GLACIER_IR"},
                                                           {"x-amz-server-side-encryption", "aws:kms"},
                                                           {"x-amz-server-side-encryption-aws-kms-key-id", "arn:k"},
                                                           {"content-language", "caf\xc3\xa9"},
                                                           {"x-amz-tagging-count", "2"}});
    EXPECT_EQ(so::format_attributes(back),
              R"({"cache_control":"no-cache","sse":"aws:kms","sse_kms_key_id":"arn:k","storage_class":"GLACIER_IR"})");
    EXPECT_EQ(so::s3attr::tag_count({{"x-amz-tagging-count", "2"}}), 2);
    EXPECT_EQ(so::format_attributes(so::s3attr::from_response(
                  {{"x-amz-server-side-encryption-customer-algorithm", "AES256"}})),
              R"({"sse":"SSE-C"})");
}

TEST(Crypto, Base64DecodeIsStrict) {
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)})
        EXPECT_EQ(so::crypto::base64_decode(so::crypto::base64(s)).value(), s);
    EXPECT_FALSE(so::crypto::base64_decode("Zm9"));
    EXPECT_FALSE(so::crypto::base64_decode("Zm9v!A=="));
    EXPECT_FALSE(so::crypto::base64_decode("Zm-v"));
}

// S3 counts tag lengths in UTF-16 code units: U+1D400 counts two.
TEST(ObjectAttributes, TagLengthsAsS3CountsThem) {
    std::string wide;
    for (int i = 0; i < 64; ++i) wide += "\xf0\x9d\x90\x80";
    EXPECT_EQ(error_of(R"({"tags":{")" + wide + R"(":"v"}})"), "no error");
    EXPECT_NE(error_of(R"({"tags":{")" + wide + "\xf0\x9d\x90\x80" + R"(":"v"}})"), "no error");
}
