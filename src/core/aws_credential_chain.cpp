#include "core/aws_credential_chain.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <vector>

#include <unistd.h>

#include "core/aws_credentials.hpp"
#include "core/credential_refresh.hpp"
#include "core/crypto.hpp"
#include "core/environment.hpp"
#include "core/error.hpp"
#include "core/http_client.hpp"
#include "core/http_values.hpp"
#include "core/json.hpp"
#include "core/s3_xml.hpp"
#include "core/uri.hpp"

namespace so::aws {

namespace {

// A provider that is not set up here: the chain goes on to the next.
struct NotSetUp {
    std::string why;
};

// Metadata endpoints answer at once or not at all: the SDKs wait a second.
http::Timeouts metadata_timeouts() { return {1000, 2000}; }

http::Response request(http::Client &client, http::Request &req, const std::string &provider) {
    http::Outcome outcome = client.perform(req);
    if (!outcome.transport_ok)
        throw Error(ErrorKind::Io, "the " + provider + " credential provider could not reach its endpoint: " +
                                       message_text(outcome.error));
    return std::move(outcome.response);
}

[[noreturn]] void refused(const std::string &provider, const http::Response &response, const std::string &what) {
    std::string code;
    try {
        code = s3xml::text(response.body, "Code");
    } catch (const Error &) {
    }
    // STS says "this identity may not" with 400s too.
    bool denied = response.status == 401 || response.status == 403 || code == "InvalidIdentityToken" ||
                  code == "ExpiredTokenException" || code == "AccessDenied" || code == "IDPRejectedClaim";
    throw Error(denied ? ErrorKind::PermissionDenied : ErrorKind::Io,
                "the " + provider + " credential provider was refused " + what + ": HTTP " +
                    std::to_string(response.status) + (code.empty() ? "" : " " + message_text(code)));
}

std::string json_text(const json::Value &object, const char *name) {
    const json::Value *v = object.find(name);
    return v && v->kind == json::Value::Kind::String ? v->text : "";
}

// The credentials JSON of the container endpoint and of IMDS.
ResolvedCredentials from_credentials_json(const std::string &body, const std::string &provider) {
    json::Value doc;
    try {
        doc = json::parse(body);
    } catch (const Error &) {
        throw Error(ErrorKind::Io, "the " + provider + " credential provider answered something that is not JSON");
    }
    ResolvedCredentials r;
    r.credentials = {json_text(doc, "AccessKeyId"), json_text(doc, "SecretAccessKey"), json_text(doc, "Token")};
    if (r.credentials.access_key_id.empty() || r.credentials.secret_access_key.empty())
        throw Error(ErrorKind::Io, "the " + provider + " credential provider answered without credentials");
    std::string expiration = json_text(doc, "Expiration");
    if (!expiration.empty()) r.expiration = static_cast<int64_t>(http::parse_iso8601(expiration));
    r.provider = provider;
    return r;
}

ResolvedCredentials from_environment() {
    ResolvedCredentials r;
    r.credentials = credentials_from_environment();
    if (r.credentials.access_key_id.empty() || r.credentials.secret_access_key.empty())
        throw NotSetUp{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"};
    r.provider = "env";
    return r;
}

std::string home_file(const char *variable, const char *name) {
    std::string path = environment(variable);
    if (!path.empty()) return path;
    std::string home = environment("HOME");
    return home.empty() ? "" : home + "/.aws/" + name;
}

bool readable(const std::string &path) { return !path.empty() && ::access(path.c_str(), R_OK) == 0; }

ResolvedCredentials from_shared_files(const ChainOptions &options) {
    std::string profile = !options.profile.empty() ? options.profile : environment("AWS_PROFILE");
    if (profile.empty()) profile = "default";
    std::string credentials_path = !options.credentials_file.empty()
                                       ? options.credentials_file
                                       : home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    std::string config_path = options.credentials_file.empty() ? home_file("AWS_CONFIG_FILE", "config") : "";
    std::map<std::string, std::string> values;
    bool found = false;
    // The config file names profiles "[profile NAME]" (but "[default]").
    if (readable(config_path))
        if (auto v = read_profile(read_private_file(config_path), profile == "default" ? profile : "profile " + profile)) {
            values = *v;
            found = true;
        }
    // The credentials file wins where both set a value.
    if (readable(credentials_path) || !options.credentials_file.empty())
        if (auto v = read_profile(read_private_file(credentials_path), profile)) {
            for (auto &[k, value] : *v) values[k] = value;
            found = true;
        }
    if (!found && !options.credentials_file.empty())  // the file the backend names
        throw Error(ErrorKind::NotConfigured,
                    "the credentials file " + quoted(credentials_path) + " has no profile " + quoted(profile));
    if (!found)
        throw NotSetUp{"no profile " + quoted(profile) + " in " +
                       (credentials_path.empty() ? std::string("the shared files") : quoted(credentials_path)) +
                       (config_path.empty() ? "" : " or " + quoted(config_path))};
    ResolvedCredentials r;
    r.credentials = {values["aws_access_key_id"], values["aws_secret_access_key"], values["aws_session_token"]};
    if (r.credentials.access_key_id.empty() || r.credentials.secret_access_key.empty())
        throw NotSetUp{"profile " + quoted(profile) + " has no aws_access_key_id and aws_secret_access_key"};
    r.provider = "shared files";
    return r;
}

std::string form_value(std::string_view s) { return uri::encode(s, false); }

ResolvedCredentials from_web_identity(const ChainOptions &options) {
    std::string token_file = environment("AWS_WEB_IDENTITY_TOKEN_FILE"), role = environment("AWS_ROLE_ARN");
    if (token_file.empty() || role.empty()) throw NotSetUp{"AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN are not set"};
    std::string session = environment("AWS_ROLE_SESSION_NAME");
    if (session.empty()) session = "stored-object-" + crypto::hex(crypto::random_bytes(4));
    std::string region = environment("AWS_REGION");
    if (region.empty()) region = options.region.empty() ? "us-east-1" : options.region;
    std::string endpoint = environment("AWS_ENDPOINT_URL_STS");
    if (endpoint.empty()) endpoint = "https://sts." + region + ".amazonaws.com";
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    // Read again at each refresh: Kubernetes rotates the token in place.
    std::string token = read_token_file(token_file);
    std::string body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + form_value(role) +
                       "&RoleSessionName=" + form_value(session) + "&WebIdentityToken=" + form_value(token);
    http::Client client(http::Timeouts{5000, 10000});
    http::Request req;
    req.method = "POST";
    req.url = endpoint + "/";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/xml"}};
    req.body = body.data();
    req.body_size = body.size();
    http::Response response = request(client, req, "web identity");
    if (response.status != 200) refused("web identity", response, "AssumeRoleWithWebIdentity for " + quoted(role));
    std::string credentials = s3xml::text(response.body, "Credentials");
    ResolvedCredentials r;
    r.credentials = {s3xml::text(credentials, "AccessKeyId"), s3xml::text(credentials, "SecretAccessKey"),
                     s3xml::text(credentials, "SessionToken")};
    if (r.credentials.access_key_id.empty() || r.credentials.secret_access_key.empty())
        throw Error(ErrorKind::Io, "the web identity credential provider got an answer without credentials");
    std::string expiration = s3xml::text(credentials, "Expiration");
    if (!expiration.empty()) r.expiration = static_cast<int64_t>(http::parse_iso8601(expiration));
    r.provider = "web_identity";
    return r;
}

// The hosts the SDKs let a full container credentials URI name over plain
// HTTP: loopback, and the ECS and EKS pod identity agents.
bool allowed_container_host(const std::string &url) {
    std::string l = url;
    for (char &c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l.rfind("https://", 0) == 0) return true;
    if (l.rfind("http://", 0) != 0) return false;
    std::string rest = l.substr(7);
    std::string host = rest[0] == '[' ? rest.substr(0, rest.find(']') + 1) : rest.substr(0, rest.find_first_of(":/"));
    return host == "localhost" || host.rfind("127.", 0) == 0 || host == "[::1]" || host == "169.254.170.2" ||
           host == "169.254.170.23" || host == "[fd00:ec2::23]";
}

ResolvedCredentials from_container() {
    std::string relative = environment("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), full = environment("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (relative.empty() && full.empty())
        throw NotSetUp{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set"};
    std::string url = !relative.empty() ? "http://169.254.170.2" + relative : full;
    if (relative.empty() && !allowed_container_host(full))
        throw Error(ErrorKind::InvalidParameter,
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or the ECS "
                    "or EKS credential agent");
    http::Request req;
    req.url = url;
    std::string token_file = environment("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    std::string token = !token_file.empty() ? read_token_file(token_file) : environment("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (!token.empty()) req.headers.emplace_back("Authorization", token);
    http::Client client(metadata_timeouts());
    http::Response response = request(client, req, "container");
    if (response.status != 200) refused("container", response, "credentials");
    return from_credentials_json(response.body, "container");
}

ResolvedCredentials from_instance_metadata() {
    std::string disabled = environment("AWS_EC2_METADATA_DISABLED");
    for (char &c : disabled) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (disabled == "true") throw NotSetUp{"AWS_EC2_METADATA_DISABLED is true"};
    std::string endpoint = environment("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (endpoint.empty()) endpoint = "http://169.254.169.254";
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    http::Client client(metadata_timeouts());
    // IMDSv2: a session token first (a PUT, which a forwarding proxy would
    // not pass on), then the role and its credentials with it.
    http::Request put;
    put.method = "PUT";
    put.url = endpoint + "/latest/api/token";
    put.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    http::Response token = request(client, put, "instance");
    if (token.status != 200) refused("instance", token, "a session token");
    auto get = [&](const std::string &path, const char *what) {
        http::Request req;
        req.url = endpoint + path;
        req.headers = {{"X-aws-ec2-metadata-token", token.body}};
        http::Response response = request(client, req, "instance");
        if (response.status == 404)
            throw Error(ErrorKind::NotConfigured, "the instance credential provider found no IAM role on this instance");
        if (response.status != 200) refused("instance", response, what);
        return response.body;
    };
    std::string roles = get("/latest/meta-data/iam/security-credentials/", "the role name");
    std::string role = roles.substr(0, roles.find('\n'));
    if (role.empty()) throw Error(ErrorKind::NotConfigured, "the instance credential provider found no IAM role");
    return from_credentials_json(get("/latest/meta-data/iam/security-credentials/" + uri::encode(role, false),
                                     "the role's credentials"),
                                 "instance");
}

ResolvedCredentials resolve_one(Provider provider, const ChainOptions &options) {
    switch (provider) {
        case Provider::Environment: return from_environment();
        case Provider::SharedFiles: return from_shared_files(options);
        case Provider::WebIdentity: return from_web_identity(options);
        case Provider::Container: return from_container();
        case Provider::InstanceMetadata: return from_instance_metadata();
        case Provider::Chain: break;
    }
    throw Error(ErrorKind::Internal, "no such credential provider");
}

}  // namespace

const char *provider_name(Provider provider) {
    switch (provider) {
        case Provider::Chain: return "default";
        case Provider::Environment: return "env";
        case Provider::SharedFiles: return "shared files";
        case Provider::WebIdentity: return "web_identity";
        case Provider::Container: return "container";
        case Provider::InstanceMetadata: return "instance";
    }
    return "?";
}

ResolvedCredentials resolve(const ChainOptions &options) {
    std::vector<Provider> order;
    if (options.provider == Provider::Chain)
        order = {Provider::Environment, Provider::SharedFiles, Provider::WebIdentity, Provider::Container,
                 Provider::InstanceMetadata};
    else
        order = {options.provider};
    std::string tried;
    for (Provider p : order) {
        try {
            return resolve_one(p, options);
        } catch (const NotSetUp &skip) {
            tried += std::string(tried.empty() ? "" : "; ") + provider_name(p) + ": " + message_text(skip.why);
        } catch (const Error &e) {
            // Set up but failing: the SDKs stop here too, rather than fall
            // back to credentials the administrator did not mean.
            throw Error(e.kind(),
                        "storage backend " + quoted(options.backend) + " found no S3 credentials: " + e.what(),
                        tried.empty() ? e.detail() : "passed over: " + tried, e.hint());
        }
    }
    throw Error(ErrorKind::NotConfigured, "storage backend " + quoted(options.backend) + " found no S3 credentials",
                "tried " + tried,
                "Give access_key_id and secret_access_key, or set up one of the providers in the database "
                "server's environment.");
}

const sigv4::Credentials &CredentialCache::get(int64_t now, bool *renewed) {
    *renewed = false;
    if (current_ && current_->expiration) {
        if (due_for_refresh(now, fetched_at_, *current_->expiration)) {
            try {
                current_ = resolve(options_);
                fetched_at_ = now;
                *renewed = true;
            } catch (const Error &) {
                // The SDKs keep using credentials that are still valid.
                if (now >= *current_->expiration) throw;
            }
        }
    }
    if (!current_) {
        current_ = resolve(options_);
        fetched_at_ = now;
        *renewed = true;
    }
    return current_->credentials;
}

}  // namespace so::aws
