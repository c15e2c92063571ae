// Microsoft Entra tokens for Azure Storage found the way the Azure SDKs'
// DefaultAzureCredential finds them, from the database server's own
// environment, for servers that hold no account key (AKS, VMs):
//
//   client secret      AZURE_TENANT_ID, AZURE_CLIENT_ID and
//                      AZURE_CLIENT_SECRET: a service principal's secret,
//                      sent to the Entra token endpoint
//   client certificate AZURE_TENANT_ID, AZURE_CLIENT_ID and
//                      AZURE_CLIENT_CERTIFICATE_PATH (PEM: key and
//                      certificate): a JWT it signs, sent there
//   workload identity  AZURE_TENANT_ID, AZURE_CLIENT_ID and
//                      AZURE_FEDERATED_TOKEN_FILE: the federated token is
//                      exchanged at the Entra token endpoint
//                      (AZURE_AUTHORITY_HOST, default
//                      https://login.microsoftonline.com/)
//   managed identity   App Service, Functions and Container Apps:
//                      IDENTITY_ENDPOINT with the secret of
//                      IDENTITY_HEADER as X-IDENTITY-HEADER; elsewhere the
//                      instance metadata service
//                      (AZURE_POD_IDENTITY_AUTHORITY_HOST, default
//                      http://169.254.169.254), with the header
//                      "Metadata: true". A user-assigned identity by its
//                      client id
//
// The chain tries them in that order, as the SDK does. Messages name the
// providers tried, never a token. Tokens are kept in a BearerTokenCache.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/bearer_token.hpp"

namespace so::azure {

enum class TokenProvider { Chain, ClientSecret, ClientCertificate, WorkloadIdentity, ManagedIdentity };

// "default", "client_secret", "client_certificate", "workload_identity", "managed_identity"
const char *token_provider_name(TokenProvider provider);

struct AccessToken : BearerToken {
    std::string provider;
};

struct TokenOptions {
    TokenProvider provider = TokenProvider::Chain;
    std::string client_id;  // a user-assigned managed identity; empty: the system-assigned one
    std::string backend;    // for messages
};

// The scope of Azure Storage.
inline constexpr const char *kStorageResource = "https://storage.azure.com/";

// Fetches a token now. Throws Error(NotConfigured) naming what was tried,
// or the error of the provider that failed.
AccessToken fetch_token(const TokenOptions &options);

}  // namespace so::azure
