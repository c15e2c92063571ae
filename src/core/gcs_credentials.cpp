#include "core/gcs_credentials.hpp"

#include <cstdlib>

#include "core/aws_credentials.hpp"
#include "core/crypto.hpp"
#include "core/environment.hpp"
#include "core/error.hpp"
#include "core/gcs_signer.hpp"
#include "core/http_client.hpp"
#include "core/json.hpp"
#include "core/rsa_key.hpp"
#include "core/uri.hpp"

namespace so::gcs {

namespace {

BearerToken parse_token(const http::Outcome &outcome, const std::string &source, int64_t now) {
    if (!outcome.transport_ok)
        throw Error(ErrorKind::Io, "the " + source + " token source could not be reached: " + message_text(outcome.error));
    const http::Response &r = outcome.response;
    json::Value doc;
    try {
        doc = json::parse(r.body);
    } catch (const Error &) {
    }
    auto text = [&](const char *name) -> std::string {
        const json::Value *v = doc.kind == json::Value::Kind::Object ? doc.find(name) : nullptr;
        return v ? v->text : "";
    };
    if (r.status != 200)
        throw Error(r.status == 400 || r.status == 401 || r.status == 403 ? ErrorKind::PermissionDenied : ErrorKind::Io,
                    "the " + source + " token source refused a token: HTTP " + std::to_string(r.status) +
                        (text("error").empty() ? "" : " " + message_text(text("error"))));
    BearerToken token;
    token.token = text("access_token");
    if (token.token.empty()) throw Error(ErrorKind::Io, "the " + source + " token source answered without a token");
    long long expires_in = std::strtoll(text("expires_in").c_str(), nullptr, 10);
    token.expires_on = now + (expires_in > 0 ? expires_in : 60);
    return token;
}

BearerToken from_metadata_server(int64_t now) {
    std::string host = environment("GCE_METADATA_HOST");
    if (host.empty()) host = "169.254.169.254";
    http::Client client(http::Timeouts{1000, 2000});  // not on Google Cloud, nothing answers
    http::Request req;
    req.url = "http://" + host + "/computeMetadata/v1/instance/service-accounts/default/token";
    req.headers = {{"Metadata-Flavor", "Google"}};
    return parse_token(client.perform(req), "metadata server", now);
}

// The OAuth 2.0 JWT bearer grant (RFC 7523) Google documents for service
// accounts: a JWT of the account, signed RS256 with its key.
BearerToken from_service_account(const std::string &path, int64_t now) {
    ServiceAccount account = parse_service_account(read_private_file(path));
    crypto::RsaPrivateKey key(account.private_key_pem, "the service account's private_key");
    std::string header = "{\"alg\":\"RS256\",\"typ\":\"JWT\"" +
                         (account.private_key_id.empty() ? "" : ",\"kid\":" + json::quoted_string(account.private_key_id)) + "}";
    std::string claims = "{\"iss\":" + json::quoted_string(account.client_email) + ",\"scope\":" + json::quoted_string(kStorageScope) +
                         ",\"aud\":" + json::quoted_string(account.token_uri) + ",\"iat\":" + std::to_string(now) +
                         ",\"exp\":" + std::to_string(now + 3600) + "}";
    std::string jwt = crypto::rs256_jwt(key, header, claims);
    std::string body = "grant_type=" + uri::encode("urn:ietf:params:oauth:grant-type:jwt-bearer", false) +
                       "&assertion=" + uri::encode(jwt, false);
    http::Client client(http::Timeouts{5000, 10000});
    http::Request req;
    req.method = "POST";
    req.url = account.token_uri;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = body.data();
    req.body_size = body.size();
    return parse_token(client.perform(req), "service account", now);
}

}  // namespace

BearerToken fetch_token(const TokenOptions &options, int64_t now) {
    try {
        switch (options.source) {
            case TokenSource::ServiceAccount: return from_service_account(options.service_account_file, now);
            case TokenSource::Metadata: return from_metadata_server(now);
            case TokenSource::Default: {
                std::string file = !options.service_account_file.empty() ? options.service_account_file
                                                                         : environment("GOOGLE_APPLICATION_CREDENTIALS");
                return file.empty() ? from_metadata_server(now) : from_service_account(file, now);
            }
        }
    } catch (const Error &e) {
        throw Error(e.kind(), "storage backend " + quoted(options.backend) + " found no GCS credentials: " + e.what(),
                    e.detail(), e.hint());
    }
    throw Error(ErrorKind::Internal, "no such token source");
}

}  // namespace so::gcs
