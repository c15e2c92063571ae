// Values a store reports become stored_objects only once they are safe:
// what the XML reader accepts, what sanitize_from_store keeps, and numbers
// jsonb could not hold.

#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "core/object_meta.hpp"
#include "core/s3_xml.hpp"

namespace {

using so::Error;
using so::ErrorKind;

std::string key_xml(const std::string &inner) { return "<Contents><Key>" + inner + "</Key></Contents>"; }

TEST(StoreValues, XmlCharacterReferencesAreChecked) {
    EXPECT_EQ(so::s3xml::text(key_xml("a&#x41;&#66;&amp;&lt;"), "Key"), "aAB&<");
    EXPECT_EQ(so::s3xml::text(key_xml("&#x1F600;"), "Key"), "\xF0\x9F\x98\x80");
    for (const char *bad : {"&#0;", "&#x0;", "&#xD800;", "&#xDFFF;", "&#55296;", "&#x110000;", "&#1114112;",
                            "&#xFFFFFFFFFF;", "&#;", "&#x;", "&#12a;"}) {
        try {
            so::s3xml::text(key_xml(std::string("k") + bad), "Key");
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::Io) << bad;
            EXPECT_NE(std::string(e.what()).find("invalid XML"), std::string::npos) << e.what();
        }
    }
}

TEST(StoreValues, XmlTextMustBeUtf8) {
    for (const char *bad : {"\xff", "\xc3", "\xed\xa0\x80" /* a surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                            "\xc0\xaf" /* overlong */}) {
        EXPECT_THROW(so::s3xml::text(key_xml(std::string("k") + bad), "Key"), Error) << bad;
    }
}

so::ObjectMeta listed(const std::string &key) {
    so::ObjectMeta meta;
    meta.backend = "b";
    meta.filename = key;
    meta.size = 3;
    meta.etag = "abc";
    return meta;
}

TEST(StoreValues, KeysWithControlCharactersOrBadUtf8AreRefused) {
    for (std::string bad : {std::string("a\nb"), std::string("a\rb"), std::string("a\x01"), std::string("a\x7f"),
                            std::string("nul\0x", 5), std::string("\xff"), std::string("\xed\xa0\x80")}) {
        so::ObjectMeta meta = listed(bad);
        try {
            so::sanitize_from_store(meta);
            ADD_FAILURE() << "accepted a key with byte " << static_cast<int>(static_cast<unsigned char>(bad[1]));
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::Io);
            // The message itself stays one valid line.
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        }
    }
}

TEST(StoreValues, EtagsAndVersionsWithControlCharactersAreRefused) {
    so::ObjectMeta meta = listed("k");
    meta.etag = "abc\r\nSet-Cookie: x";
    EXPECT_THROW(so::sanitize_from_store(meta), Error);
    meta = listed("k");
    meta.version_id = std::string("v\0", 2);
    EXPECT_THROW(so::sanitize_from_store(meta), Error);
    meta = listed("k");
    meta.size = -1;
    EXPECT_THROW(so::sanitize_from_store(meta), Error);
}

TEST(StoreValues, BadContentTypesAndMetadataAreDropped) {
    so::ObjectMeta meta = listed("k");
    meta.content_type = "text/plain\r\nX-Injected: 1";
    meta.metadata = "{\"a\": 1e131072}";
    so::sanitize_from_store(meta);
    EXPECT_FALSE(meta.content_type.has_value());
    EXPECT_EQ(meta.metadata, "{}");
    // What remains reads back through the type's input: pg_dump restores it.
    so::ObjectMeta again = so::parse_object_meta(so::format_object_meta(meta));
    EXPECT_EQ(again.filename, "k");
    EXPECT_EQ(again.etag, meta.etag);

    meta = listed("ok/ünï 😀.txt");
    meta.content_type = "text/plain; charset=utf-8";
    so::sanitize_from_store(meta);
    EXPECT_EQ(meta.content_type, "text/plain; charset=utf-8");
    EXPECT_EQ(so::parse_object_meta(so::format_object_meta(meta)).filename, "ok/ünï 😀.txt");
}

TEST(StoreValues, MediaTypes) {
    for (const char *good : {"text/plain", "application/vnd.api+json", "text/html; charset=utf-8",
                             "multipart/form-data; boundary=\"a b\""})
        EXPECT_TRUE(so::valid_media_type(good)) << good;
    for (const char *bad : {"", "text", "text/", "/plain", "text/plain\r\nSet-Cookie: y=2", "text/pläin",
                            "text/plain\x01", "te xt/plain"})
        EXPECT_FALSE(so::valid_media_type(bad)) << bad;
    EXPECT_FALSE(so::valid_media_type(std::string("text/") + std::string(300, 'a')));
}

TEST(StoreValues, NumbersJsonbCannotHoldAreRefusedAtInput) {
    auto value = [](const std::string &n) {
        return "{\"backend\":\"b\",\"filename\":\"f\",\"metadata\":{\"n\":" + n + "}}";
    };
    // numeric (and so jsonb) holds 131072 digits before the point, 16383 after.
    for (const char *bad : {"1e131072", "1e200000", "1e-16384", "0.1e-16383", "123e131070"})
        EXPECT_THROW(so::parse_object_meta(value(bad)), Error) << bad;
    for (const char *good : {"1e1001", "1e131071", "1e-16383", "0e999999", "-1.5e-16382"})
        EXPECT_NO_THROW(so::parse_object_meta(value(good))) << good;
}

}  // namespace
