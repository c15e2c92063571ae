// The AWS credential providers against a loopback fake of the endpoints
// they call (tests/fakes/credential_endpoints.py: IMDSv2, the container
// endpoint, STS), each overridden the way the SDKs allow, and the chain's
// order, caching and refresh. The fake runs as a child process on a free
// port; the environment the providers read is set per test.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/aws_credential_chain.hpp"
#include "core/error.hpp"
#include "core/http_client.hpp"
#include "core/json.hpp"
#include "fake_endpoints.hpp"

namespace {

const char *const kAwsVariables[] = {
    "AWS_ACCESS_KEY_ID",       "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",    "AWS_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED"};

const char *kRole = "arn:aws:iam::123456789012:role/fake-role";

class CredentialChain : public ::testing::Test {
protected:
    static so::testing::FakeEndpoints fake_;
    static std::string fake_url_, dir_;

    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/so_credentials_XXXXXX";
        dir_ = mkdtemp(tmpl);
        ASSERT_TRUE(fake_.start(dir_)) << "the credential endpoints fake did not start";
        fake_url_ = fake_.url();
    }

    static void TearDownTestSuite() {
        fake_.stop();
        std::string cmd = "rm -rf '" + dir_ + "'";
        (void)std::system(cmd.c_str());
    }

    void SetUp() override {
        for (const char *v : kAwsVariables) unsetenv(v);
        home_ = dir_ + "/home-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        mkdir(home_.c_str(), 0700);
        mkdir((home_ + "/.aws").c_str(), 0700);
        setenv("HOME", home_.c_str(), 1);
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake_url_.c_str(), 1);
        fake_.reset();
    }

    static so::http::Response control(const std::string &method, const std::string &path, const std::string &body) {
        return fake_.control(method, path, body);
    }

    static std::vector<std::string> services_seen() { return fake_.services_seen(); }

    void write_file(const std::string &path, const std::string &content, mode_t mode = 0600) {
        std::ofstream(path) << content;
        chmod(path.c_str(), mode);
    }

    static so::aws::ResolvedCredentials resolve(so::aws::Provider provider = so::aws::Provider::Chain) {
        so::aws::ChainOptions options;
        options.provider = provider;
        options.backend = "b";
        options.region = "us-east-1";
        return so::aws::resolve(options);
    }

    std::string home_;
};

so::testing::FakeEndpoints CredentialChain::fake_;
std::string CredentialChain::fake_url_, CredentialChain::dir_;

TEST_F(CredentialChain, EnvironmentComesFirst) {
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    write_file(home_ + "/.aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n");
    auto r = resolve();
    EXPECT_EQ(r.provider, "env");
    EXPECT_EQ(r.credentials.access_key_id, "AKIAENV");
    EXPECT_FALSE(r.expiration);
    EXPECT_TRUE(services_seen().empty());
}

TEST_F(CredentialChain, SharedFilesWithAProfileFromTheEnvironment) {
    write_file(home_ + "/.aws/credentials",
               "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n"
               "[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = w\n");
    EXPECT_EQ(resolve().credentials.access_key_id, "AKIADEFAULT");
    setenv("AWS_PROFILE", "work", 1);
    auto r = resolve();
    EXPECT_EQ(r.provider, "shared files");
    EXPECT_EQ(r.credentials.access_key_id, "AKIAWORK");
    // The config file names its profiles "[profile NAME]".
    write_file(home_ + "/.aws/credentials", "");
    write_file(home_ + "/.aws/config", "[profile work]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = c\n");
    EXPECT_EQ(resolve().credentials.access_key_id, "AKIACONFIG");
}

TEST_F(CredentialChain, ASharedFileOthersMayReadIsRefused) {
    write_file(home_ + "/.aws/credentials", "[default]\naws_access_key_id = AKIA\naws_secret_access_key = s3cr3t\n",
               0644);
    try {
        resolve();
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::PermissionDenied);
        EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos);
    }
}

TEST_F(CredentialChain, WebIdentityAsksStsWithTheTokenFile) {
    write_file(home_ + "/token", "fake-web-identity-token\n", 0644);  // Kubernetes mounts it readable
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", (home_ + "/token").c_str(), 1);
    setenv("AWS_ROLE_ARN", kRole, 1);
    setenv("AWS_ENDPOINT_URL_STS", fake_url_.c_str(), 1);
    auto r = resolve();
    EXPECT_EQ(r.provider, "web_identity");
    EXPECT_EQ(r.credentials.access_key_id, "ASIAFAKEEXAMPLE00001");
    EXPECT_EQ(r.credentials.session_token, "fake-session-token-1");
    ASSERT_TRUE(r.expiration);
    EXPECT_NEAR(static_cast<double>(*r.expiration), static_cast<double>(time(nullptr) + 3600), 5);
    EXPECT_EQ(services_seen(), std::vector<std::string>{"sts POST"});

    write_file(home_ + "/token", "another-token", 0644);
    try {
        resolve();
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::PermissionDenied) << e.what();
        EXPECT_NE(std::string(e.what()).find("InvalidIdentityToken"), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find("another-token"), std::string::npos);
    }
}

TEST_F(CredentialChain, ContainerEndpointWithItsAuthorizationToken) {
    control("POST", "/__fake/config", R"({"aws": {"container_authorization_token": "Bearer abc"}})");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", (fake_url_ + "/v2/credentials/fake-task").c_str(), 1);
    write_file(home_ + "/auth", "Bearer abc\n", 0644);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (home_ + "/auth").c_str(), 1);
    auto r = resolve();
    EXPECT_EQ(r.provider, "container");
    EXPECT_EQ(r.credentials.secret_access_key, "fake-secret-access-key-1");
    // A wrong token is refused; the chain does not fall through to IMDS.
    write_file(home_ + "/auth", "Bearer wrong", 0644);
    try {
        resolve();
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::PermissionDenied) << e.what();
        EXPECT_NE(std::string(e.what()).find("container"), std::string::npos);
    }
    EXPECT_EQ(services_seen(), (std::vector<std::string>{"container GET", "container GET"}));
    // Plain HTTP only to loopback and the ECS/EKS agents, as the SDKs allow.
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds", 1);
    EXPECT_THROW(resolve(so::aws::Provider::Container), so::Error);
}

TEST_F(CredentialChain, InstanceMetadataTakesASessionTokenFirst) {
    auto r = resolve();
    EXPECT_EQ(r.provider, "instance");
    EXPECT_EQ(r.credentials.access_key_id, "ASIAFAKEEXAMPLE00001");
    EXPECT_EQ(services_seen(), (std::vector<std::string>{"ec2_imds PUT", "ec2_imds GET", "ec2_imds GET"}));
}

TEST_F(CredentialChain, NothingSetUpNamesEveryProviderTriedAndNoSecret) {
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    try {
        resolve();
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_EQ(e.kind(), so::ErrorKind::NotConfigured);
        EXPECT_NE(std::string(e.what()).find("\"b\""), std::string::npos);
        for (const char *name : {"env:", "shared files:", "web_identity:", "container:", "instance:"})
            EXPECT_NE(e.detail().find(name), std::string::npos) << name << " in " << e.detail();
    }
}

TEST_F(CredentialChain, AFailingEndpointIsNamed) {
    control("POST", "/__fake/faults", R"({"path_prefix": "/latest", "status": 500, "count": -1})");
    try {
        resolve();
        FAIL();
    } catch (const so::Error &e) {
        EXPECT_NE(std::string(e.what()).find("instance credential provider"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("HTTP 500"), std::string::npos) << e.what();
    }
}

TEST_F(CredentialChain, TemporaryCredentialsAreKeptAndRenewedBeforeTheyExpire) {
    control("POST", "/__fake/config",
            R"({"credentials": [{"access_key_id": "ASIAONE", "secret_access_key": "one", "session_token": "t1"},
                                {"access_key_id": "ASIATWO", "secret_access_key": "two", "session_token": "t2"}]})");
    so::aws::ChainOptions options;
    options.provider = so::aws::Provider::InstanceMetadata;
    options.backend = "b";
    so::aws::CredentialCache cache(options);
    int64_t now = time(nullptr);
    bool renewed = false;
    EXPECT_EQ(cache.get(now, &renewed).access_key_id, "ASIAONE");
    EXPECT_TRUE(renewed);
    // Kept while far from expiry (an hour from now): no request.
    control("DELETE", "/__fake/requests", "");
    EXPECT_EQ(cache.get(now + 600, &renewed).access_key_id, "ASIAONE");
    EXPECT_FALSE(renewed);
    EXPECT_TRUE(services_seen().empty());
    // Within five minutes of expiry: fetched again.
    EXPECT_EQ(cache.get(now + 3600 - 200, &renewed).access_key_id, "ASIATWO");
    EXPECT_TRUE(renewed);
    // A failed refresh keeps credentials that are still valid...
    control("POST", "/__fake/faults", R"({"path_prefix": "/latest", "status": 500, "count": -1})");
    int64_t second_expiry = time(nullptr) + 3600;
    EXPECT_EQ(cache.get(second_expiry - 100, &renewed).access_key_id, "ASIATWO");
    EXPECT_FALSE(renewed);
    // ...but not expired ones.
    EXPECT_THROW(cache.get(second_expiry + 10, &renewed), so::Error);
}

TEST_F(CredentialChain, ShortLivedCredentialsRenewAtAQuarterOfTheirLife) {
    control("POST", "/__fake/config", R"({"lifetime_seconds": 40})");
    so::aws::ChainOptions options;
    options.provider = so::aws::Provider::InstanceMetadata;
    options.backend = "b";
    so::aws::CredentialCache cache(options);
    int64_t now = time(nullptr);
    bool renewed = false;
    cache.get(now, &renewed);
    cache.get(now + 20, &renewed);
    EXPECT_FALSE(renewed);  // 20 s left of 40: kept
    cache.get(now + 31, &renewed);
    EXPECT_TRUE(renewed);  // under 10 s left: renewed
}

}  // namespace
