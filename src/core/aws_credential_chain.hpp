// Credentials for the S3 backend found the way the AWS SDKs find them,
// from the database server's own environment, for servers that hold no
// long-lived keys (EC2, ECS, EKS):
//
//   environment   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
//   shared files  AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
//                 AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE
//   web identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS
//                 AssumeRoleWithWebIdentity (AWS_ENDPOINT_URL_STS)
//   container     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with
//                 AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)
//   instance      IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT): a session
//                 token, then the role's credentials
//
// The chain tries them in that order: a provider that is not set up is
// passed over; one that is set up and fails ends the search. Temporary
// credentials are kept and fetched again before they expire. Messages name
// the providers tried and why each was passed over, never a secret.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/sigv4.hpp"

namespace so::aws {

enum class Provider { Chain, Environment, SharedFiles, WebIdentity, Container, InstanceMetadata };

// The name of a provider in options and messages: "default", "env",
// "shared files", "web_identity", "container", "instance".
const char *provider_name(Provider provider);

struct ResolvedCredentials {
    sigv4::Credentials credentials;
    std::optional<int64_t> expiration;  // seconds since the epoch; none: long-term
    std::string provider;               // which provider gave them
};

struct ChainOptions {
    Provider provider = Provider::Chain;
    std::string profile;           // empty: AWS_PROFILE, else "default"
    std::string credentials_file;  // empty: AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials
    std::string region;            // for STS
    std::string backend;           // for messages
};

// Resolves credentials now (network requests for web identity, container
// and instance). Throws Error(NotConfigured) naming what was tried, or the
// error of the provider that failed.
ResolvedCredentials resolve(const ChainOptions &options);

// Credentials kept for one backend, refreshed before they expire.
class CredentialCache {
public:
    explicit CredentialCache(ChainOptions options) : options_(std::move(options)) {}
    // Credentials good at now. *renewed tells whether they changed since
    // the last call (the caller rebuilds what it derived from them).
    const sigv4::Credentials &get(int64_t now, bool *renewed);

private:
    ChainOptions options_;
    std::optional<ResolvedCredentials> current_;
    int64_t fetched_at_ = 0;
};

}  // namespace so::aws
