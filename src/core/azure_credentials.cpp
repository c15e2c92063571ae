#include "core/azure_credentials.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>

#include "core/aws_credentials.hpp"
#include "core/crypto.hpp"
#include "core/environment.hpp"
#include "core/error.hpp"
#include "core/http_client.hpp"
#include "core/json.hpp"
#include "core/rsa_key.hpp"
#include "core/uri.hpp"

namespace so::azure {

namespace {

struct NotSetUp {
    std::string why;
};

std::string without_trailing_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

http::Response send(http::Request &req, const char *provider, long timeout_ms) {
    http::Client client(http::Timeouts{std::min(timeout_ms, 5000L), timeout_ms});
    http::Outcome outcome = client.perform(req);
    if (!outcome.transport_ok)
        throw Error(ErrorKind::Io, std::string("the ") + provider + " token provider could not reach its endpoint: " +
                                       message_text(outcome.error));
    return std::move(outcome.response);
}

const json::Value *member(const json::Value &doc, const char *name) {
    return doc.kind == json::Value::Kind::Object ? doc.find(name) : nullptr;
}

// Entra and IMDS answers: access_token, and expires_on (IMDS, a string of
// epoch seconds) or expires_in (seconds from now, a number or a string).
AccessToken parse_token(const http::Response &response, const char *provider, int64_t now) {
    json::Value doc;
    try {
        doc = json::parse(response.body);
    } catch (const Error &) {
    }
    if (response.status != 200) {
        const json::Value *error = member(doc, "error");
        std::string code = error && error->kind == json::Value::Kind::String ? error->text : "";
        throw Error(response.status == 400 || response.status == 401 || response.status == 403
                        ? ErrorKind::PermissionDenied
                        : ErrorKind::Io,
                    std::string("the ") + provider + " token provider was refused a token: HTTP " +
                        std::to_string(response.status) + (code.empty() ? "" : " " + message_text(code)));
    }
    const json::Value *token = member(doc, "access_token");
    if (!token || token->kind != json::Value::Kind::String || token->text.empty())
        throw Error(ErrorKind::Io, std::string("the ") + provider + " token provider answered without a token");
    AccessToken t;
    t.token = token->text;
    t.provider = provider;
    auto seconds = [](const json::Value *v) -> int64_t {
        if (!v) return 0;
        return std::strtoll(v->text.c_str(), nullptr, 10);  // numbers keep their literal in text
    };
    if (int64_t on = seconds(member(doc, "expires_on")); on > 0)
        t.expires_on = on;
    else
        t.expires_on = now + std::max<int64_t>(seconds(member(doc, "expires_in")), 60);
    return t;
}

// The tenant's Entra token endpoint (AZURE_AUTHORITY_HOST for sovereign
// clouds and tests).
std::string token_url(const std::string &tenant) {
    std::string authority = environment("AZURE_AUTHORITY_HOST");
    if (authority.empty()) authority = "https://login.microsoftonline.com";
    return without_trailing_slash(authority) + "/" + uri::encode(tenant, false) + "/oauth2/v2.0/token";
}

// Entra's client-credentials grant for the app AZURE_CLIENT_ID of tenant
// AZURE_TENANT_ID, proving itself with credential (form fields).
AccessToken entra_token(const std::string &tenant, const std::string &client, const std::string &credential,
                        const char *provider, int64_t now) {
    std::string body = "grant_type=client_credentials&client_id=" + uri::encode(client, false) +
                       "&scope=" + uri::encode(std::string(kStorageResource) + ".default", false) + "&" + credential;
    http::Request req;
    req.method = "POST";
    req.url = token_url(tenant);
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    req.body = body.data();
    req.body_size = body.size();
    return parse_token(send(req, provider, 10000), provider, now);
}

// The same, proving itself with a JWT (RFC 7523 client authentication).
AccessToken entra_token_for_assertion(const std::string &tenant, const std::string &client,
                                      const std::string &assertion, const char *provider, int64_t now) {
    return entra_token(tenant, client,
                       "client_assertion_type=" +
                           uri::encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer", false) +
                           "&client_assertion=" + uri::encode(assertion, false),
                       provider, now);
}

// A service principal's secret, as the SDKs' EnvironmentCredential takes it.
AccessToken client_secret(int64_t now) {
    std::string tenant = environment("AZURE_TENANT_ID"), client = environment("AZURE_CLIENT_ID"),
                secret = environment("AZURE_CLIENT_SECRET");
    if (tenant.empty() || client.empty() || secret.empty())
        throw NotSetUp{"AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not all set"};
    return entra_token(tenant, client, "client_secret=" + uri::encode(secret, false), "client_secret", now);
}

// A service principal's certificate, as the SDKs' EnvironmentCredential
// takes it: a PEM file with the private key and the certificate. The client
// assertion is a JWT the key signs, naming the certificate by its SHA-1
// thumbprint ("x5t"), for the token endpoint ("aud") and five minutes.
AccessToken client_certificate(int64_t now) {
    std::string tenant = environment("AZURE_TENANT_ID"), client = environment("AZURE_CLIENT_ID"),
                path = environment("AZURE_CLIENT_CERTIFICATE_PATH");
    if (tenant.empty() || client.empty() || path.empty())
        throw NotSetUp{"AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH are not all set"};
    const std::string what = "AZURE_CLIENT_CERTIFICATE_PATH (" + quoted(path) + ")";
    std::string pem = read_private_file(path);
    // The server's own file, not a parameter: 55000 rather than 22023.
    std::unique_ptr<crypto::RsaPrivateKey> key;
    try {
        key = std::make_unique<crypto::RsaPrivateKey>(pem, what);
    } catch (const Error &e) {
        throw Error(ErrorKind::NotConfigured, e.what());
    }
    std::optional<std::string> thumbprint = crypto::certificate_sha1_thumbprint(pem);
    if (!thumbprint) throw Error(ErrorKind::NotConfigured, what + " holds no certificate in PEM beside its key");
    std::string header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"" + crypto::base64url(*thumbprint) + "\"}";
    std::string claims = "{\"aud\":" + json::quoted_string(token_url(tenant)) +
                         ",\"iss\":" + json::quoted_string(client) + ",\"sub\":" + json::quoted_string(client) +
                         ",\"jti\":\"" + crypto::hex(crypto::random_bytes(16)) + "\",\"nbf\":" + std::to_string(now) +
                         ",\"exp\":" + std::to_string(now + 300) + "}";
    return entra_token_for_assertion(tenant, client, crypto::rs256_jwt(*key, header, claims), "client_certificate",
                                     now);
}

AccessToken workload_identity(int64_t now) {
    std::string tenant = environment("AZURE_TENANT_ID"), client = environment("AZURE_CLIENT_ID"),
                file = environment("AZURE_FEDERATED_TOKEN_FILE");
    if (tenant.empty() || client.empty() || file.empty())
        throw NotSetUp{"AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE are not all set"};
    // Read again at each refresh: Kubernetes rotates the token in place.
    return entra_token_for_assertion(tenant, client, read_token_file(file), "workload_identity", now);
}

// App Service, Azure Functions and Container Apps: a local endpoint that
// wants the secret they put in IDENTITY_HEADER.
AccessToken app_service_identity(const TokenOptions &options, const std::string &endpoint,
                                 const std::string &secret, int64_t now) {
    http::Request req;
    req.url = endpoint + (endpoint.find('?') == std::string::npos ? "?" : "&") +
              "api-version=2019-08-01&resource=" + uri::encode(kStorageResource, false);
    if (!options.client_id.empty()) req.url += "&client_id=" + uri::encode(options.client_id, false);
    req.headers = {{"X-IDENTITY-HEADER", secret}};
    return parse_token(send(req, "managed_identity", 10000), "managed_identity", now);
}

// The instance metadata service of VMs and AKS nodes.
AccessToken imds_identity(const TokenOptions &options, int64_t now) {
    std::string host = environment("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    if (host.empty()) host = "http://169.254.169.254";
    http::Request req;
    req.url = without_trailing_slash(host) + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
              uri::encode(kStorageResource, false);
    if (!options.client_id.empty()) req.url += "&client_id=" + uri::encode(options.client_id, false);
    req.headers = {{"Metadata", "true"}};
    // Not on Azure, nothing answers: the SDKs give the metadata service a second.
    http::Response response = send(req, "managed_identity", 2000);
    return parse_token(response, "managed_identity", now);
}

// The SDKs' order: the hosting service's endpoint when its environment is
// there, else the instance metadata service.
AccessToken managed_identity(const TokenOptions &options, int64_t now) {
    std::string endpoint = environment("IDENTITY_ENDPOINT"), secret = environment("IDENTITY_HEADER");
    if (!endpoint.empty() && !secret.empty()) return app_service_identity(options, endpoint, secret, now);
    return imds_identity(options, now);
}

}  // namespace

const char *token_provider_name(TokenProvider provider) {
    switch (provider) {
        case TokenProvider::Chain: return "default";
        case TokenProvider::ClientSecret: return "client_secret";
        case TokenProvider::ClientCertificate: return "client_certificate";
        case TokenProvider::WorkloadIdentity: return "workload_identity";
        case TokenProvider::ManagedIdentity: return "managed_identity";
    }
    return "?";
}

AccessToken fetch_token(const TokenOptions &options) {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    std::string tried;  // the providers the chain passed over, and why
    // One provider: its own, or in the chain its turn (SDK order), passed
    // over when its environment is not there.
    auto attempt = [&](TokenProvider provider, auto fetch) -> std::optional<AccessToken> {
        if (options.provider != TokenProvider::Chain && options.provider != provider) return std::nullopt;
        try {
            return fetch();
        } catch (const NotSetUp &skip) {
            if (options.provider == provider) throw;
            tried += std::string(tried.empty() ? "" : "; ") + token_provider_name(provider) + ": " + skip.why;
            return std::nullopt;
        }
    };
    try {
        if (auto t = attempt(TokenProvider::ClientSecret, [&] { return client_secret(now); })) return *t;
        if (auto t = attempt(TokenProvider::ClientCertificate, [&] { return client_certificate(now); })) return *t;
        if (auto t = attempt(TokenProvider::WorkloadIdentity, [&] { return workload_identity(now); })) return *t;
        return managed_identity(options, now);
    } catch (const NotSetUp &skip) {
        throw Error(ErrorKind::NotConfigured,
                    "storage backend " + quoted(options.backend) + " found no Azure credentials",
                    std::string("tried ") + token_provider_name(options.provider) + ": " + message_text(skip.why));
    } catch (const Error &e) {
        throw Error(e.kind(), "storage backend " + quoted(options.backend) + " found no Azure credentials: " + e.what(),
                    tried.empty() ? e.detail() : "passed over: " + tried, e.hint());
    }
}

}  // namespace so::azure
