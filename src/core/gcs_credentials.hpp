// Google OAuth tokens for GCS found the way Google's client libraries find
// Application Default Credentials, from the database server's own
// environment, for gs:// backends that hold no HMAC key:
//
//   service account  a key file (the backend's service_account_file, or
//                    GOOGLE_APPLICATION_CREDENTIALS): a JWT signed with its
//                    private key is exchanged at its token_uri
//   metadata server  GCE, GKE, Cloud Run: GCE_METADATA_HOST (default
//                    169.254.169.254), header "Metadata-Flavor: Google"
//
// "default" takes the key file when GOOGLE_APPLICATION_CREDENTIALS is set,
// the metadata server otherwise. Messages never show a token or a key.
#pragma once

#include <string>

#include "core/bearer_token.hpp"

namespace so::gcs {

enum class TokenSource { Default, ServiceAccount, Metadata };

struct TokenOptions {
    TokenSource source = TokenSource::Default;
    std::string service_account_file;  // ServiceAccount (and Default, before the environment)
    std::string backend;               // for messages
};

// The scope of the tokens: reading and writing objects.
inline constexpr const char *kStorageScope = "https://www.googleapis.com/auth/devstorage.read_write";

// Fetches a token now; throws Error naming the source and why.
BearerToken fetch_token(const TokenOptions &options, int64_t now);

}  // namespace so::gcs
