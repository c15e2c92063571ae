// The Azure Shared Key and SAS strings to sign against the forms and
// examples of Microsoft's "Authorize with Shared Key" and "Create a service
// SAS". The signatures themselves are checked end to end against Azurite,
// which verifies them, and against the Azure SDK's own SAS
// (tests/system/test_azure_clients.py).
#include <gtest/gtest.h>

#include "core/azure_auth.hpp"
#include "core/crypto.hpp"
#include "core/error.hpp"

namespace {

using so::azure::Params;

TEST(AzureAuth, CanonicalizedResourceOfTheDocumentedExamples) {
    // GET https://myaccount.blob.core.windows.net/mycontainer?restype=container&comp=metadata
    EXPECT_EQ(so::azure::canonicalized_resource("myaccount", "/mycontainer",
                                                {{"restype", "container"}, {"comp", "metadata"}}),
              "/myaccount/mycontainer\ncomp:metadata\nrestype:container");
    // ...?restype=container&comp=list&include=snapshots&include=metadata&include=uncommittedblobs
    EXPECT_EQ(so::azure::canonicalized_resource("myaccount", "/mycontainer",
                                                {{"restype", "container"},
                                                 {"comp", "list"},
                                                 {"include", "snapshots"},
                                                 {"include", "metadata"},
                                                 {"include", "uncommittedblobs"}}),
              "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container");
    // The emulator's path-style URLs carry the account in the path as well.
    EXPECT_EQ(so::azure::canonicalized_resource("devstoreaccount1", "/devstoreaccount1/mycontainer/a%20b", {}),
              "/devstoreaccount1/devstoreaccount1/mycontainer/a%20b");
    // Names are lowercased, values stay as given (decoded).
    EXPECT_EQ(so::azure::canonicalized_resource("a1b", "/c/b", {{"BlockId", "QUJD+/=="}}), "/a1b/c/b\nblockid:QUJD+/==");
}

TEST(AzureAuth, StringToSignOfTheDocumentedGetContainerMetadata) {
    Params headers = {{"x-ms-version", "2009-09-19"}, {"x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"}};
    std::string resource = so::azure::canonicalized_resource(
        "myaccount", "/myaccount/mycontainer", {{"restype", "container"}, {"comp", "metadata"}, {"timeout", "20"}});
    EXPECT_EQ(so::azure::shared_key_string_to_sign("GET", headers, resource),
              "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n"
              "/myaccount/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20");
}

TEST(AzureAuth, StringToSignPlacesStandardHeadersAndTrimsValues) {
    Params headers = {{"Content-Length", "0"},          {"Content-MD5", "md5"},
                      {"x-ms-blob-content-type", "text/plain"}, {"If-None-Match", "*"},
                      {"x-ms-meta-Note", "  two   words "},     {"X-MS-Date", "Fri, 26 Jun 2015 23:39:12 GMT"},
                      {"x-ms-range", "bytes=0-9"},        {"Range", "bytes=0-9"}};
    // Content-Length 0 is written as empty (version 2015-02-21 and later).
    EXPECT_EQ(so::azure::shared_key_string_to_sign("PUT", headers, "/a/c/b"),
              "PUT\n\n\n\nmd5\n\n\n\n\n*\n\nbytes=0-9\n"
              "x-ms-blob-content-type:text/plain\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
              "x-ms-meta-note:two   words\nx-ms-range:bytes=0-9\n/a/c/b");
    headers[0].second = "11";
    EXPECT_NE(so::azure::shared_key_string_to_sign("PUT", headers, "/a/c/b").find("PUT\n\n\n11\nmd5\n"),
              std::string::npos);
}

TEST(AzureAuth, AuthorizationIsHmacOfTheStringToSignWithTheDecodedKey) {
    std::string key = so::crypto::base64("0123456789abcdef0123456789abcdef");
    so::azure::SharedKey shared("acct", key);
    Params headers = {{"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"}, {"x-ms-version", "2021-08-06"}};
    std::string to_sign = so::azure::shared_key_string_to_sign(
        "GET", headers, so::azure::canonicalized_resource("acct", "/c/b", {}));
    EXPECT_EQ(shared.authorization("GET", "/c/b", {}, headers),
              "SharedKey acct:" + so::crypto::base64(so::crypto::hmac_sha256("0123456789abcdef0123456789abcdef", to_sign)));
}

TEST(AzureAuth, AKeyThatIsNotBase64IsRefusedWithoutEchoingIt) {
    try {
        so::azure::SharedKey("acct", "not base64 s3cr3t!");
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::InvalidParameter);
        EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos);
    }
}

TEST(AzureAuth, ServiceSasStringToSignHasTheSixteenFieldsOfVersion2020_12_06) {
    so::azure::BlobSas sas;
    sas.permissions = "r";
    sas.expiry = 1767225600;  // 2026-01-01T00:00:00Z
    sas.container = "photos";
    sas.blob = "2026/a b.jpg";
    sas.content_disposition = "attachment";
    sas.content_type = "image/jpeg";
    EXPECT_EQ(so::azure::sas_string_to_sign("acct", sas),
              "r\n\n2026-01-01T00:00:00Z\n/blob/acct/photos/2026/a b.jpg\n\n\nhttps\n2021-08-06\nb\n\n\n\n"
              "attachment\n\n\nimage/jpeg");
    so::azure::SharedKey key("acct", so::crypto::base64("k"));
    std::string q = so::azure::blob_sas_query(key, sas);
    EXPECT_EQ(q.rfind("sv=2021-08-06&spr=https&se=2026-01-01T00%3A00%3A00Z&sr=b&sp=r&rscd=attachment&rsct=image%2Fjpeg&sig=", 0), 0u) << q;
}

}  // namespace

namespace {

TEST(AzureAuth, TheKeptSasSignerGivesWhatTheOneShotDoes) {
    so::azure::SharedKey key("acct", so::crypto::base64("0123456789abcdef0123456789abcdef"));
    so::azure::SasSigner signer(key);
    so::azure::BlobSas sas;
    sas.container = "photos";
    sas.protocol = "https";
    for (int i = 0; i < 6; ++i) {
        sas.permissions = i % 3 == 2 ? "cw" : "r";
        sas.expiry = 1767225600 + (i / 2) * 60;  // the kept part changes every other URL
        sas.blob = "2026/photo " + std::to_string(i) + ".jpg";
        sas.content_disposition = i == 4 ? "attachment; filename=\"a.jpg\"" : "";
        sas.content_type = i == 5 ? "image/jpeg" : "";
        std::string url = "https://h/c/b?";
        signer.append_query(url, sas);
        EXPECT_EQ(url, "https://h/c/b?" + so::azure::blob_sas_query(key, sas)) << i;
    }
}

}  // namespace
