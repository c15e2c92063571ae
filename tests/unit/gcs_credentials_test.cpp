// GCS OAuth tokens against the loopback fake of their endpoints
// (tests/fakes/credential_endpoints.py): the metadata server
// (GCE_METADATA_HOST), and a service account key whose JWT the fake's
// Google token endpoint checks with the account's public key.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/gcs_credentials.hpp"
#include "core/gcs_signer.hpp"
#include "core/json.hpp"
#include "fake_endpoints.hpp"

namespace {

std::string read(const std::string &path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string json_string(const std::string &s) {
    so::json::Value v;
    v.kind = so::json::Value::Kind::String;
    v.text = s;
    return so::json::write(v);
}

class GcsCredentials : public ::testing::Test {
protected:
    static so::testing::FakeEndpoints fake_;
    static std::string dir_, key_file_, other_public_key_;

    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/so_gcs_credentials_XXXXXX";
        dir_ = mkdtemp(tmpl);
        std::string account = std::string(SO_SOURCE_DIR) + "/tests/unit/data/gcs_test_service_account.json";
        so::gcs::ServiceAccount sa = so::gcs::parse_service_account(read(account));
        // The account's public key, for the fake to check signatures with.
        std::ofstream(dir_ + "/private.pem") << sa.private_key_pem;
        std::string cmd = "openssl pkey -in '" + dir_ + "/private.pem' -pubout -out '" + dir_ + "/public.pem' 2>/dev/null"
                          " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null"
                          " | openssl pkey -pubout -out '" + dir_ + "/other.pem' 2>/dev/null";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
        other_public_key_ = read(dir_ + "/other.pem");
        std::string config = "{\"gce\": {\"service_account_email\": " + json_string(sa.client_email) +
                             ", \"service_account_public_key\": " + json_string(read(dir_ + "/public.pem")) + "}}";
        ASSERT_TRUE(fake_.start(dir_, config));
        // The key file, pointing at the fake's token endpoint.
        so::json::Value doc = so::json::parse(read(account));
        bool replaced = false;
        for (auto &m : doc.members)
            if (m.key == "token_uri") {
                m.value.text = fake_.url() + "/token";
                replaced = true;
            }
        if (!replaced) {
            so::json::Member uri;
            uri.key = "token_uri";
            uri.value.kind = so::json::Value::Kind::String;
            uri.value.text = fake_.url() + "/token";
            doc.members.push_back(uri);
        }
        key_file_ = dir_ + "/key.json";
        std::ofstream(key_file_) << so::json::write(doc);
        chmod(key_file_.c_str(), 0600);
    }

    static void TearDownTestSuite() {
        fake_.stop();
        std::string cmd = "rm -rf '" + dir_ + "'";
        (void)std::system(cmd.c_str());
    }

    void SetUp() override {
        unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
        std::string host = fake_.url().substr(7);  // host:port
        setenv("GCE_METADATA_HOST", host.c_str(), 1);
        fake_.control("DELETE", "/__fake/faults", "");
        fake_.control("DELETE", "/__fake/requests", "");
    }

    static so::BearerToken fetch(so::gcs::TokenSource source, const std::string &file = "") {
        so::gcs::TokenOptions options;
        options.source = source;
        options.service_account_file = file;
        options.backend = "g";
        return so::gcs::fetch_token(options, time(nullptr));
    }
};

so::testing::FakeEndpoints GcsCredentials::fake_;
std::string GcsCredentials::dir_, GcsCredentials::key_file_, GcsCredentials::other_public_key_;

TEST_F(GcsCredentials, MetadataServerWithItsFlavorHeader) {
    so::BearerToken t = fetch(so::gcs::TokenSource::Metadata);
    EXPECT_EQ(t.token, "fake-gce-access-token-1");
    EXPECT_NEAR(static_cast<double>(t.expires_on), static_cast<double>(time(nullptr) + 3600), 5);
    EXPECT_EQ(fake_.services_seen(), std::vector<std::string>{"gce_metadata GET"});
}

TEST_F(GcsCredentials, ServiceAccountJwtSignedWithItsKey) {
    so::BearerToken t = fetch(so::gcs::TokenSource::ServiceAccount, key_file_);
    EXPECT_EQ(t.token, "fake-gce-access-token-1");
    so::json::Value log = so::json::parse(fake_.control("GET", "/__fake/requests", "").body);
    ASSERT_EQ(log.items.size(), 1u);
    EXPECT_EQ(log.items[0].find("service")->text, "google_oauth");
    EXPECT_EQ(log.items[0].find("secrets")->find("signature")->text, "match");
}

TEST_F(GcsCredentials, DefaultTakesTheKeyFileOfTheEnvironmentElseTheMetadataServer) {
    fetch(so::gcs::TokenSource::Default);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", key_file_.c_str(), 1);
    fetch(so::gcs::TokenSource::Default);
    EXPECT_EQ(fake_.services_seen(), (std::vector<std::string>{"gce_metadata GET", "google_oauth POST"}));
}

TEST_F(GcsCredentials, ASignatureTheEndpointCannotCheckIsRefused) {
    fake_.control("POST", "/__fake/config", "{\"gce\": {\"service_account_public_key\": " +
                                                 json_string(other_public_key_) + "}}");
    try {
        fetch(so::gcs::TokenSource::ServiceAccount, key_file_);
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::PermissionDenied) << e.what();
        EXPECT_NE(std::string(e.what()).find("service account token source"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("invalid_grant"), std::string::npos) << e.what();
    }
    fake_.control("POST", "/__fake/config", "{\"gce\": {\"service_account_public_key\": " +
                                                 json_string(read(dir_ + "/public.pem")) + "}}");
}

TEST_F(GcsCredentials, AMetadataServerThatFailsIsNamed) {
    fake_.control("POST", "/__fake/faults", R"({"path_prefix": "/computeMetadata", "status": 503, "count": -1})");
    try {
        fetch(so::gcs::TokenSource::Metadata);
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_NE(std::string(e.what()).find("\"g\""), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("metadata server token source"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("HTTP 503"), std::string::npos) << e.what();
    }
}

}  // namespace
