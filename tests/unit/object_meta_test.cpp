#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/object_meta.hpp"
#include "core/packed_meta.hpp"

using so::Error;
using so::ErrorKind;

namespace {

std::string error_of(const std::string &text) {
    try {
        so::parse_object_meta(text);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidTextRepresentation);
        return e.what();
    }
    return "no error";
}

// What advanced-alchemy's FileObject.to_dict() writes, in its versions.
const char *kAdvancedAlchemy =
    R"({"filename": "docs/report.pdf", "content_type": "application/pdf", "size": 1024,
        "path": "docs/report.pdf", "protocol": "file", "last_modified": 1700000000.123456,
        "checksum": "abc", "etag": "\"e1\"", "version_id": null,
        "metadata": {"owner": {"id": 7, "tags": ["a", "b"]}}, "extra": {}, "backend": "local"})";

}  // namespace

TEST(ObjectMeta, ReadsAdvancedAlchemyDict) {
    so::ObjectMeta m = so::parse_object_meta(kAdvancedAlchemy);
    EXPECT_EQ(m.backend, "local");
    EXPECT_EQ(m.filename, "docs/report.pdf");
    EXPECT_EQ(m.content_type.value(), "application/pdf");
    EXPECT_EQ(m.size.value(), 1024);
    EXPECT_DOUBLE_EQ(m.last_modified.value(), 1700000000.123456);
    EXPECT_EQ(m.etag.value(), "\"e1\"");
    EXPECT_FALSE(m.version_id.has_value());
    EXPECT_EQ(m.metadata, R"({"owner":{"id":7,"tags":["a","b"]}})");
}

TEST(ObjectMeta, CanonicalOutputIsAFixedPoint) {
    std::string once = so::format_object_meta(so::parse_object_meta(kAdvancedAlchemy));
    EXPECT_EQ(once,
              R"({"backend":"local","filename":"docs/report.pdf","content_type":"application/pdf",)"
              R"("size":1024,"last_modified":1700000000.123456,"checksum":"abc","etag":"\"e1\"",)"
              R"("version_id":null,"metadata":{"owner":{"id":7,"tags":["a","b"]}}})");
    EXPECT_EQ(so::format_object_meta(so::parse_object_meta(once)), once);
}

TEST(ObjectMeta, MinimalValue) {
    so::ObjectMeta m = so::parse_object_meta(R"({"backend":"b","filename":"f"})");
    EXPECT_EQ(so::format_object_meta(m),
              R"({"backend":"b","filename":"f","content_type":null,"size":null,"last_modified":null,)"
              R"("checksum":null,"etag":null,"version_id":null,"metadata":{}})");
}

TEST(ObjectMeta, ErrorsNameWhatIsWrong) {
    EXPECT_EQ(error_of("[]"), "stored_object must be a JSON object, not an array");
    EXPECT_EQ(error_of(R"({"filename":"f"})"), "stored_object needs a \"backend\"");
    EXPECT_EQ(error_of(R"({"backend":"","filename":"f"})"), "stored_object key \"backend\" must not be empty");
    EXPECT_EQ(error_of(R"({"backend":"b"})"), "stored_object needs a \"filename\"");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":7})"),
              "stored_object key \"filename\" must be a string, not a number");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","size":-1})"),
              "stored_object key \"size\" must not be negative");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","size":1.5})"),
              "stored_object key \"size\" must be a whole number of bytes below 2^63");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","size":"1"})"),
              "stored_object key \"size\" must be a number or null, not a string");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","etag":1})"),
              "stored_object key \"etag\" must be a string or null, not a number");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","metadata":[]})"),
              "stored_object key \"metadata\" must be an object or null, not an array");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","last_modified":"2024-01-01"})"),
              "stored_object key \"last_modified\" must be a number (seconds since the epoch) or null, not a string");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","colour":"red"})"),
              "unknown key \"colour\" in stored_object");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","path":"g"})"),
              "stored_object keys \"path\" and \"filename\" differ");
    EXPECT_EQ(error_of(R"({"backend":"b","filename":"f","extra":{"x":1}})"),
              "stored_object key \"extra\" must be empty");
}

TEST(ObjectMeta, MissingBackendHintShowsTheConversion) {
    try {
        so::parse_object_meta(R"({"filename":"f"})");
        FAIL();
    } catch (const Error &e) {
        EXPECT_NE(e.hint().find("so_from_json"), std::string::npos);
    }
}

TEST(PackedMeta, RoundTripsEveryField) {
    so::ObjectMeta m = so::parse_object_meta(kAdvancedAlchemy);
    std::string buf(so::packed_size(m), '\0');
    so::pack(m, buf.data());
    so::PackedView v;
    ASSERT_TRUE(so::unpack(buf.data(), buf.size(), &v));
    EXPECT_EQ(so::format_object_meta(so::to_object_meta(v)), so::format_object_meta(m));
    EXPECT_FALSE(so::unpack(buf.data(), buf.size() - 1, &v));
    EXPECT_FALSE(so::unpack(buf.data(), 3, &v));
}

TEST(PackedMeta, IdentityOrder) {
    auto packed = [](const std::string &text) {
        so::ObjectMeta m = so::parse_object_meta(text);
        std::string buf(so::packed_size(m), '\0');
        so::pack(m, buf.data());
        return buf;
    };
    auto cmp = [&](const std::string &a, const std::string &b) {
        std::string pa = packed(a), pb = packed(b);
        so::PackedView va, vb;
        EXPECT_TRUE(so::unpack(pa.data(), pa.size(), &va));
        EXPECT_TRUE(so::unpack(pb.data(), pb.size(), &vb));
        return so::compare_identity(va, vb);
    };
    // Size and metadata are not part of the identity.
    EXPECT_EQ(cmp(R"({"backend":"b","filename":"f","size":1})", R"({"backend":"b","filename":"f","size":2})"), 0);
    EXPECT_LT(cmp(R"({"backend":"a","filename":"z"})", R"({"backend":"b","filename":"a"})"), 0);
    EXPECT_LT(cmp(R"({"backend":"b","filename":"a"})", R"({"backend":"b","filename":"\u00e9"})"), 0);
    EXPECT_LT(cmp(R"({"backend":"b","filename":"f"})", R"({"backend":"b","filename":"f","version_id":""})"), 0);
    EXPECT_GT(cmp(R"({"backend":"b","filename":"f","version_id":"2"})",
                  R"({"backend":"b","filename":"f","version_id":"1"})"), 0);
}

// A value without attributes is packed exactly as before 0.3.0 (format 1);
// one with attributes uses format 2; both read back.
TEST(PackedMeta, AttributesOnlyInFormatTwo) {
    so::ObjectMeta plain = so::parse_object_meta(R"({"backend":"b","filename":"f","size":3})");
    std::string p1(so::packed_size(plain), '\0');
    so::pack(plain, p1.data());
    EXPECT_EQ(p1[0], 1);
    so::ObjectMeta with = so::parse_object_meta(
        R"({"backend":"b","filename":"f","size":3,"attributes":{"tags":{"k":"v"},"cache_control":"no-store"}})");
    EXPECT_EQ(with.attributes, R"({"cache_control":"no-store","tags":{"k":"v"}})");
    std::string p2(so::packed_size(with), '\0');
    so::pack(with, p2.data());
    EXPECT_EQ(p2[0], 2);
    so::PackedView v;
    ASSERT_TRUE(so::unpack(p1.data(), p1.size(), &v));
    EXPECT_EQ(v.attributes, "{}");
    ASSERT_TRUE(so::unpack(p2.data(), p2.size(), &v));
    EXPECT_EQ(v.attributes, with.attributes);
    EXPECT_EQ(so::format_object_meta(so::to_object_meta(v)), so::format_object_meta(with));
    EXPECT_FALSE(so::unpack(p2.data(), p2.size() - 1, &v));
    p2[0] = 3;  // an unknown format
    EXPECT_FALSE(so::unpack(p2.data(), p2.size(), &v));
    // Text form: "attributes" only when there are some.
    EXPECT_EQ(so::format_object_meta(plain).find("attributes"), std::string::npos);
}
