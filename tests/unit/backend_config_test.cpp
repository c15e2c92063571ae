#include <gtest/gtest.h>

#include "core/backend_config.hpp"
#include "core/error.hpp"
#include "core/json.hpp"

using so::BackendConfig;
using so::Error;
using so::ErrorKind;

namespace {

BackendConfig parse(const std::string &url, const std::string &options = "{}") {
    return so::parse_backend_config("b", url, options, "/var/lib/pg/data");
}

std::string error_of(const std::string &url, const std::string &options = "{}",
                     const std::string &key = "b") {
    try {
        so::parse_backend_config(key, url, options, "/var/lib/pg/data");
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST(BackendConfig, FileUrls) {
    EXPECT_EQ(parse("file:///srv/files/").local.root, "/srv/files");
    EXPECT_EQ(parse("file://localhost/srv//files/./x").local.root, "/srv/files/x");
    EXPECT_EQ(parse("FILE:///srv/my%20files").local.root, "/srv/my files");
    EXPECT_EQ(parse("file:///srv").kind, so::BackendKind::Local);
}

TEST(BackendConfig, OsfsRelativePathsResolveUnderTheDataDirectory) {
    EXPECT_EQ(parse("osfs://./storage/local").local.root, "/var/lib/pg/data/storage/local");
    EXPECT_EQ(parse("osfs:///abs/dir").local.root, "/abs/dir");
}

TEST(BackendConfig, S3Urls) {
    BackendConfig c = parse("s3://my-bucket/uploads/2024");
    EXPECT_EQ(c.kind, so::BackendKind::S3);
    EXPECT_EQ(c.s3.bucket, "my-bucket");
    EXPECT_EQ(c.s3.prefix, "uploads/2024/");
    EXPECT_EQ(parse("s3://my-bucket").s3.prefix, "");
    EXPECT_EQ(parse("s3://my-bucket/").s3.prefix, "");
}

TEST(BackendConfig, BadUrls) {
    EXPECT_EQ(error_of("ftp://x/y"), "unsupported backend URL scheme \"ftp\"");
    EXPECT_EQ(error_of("/srv/files"), "backend URL has no scheme");
    EXPECT_EQ(error_of("file://srv/files"), "a file backend URL must name an absolute directory");
    EXPECT_EQ(error_of("file:///srv/../etc"), "backend directory must not contain \"..\" segments");
    EXPECT_EQ(error_of("file:///"), "backend directory must not be the file system root");
    EXPECT_EQ(error_of("file:///srv/x%0a"), "backend URL path contains a control character");
    EXPECT_EQ(error_of("file:///srv/x%zz"), "invalid percent-escape in backend URL");
    EXPECT_EQ(error_of("file:///srv?x=1"), "a file backend URL takes no query or fragment");
    EXPECT_EQ(error_of("s3://Bad_Bucket/x"), "invalid S3 bucket name \"Bad_Bucket\"");
    EXPECT_EQ(error_of("s3://ak:sk@bucket/x"), "an s3 backend URL must not contain credentials");
    EXPECT_EQ(error_of("file:///srv", "{}", "bad key!"), "invalid backend key \"bad key!\"");
}

TEST(BackendConfig, LocalOptions) {
    BackendConfig c = parse("file:///srv", R"({"base_url":"https://cdn.example.com/files/",
        "sign_scheme":"nginx_secure_link","signing_secret":"0123456789abcdef"})");
    EXPECT_EQ(c.local.base_url.value(), "https://cdn.example.com/files");
    EXPECT_EQ(c.local.sign_scheme, so::LocalSignScheme::NginxSecureLink);
    EXPECT_EQ(error_of("file:///srv", R"({"region":"x"})"), "unknown option \"region\" for file backends");
    EXPECT_EQ(error_of("file:///srv", R"({"base_url":7})"), "option \"base_url\" must be a string, not a number");
    EXPECT_EQ(error_of("file:///srv", R"({"base_url":"ftp://x"})"),
              "option \"base_url\" must be an http:// or https:// URL");
    EXPECT_EQ(error_of("file:///srv", R"({"sign_scheme":"md5"})"),
              "option \"sign_scheme\" must be \"hmac\" or \"nginx_secure_link\"");
    EXPECT_EQ(error_of("file:///srv", R"({"signing_secret":"short"})"),
              "option \"signing_secret\" must have at least 16 characters");
    EXPECT_EQ(error_of("file:///srv", "[]"), "backend options must be a JSON object, not an array");
}

TEST(BackendConfig, S3Options) {
    BackendConfig c = parse("s3://bucket", R"({"endpoint":"http://127.0.0.1:9000/","allow_http":true,
        "access_key_id":"AK","secret_access_key":"SK","region":"eu-west-1","path_style":true,
        "part_size":5242880,"max_concurrency":8})");
    EXPECT_EQ(c.s3.endpoint.value(), "http://127.0.0.1:9000");
    EXPECT_EQ(c.s3.region, "eu-west-1");
    EXPECT_TRUE(c.s3.path_style.value());
    EXPECT_EQ(c.s3.part_size, 5242880);
    EXPECT_EQ(c.s3.max_concurrency, 8);
    EXPECT_EQ(error_of("s3://bucket", R"({"endpoint":"http://127.0.0.1:9000"})"),
              "a plain http:// endpoint needs the option \"allow_http\": true");
    EXPECT_EQ(error_of("s3://bucket", R"({"access_key_id":"AK"})"),
              "options \"access_key_id\" and \"secret_access_key\" must be given together");
    EXPECT_EQ(error_of("s3://bucket", R"({"credentials":"env","access_key_id":"AK","secret_access_key":"S"})"),
              "option \"credentials\" excludes access_key_id, secret_access_key and session_token");
    EXPECT_EQ(error_of("s3://bucket", R"({"part_size":1024})"),
              "option \"part_size\" must be a whole number from 5242880 to 5368709120");
    EXPECT_EQ(error_of("s3://bucket", R"({"path_style":"yes"})"),
              "option \"path_style\" must be a boolean, not a string");
    EXPECT_EQ(error_of("s3://bucket", R"({"endpoint":"https://user:pw@host"})"),
              "option \"endpoint\" must not contain credentials, spaces, a query or a fragment");
}

TEST(BackendConfig, SecretsNeverInMessages) {
    const std::string secret = "TOPSECRETVALUE123";
    for (const std::string &options :
         {R"({"secret_access_key":")" + secret + R"("})",
          R"({"secret_access_key":")" + secret + R"(","access_key_id":1})",
          R"({"session_token":")" + secret + R"("})"}) {
        std::string message = error_of("s3://bucket", options);
        EXPECT_EQ(message.find(secret), std::string::npos) << message;
    }
    EXPECT_EQ(error_of("file:///srv", R"({"signing_secret":"TOPSECRET"})").find("TOPSECRET"), std::string::npos);
}

TEST(BackendConfig, CompletingOptionsGeneratesASigningSecretForLocalBackends) {
    auto options = so::json::parse(so::complete_backend_options("file:///srv", R"({"base_url":"http://x"})"));
    const auto *secret = options.find("signing_secret");
    ASSERT_NE(secret, nullptr);
    EXPECT_EQ(secret->text.size(), 64u);
    EXPECT_NE(so::complete_backend_options("file:///srv", "{}"), so::complete_backend_options("file:///srv", "{}"));
    // Given secrets are kept; S3 backends get none.
    EXPECT_EQ(so::complete_backend_options("file:///srv", R"({"signing_secret":"0123456789abcdefXYZ"})"),
              R"({"signing_secret":"0123456789abcdefXYZ"})");
    EXPECT_EQ(so::complete_backend_options("s3://bucket", "{}"), "{}");
}

TEST(BackendConfig, FileAccessIsAssumedUnlessS3) {
    EXPECT_FALSE(so::url_grants_file_access("s3://bucket"));
    EXPECT_FALSE(so::url_grants_file_access("S3://bucket"));
    EXPECT_TRUE(so::url_grants_file_access("file:///x"));
    EXPECT_TRUE(so::url_grants_file_access("osfs://x"));
    EXPECT_TRUE(so::url_grants_file_access("garbage"));
}
