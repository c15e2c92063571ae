#include "core/backend_config.hpp"

#include <climits>
#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/network_policy.hpp"
#include "core/sigv4.hpp"
#include "core/uri.hpp"

namespace so {

namespace {

[[noreturn]] void invalid(const std::string &message, std::string hint = {}) {
    throw Error(ErrorKind::InvalidParameter, message, {}, std::move(hint));
}

constexpr const char *kSchemeHint =
    "Use file:///absolute/directory, osfs://directory (relative to the data directory), "
    "s3://bucket/prefix, gs://bucket/prefix or az://container/prefix.";

bool azure_scheme(std::string_view scheme) {
    return scheme == "az" || scheme == "azure" || scheme == "abfs" || scheme == "abfss";
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Decodes %XX escapes of a file URL path; rejects NUL and control bytes.
std::string percent_decode_path(std::string_view s) {
    auto decoded = uri::decode(s);
    if (!decoded) invalid("invalid percent-escape in backend URL");
    for (unsigned char c : *decoded)
        if (c < 0x20 || c == 0x7f) invalid("backend URL path contains a control character");
    return *decoded;
}

// Collapses repeated slashes and drops a trailing slash and "." segments.
std::string normalize_directory(const std::string &path) {
    std::string out;
    size_t i = 0;
    while (i < path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string::npos) j = path.size();
        std::string segment = path.substr(i, j - i);
        if (!segment.empty() && segment != ".") {
            if (segment == "..") invalid("backend directory must not contain \"..\" segments");
            out += '/';
            out += segment;
        }
        i = j + 1;
    }
    if (out.empty()) invalid("backend directory must not be the file system root");
    return out;
}

// realpath of the longest existing prefix of path, with the rest appended:
// where path leads once its symbolic links are followed.
std::string resolved_path(const std::string &path) {
    std::string existing = path, rest;
    for (;;) {
        char *real = ::realpath(existing.c_str(), nullptr);
        if (real) {
            std::string out(real);
            std::free(real);
            if (out == "/") out.clear();
            return out + rest;
        }
        size_t slash = existing.rfind('/');
        if (slash == std::string::npos || existing.size() <= 1) return path;
        rest = existing.substr(slash) + rest;
        existing = slash == 0 ? "/" : existing.substr(0, slash);
    }
}

// Names at the top of a data directory that belong to PostgreSQL.
bool postgres_owned_name(const std::string &name) {
    static const char *const kNames[] = {"base", "global", "log", "PG_VERSION", "current_logfiles", "postgresql.conf",
                                         "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf", "postmaster.pid",
                                         "postmaster.opts", "backup_label", "tablespace_map", "standby.signal",
                                         "recovery.signal"};
    if (name.rfind("pg_", 0) == 0 || name.rfind("PG_", 0) == 0) return true;
    for (const char *n : kNames)
        if (name == n) return true;
    return false;
}

// A backend that writes the data directory would let its users rewrite
// the server's configuration (postgresql.auto.conf) or its data files.
void check_outside_postgres_files(const std::string &root, std::string_view data_dir) {
    if (data_dir.empty()) return;
    std::string data = resolved_path(std::string(data_dir)), dir = resolved_path(root);
    auto refuse = [](const std::string &why) {
        throw Error(ErrorKind::PermissionDenied, "the directory of a local backend " + why, {},
                    "Use a directory of its own, such as file:///srv/files or osfs://./stored_objects.");
    };
    if (data == dir || data.rfind(dir + "/", 0) == 0) refuse("must not be or contain the data directory");
    if (dir.rfind(data + "/", 0) == 0) {
        std::string first = dir.substr(data.size() + 1);
        first = first.substr(0, first.find('/'));
        if (postgres_owned_name(first)) refuse("must not be inside PostgreSQL's own files in the data directory");
    }
}

void parse_local_url(const std::string &scheme, std::string_view rest, std::string_view data_dir,
                     LocalConfig &local) {
    if (rest.find_first_of("?#") != std::string_view::npos)
        invalid("a " + scheme + " backend URL takes no query or fragment");
    std::string path;
    if (scheme == "file") {
        // file:///dir or file://localhost/dir
        if (rest.substr(0, 9) == "localhost") rest.remove_prefix(9);
        if (rest.empty() || rest[0] != '/')
            invalid("a file backend URL must name an absolute directory",
                    "Write it as file:///absolute/directory.");
        path = percent_decode_path(rest);
    } else {  // osfs: the form advanced-alchemy documents, osfs://./storage/local
        path = percent_decode_path(rest);
        if (path.empty()) invalid("an osfs backend URL must name a directory");
        if (path[0] != '/') path = std::string(data_dir) + "/" + path;
    }
    local.root = normalize_directory(path);
    check_outside_postgres_files(local.root, data_dir);
}

bool valid_bucket_name(std::string_view b) {
    if (b.size() < 3 || b.size() > 63) return false;
    for (char c : b)
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
              c == '-' || c == '.'))
            return false;
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    return alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string_view::npos;
}

// GCS bucket names may also hold '_'.
bool valid_gcs_bucket_name(std::string_view b) {
    std::string s3_form(b);
    std::replace(s3_form.begin(), s3_form.end(), '_', '-');
    return valid_bucket_name(s3_form) && b.front() != '_' && b.back() != '_';
}

void parse_s3_url(const std::string &scheme, std::string_view rest, S3Config &s3) {
    if (rest.find_first_of("?#") != std::string_view::npos)
        invalid("an " + scheme + " backend URL takes no query or fragment");
    size_t slash = rest.find('/');
    std::string_view bucket = rest.substr(0, slash);
    if (bucket.find('@') != std::string_view::npos)
        invalid("an " + scheme + " backend URL must not contain credentials",
                "Give access keys as options, never in the URL.");
    if (s3.gcs ? !valid_gcs_bucket_name(bucket) : !valid_bucket_name(bucket))
        invalid(std::string(s3.gcs ? "invalid GCS" : "invalid S3") + " bucket name " + quoted(std::string(bucket)),
                s3.gcs ? "Bucket names have 3 to 63 characters: lowercase letters, digits, '.', '-' and '_'."
                       : "Bucket names have 3 to 63 characters: lowercase letters, digits, '.' and '-'.");
    s3.bucket = std::string(bucket);
    std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    s3.prefix = prefix;
}

// Container names: 3 to 63 lowercase letters, digits and single hyphens,
// starting and ending with a letter or digit.
bool valid_container_name(std::string_view c) {
    if (c.size() < 3 || c.size() > 63 || c.front() == '-' || c.back() == '-' ||
        c.find("--") != std::string_view::npos)
        return false;
    return std::all_of(c.begin(), c.end(), [](char ch) {
        return std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) ||
               ch == '-';
    });
}

// Account names: 3 to 24 lowercase letters and digits.
bool valid_account_name(std::string_view a) {
    return a.size() >= 3 && a.size() <= 24 && std::all_of(a.begin(), a.end(), [](char ch) {
               return std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch));
           });
}

// az://container/prefix and azure://container/prefix (the account is an
// option), or abfs[s]://container@account.dfs.core.windows.net/prefix.
void parse_azure_url(const std::string &scheme, std::string_view rest, AzureConfig &az) {
    if (rest.find_first_of("?#") != std::string_view::npos)
        invalid("an " + scheme + " backend URL takes no query or fragment");
    size_t slash = rest.find('/');
    std::string_view container = rest.substr(0, slash);
    if (scheme == "abfs" || scheme == "abfss") {
        size_t at = container.find('@');
        std::string_view host = at == std::string_view::npos ? std::string_view() : container.substr(at + 1);
        size_t dot = host.find('.');
        std::string_view domain = dot == std::string_view::npos ? std::string_view() : host.substr(dot);
        if (domain != ".dfs.core.windows.net" && domain != ".blob.core.windows.net")
            invalid("an " + scheme + " backend URL must be " + scheme +
                    "://container@account.dfs.core.windows.net/prefix");
        az.account = std::string(host.substr(0, dot));
        if (!valid_account_name(az.account))
            invalid("invalid Azure storage account name " + quoted(az.account),
                    "Account names have 3 to 24 lowercase letters and digits.");
        container = container.substr(0, at);
    } else if (container.find('@') != std::string_view::npos) {
        invalid("an " + scheme + " backend URL must not contain credentials or an account",
                "Write az://container/prefix and give the account as the option \"account\".");
    }
    if (!valid_container_name(container))
        invalid("invalid Azure container name " + quoted(std::string(container)),
                "Container names have 3 to 63 characters: lowercase letters, digits and single '-'.");
    az.container = std::string(container);
    std::string prefix = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    az.prefix = prefix;
}

// ---- options ---------------------------------------------------------------

using Setter = std::function<void(const json::Value &)>;

struct OptionTable {
    const char *backend_name;
    std::map<std::string, Setter> setters;
};

const json::Value &expect(const json::Value &v, json::Value::Kind kind, const std::string &name) {
    if (v.kind != kind)
        invalid("option " + quoted(name) + " must be " + json::kind_name(kind) + ", not " +
                json::kind_name(v.kind));
    return v;
}

Setter string_option(const std::string &name, std::function<void(const std::string &)> set) {
    return [name, set](const json::Value &v) {
        const std::string &s = expect(v, json::Value::Kind::String, name).text;
        if (s.empty()) invalid("option " + quoted(name) + " must not be empty");
        set(s);
    };
}

Setter bool_option(const std::string &name, std::function<void(bool)> set) {
    return [name, set](const json::Value &v) { set(expect(v, json::Value::Kind::Bool, name).boolean); };
}

Setter int_option(const std::string &name, int64_t min, int64_t max, std::function<void(int64_t)> set) {
    return [name, min, max, set](const json::Value &v) {
        auto n = json::as_int64(expect(v, json::Value::Kind::Number, name));
        if (!n || *n < min || *n > max)
            invalid("option " + quoted(name) + " must be a whole number from " + std::to_string(min) +
                    " to " + std::to_string(max));
        set(*n);
    };
}

// An http(s) URL without credentials, query or fragment, with a host;
// returns it without a trailing slash.
std::string http_url(const std::string &name, const std::string &s, bool allow_path) {
    std::string l = lower(s);
    size_t host_start = l.rfind("https://", 0) == 0 ? 8 : l.rfind("http://", 0) == 0 ? 7 : 0;
    if (host_start == 0) invalid("option " + quoted(name) + " must be an http:// or https:// URL");
    if (s.find_first_of("?#@ ", host_start) != std::string::npos)
        invalid("option " + quoted(name) +
                " must not contain credentials, spaces, a query or a fragment");
    for (unsigned char c : s)
        if (c < 0x21 || c >= 0x7f) invalid("option " + quoted(name) + " must be printable ASCII (percent-encode the rest)");
    size_t path_start = s.find('/', host_start);
    std::string authority = s.substr(host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
    try {
        sigv4::Endpoint::parse(s.substr(0, host_start) + authority);  // host and port, checked as for endpoints
    } catch (const Error &) {
        invalid("option " + quoted(name) + " has no valid host");
    }
    if (!allow_path && path_start != std::string::npos && path_start + 1 < s.size())
        invalid("option " + quoted(name) + " must not contain a path");
    std::string out = s;
    while (out.size() > host_start && out.back() == '/') out.pop_back();
    return out;
}

// The media type of a Content-Type value, lowercase, without parameters.
std::string media_type_of(std::string_view content_type) {
    std::string_view type = content_type.substr(0, content_type.find(';'));
    while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
    while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
    return lower(type);
}

// One entry of allowed_content_types: type/subtype or type/*, no parameters.
std::string allowed_type(const json::Value &v) {
    if (v.kind != json::Value::Kind::String)
        invalid(std::string("option \"allowed_content_types\" must list strings, not ") + json::kind_name(v.kind));
    std::string type = lower(v.text);
    size_t slash = type.find('/');
    auto token = [](std::string_view t) {
        return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
        });
    };
    if (slash == std::string::npos || !token(type.substr(0, slash)) ||
        !(type.substr(slash + 1) == "*" || token(type.substr(slash + 1))))
        invalid("option \"allowed_content_types\" has " + quoted(v.text) + ", which is not a media type",
                "Entries are type/subtype or type/*, such as \"image/*\" or \"application/pdf\", without parameters.");
    return type;
}

// Options every kind of backend takes.
void add_common_options(OptionTable &table, BackendConfig &config) {
    table.setters.emplace("public_base_url", string_option("public_base_url", [&config](const std::string &s) {
                              config.public_base_url = http_url("public_base_url", s, true);
                          }));
    table.setters.emplace("max_size", int_option("max_size", 0, int64_t(5) << 40,
                                                 [&config](int64_t n) { config.max_size = n; }));
    table.setters.emplace("allowed_content_types", [&config](const json::Value &v) {
        expect(v, json::Value::Kind::Array, "allowed_content_types");
        if (v.items.empty())
            invalid("option \"allowed_content_types\" must not be empty", "Leave the option out to allow any type.");
        config.allowed_content_types.clear();
        for (const auto &item : v.items) config.allowed_content_types.push_back(allowed_type(item));
    });
}

// Options every object store backend takes (S3, GCS, Azure): transport,
// retries, the CA, default attributes.
template <class Config>
void add_network_options(OptionTable &table, Config &c) {
    auto &t = table.setters;
    t.emplace("allow_http", bool_option("allow_http", [&c](bool b) { c.allow_http = b; }));
    t.emplace("max_concurrency", int_option("max_concurrency", 1, 32, [&c](int64_t n) { c.max_concurrency = int(n); }));
    t.emplace("connect_timeout_ms",
              int_option("connect_timeout_ms", 1, 3600000, [&c](int64_t n) { c.connect_timeout_ms = int(n); }));
    t.emplace("request_timeout_ms",
              int_option("request_timeout_ms", 1, 86400000, [&c](int64_t n) { c.request_timeout_ms = int(n); }));
    t.emplace("max_retries", int_option("max_retries", 0, 10, [&c](int64_t n) { c.max_retries = int(n); }));
    t.emplace("ca_file", string_option("ca_file", [&c](const std::string &s) {
                  if (s[0] != '/') invalid("option \"ca_file\" must be an absolute path");
                  c.ca_file = s;
              }));
    t.emplace("attributes", [&c](const json::Value &v) {
        expect(v, json::Value::Kind::Object, "attributes");
        c.default_attributes = parse_attributes(json::write(v), "option \"attributes\"");
    });
}

OptionTable local_options(LocalConfig &c) {
    return {"file",
            {{"base_url",
              string_option("base_url",
                            [&c](const std::string &s) { c.base_url = http_url("base_url", s, true); })},
             {"sign_scheme", string_option("sign_scheme",
                                           [&c](const std::string &s) {
                                               if (s == "hmac") c.sign_scheme = LocalSignScheme::Hmac;
                                               else if (s == "nginx_secure_link")
                                                   c.sign_scheme = LocalSignScheme::NginxSecureLink;
                                               else
                                                   invalid("option \"sign_scheme\" must be \"hmac\" or "
                                                           "\"nginx_secure_link\"");
                                           })},
             {"signing_secret", string_option("signing_secret",
                                              [&c](const std::string &s) {
                                                  if (s.size() < 16)
                                                      invalid("option \"signing_secret\" must have at least 16 characters");
                                                  c.signing_secret = s;
                                              })},
             {"max_expires_in", int_option("max_expires_in", 1, int64_t(366) * 24 * 3600,
                                           [&c](int64_t n) { c.max_expires_in = n; })},
             {"group_access", bool_option("group_access", [&c](bool b) { c.group_access = b; })}}};
}

OptionTable s3_options(S3Config &c) {
    auto set_string = [](std::string &field, const char *name) {
        return string_option(name, [&field](const std::string &s) { field = s; });
    };
    return {"s3",
            {{"endpoint", string_option("endpoint",
                                        [&c](const std::string &s) { c.endpoint = http_url("endpoint", s, false); })},
             {"region", set_string(c.region, "region")},
             {"access_key_id", set_string(c.access_key_id, "access_key_id")},
             {"secret_access_key", set_string(c.secret_access_key, "secret_access_key")},
             {"session_token", set_string(c.session_token, "session_token")},
             {"credentials", string_option("credentials",
                                           [&c](const std::string &s) {
                                               static const std::pair<const char *, CredentialSource> kSources[] = {
                                                   {"env", CredentialSource::Environment},
                                                   {"default", CredentialSource::Chain},
                                                   {"web_identity", CredentialSource::WebIdentity},
                                                   {"container", CredentialSource::Container},
                                                   {"instance", CredentialSource::InstanceMetadata}};
                                               for (const auto &[name, source] : kSources)
                                                   if (s == name) {
                                                       c.credential_source = source;
                                                       return;
                                                   }
                                               if (s.rfind("file:", 0) == 0 && s.size() > 6 && s[5] == '/') {
                                                   c.credential_source = CredentialSource::File;
                                                   c.credentials_file = s.substr(5);
                                                   return;
                                               }
                                               invalid("option \"credentials\" must be \"default\", \"env\", "
                                                       "\"file:/absolute/path\", \"web_identity\", \"container\" "
                                                       "or \"instance\"");
                                           })},
             {"profile", string_option("profile",
                                       [&c](const std::string &s) {
                                           c.profile = s;
                                           c.profile_set = true;
                                       })},
             {"path_style", bool_option("path_style", [&c](bool b) { c.path_style = b; })},
             {"part_size", int_option("part_size", int64_t(5) << 20, int64_t(5) << 30,
                                      [&c](int64_t n) { c.part_size = n; })},
             {"sse", string_option("sse",
                                   [&c](const std::string &s) {
                                       if (s != "AES256" && s != "aws:kms")
                                           invalid("option \"sse\" must be \"AES256\" or \"aws:kms\"",
                                                   "For a key of your own (SSE-C) use sse_customer_key.");
                                       c.sse = s;
                                   })},
             {"sse_kms_key_id", set_string(c.sse_kms_key_id, "sse_kms_key_id")},
             {"sse_customer_key", string_option("sse_customer_key", [&c](const std::string &s) {
                  auto key = crypto::base64_decode(s);
                  if (!key || key->size() != 32)
                      invalid("option \"sse_customer_key\" must be a 256-bit key in base64 (44 characters)",
                              "Make one with: openssl rand -base64 32");
                  c.sse_customer_key = *key;
                  c.sse_customer_key_md5 = crypto::base64(crypto::md5(*key));
              })}}};
}

OptionTable azure_options(AzureConfig &c) {
    return {"azure",
            {{"account", string_option("account",
                                       [&c](const std::string &s) {
                                           if (!valid_account_name(s))
                                               invalid("option \"account\" must be a storage account name",
                                                       "Account names have 3 to 24 lowercase letters and digits.");
                                           c.account = s;
                                       })},
             {"account_key", string_option("account_key",
                                           [&c](const std::string &s) {
                                               auto key = crypto::base64_decode(s);
                                               if (!key || key->size() < 16)
                                                   invalid("option \"account_key\" must be the account key in base64",
                                                           "Copy it as the portal or `az storage account keys list` "
                                                           "shows it.");
                                               c.account_key = s;
                                           })},
             {"sas_token", string_option("sas_token",
                                         [&c](const std::string &s) {
                                             std::string t = s[0] == '?' ? s.substr(1) : s;
                                             bool printable = std::all_of(t.begin(), t.end(), [](char ch) {
                                                 return ch > 0x20 && ch < 0x7f && ch != '#';
                                             });
                                             if (!printable || t.find("sig=") == std::string::npos ||
                                                 t.find("sv=") == std::string::npos)
                                                 invalid("option \"sas_token\" must be a SAS token (sv=...&sig=...)");
                                             c.sas_token = t;
                                             c.auth = AzureAuth::SasToken;
                                         })},
             {"endpoint", string_option("endpoint",
                                        [&c](const std::string &s) { c.endpoint = http_url("endpoint", s, true); })},
             {"credentials", string_option("credentials",
                                           [&c](const std::string &s) {
                                               if (s != "default" && s != "client_secret" &&
                                                   s != "client_certificate" && s != "workload_identity" &&
                                                   s != "managed_identity")
                                                   invalid("option \"credentials\" of an Azure backend must be "
                                                           "\"default\", \"client_secret\", \"client_certificate\", "
                                                           "\"workload_identity\" or \"managed_identity\"");
                                               c.auth = AzureAuth::Token;
                                               c.token_provider = s;
                                           })},
             {"client_id", string_option("client_id", [&c](const std::string &s) { c.client_id = s; })},
             {"block_size", int_option("block_size", int64_t(1) << 20, int64_t(4000) << 20,
                                       [&c](int64_t n) { c.block_size = n; })}}};
}

// Whether an endpoint names this machine: nothing sent to it crosses a network.
bool loopback_endpoint(const std::string &endpoint) {
    std::string host = sigv4::Endpoint::parse(endpoint).host;
    if (host.rfind("[::1]", 0) == 0) return true;
    host = host.substr(0, host.find(':'));
    return host == "localhost" || host.rfind("127.", 0) == 0;
}

void apply_options(const OptionTable &table, const json::Value &options) {
    for (const auto &m : options.members) {
        auto it = table.setters.find(m.key);
        if (it == table.setters.end()) {
            std::string names;
            for (const auto &entry : table.setters) names += (names.empty() ? "" : ", ") + entry.first;
            invalid("unknown option " + quoted(m.key) + " for " + table.backend_name + " backends",
                    "Valid options: " + names + ".");
        }
        if (!m.value.is_null()) it->second(m.value);
    }
}

void check_s3_rules(const S3Config &c, const json::Value &options) {
    if (c.credential_source != CredentialSource::Options &&
        (!c.access_key_id.empty() || !c.secret_access_key.empty() || !c.session_token.empty()))
        invalid("option \"credentials\" excludes access_key_id, secret_access_key and session_token");
    if (c.credential_source != CredentialSource::File && c.credential_source != CredentialSource::Chain &&
        options.find("profile") && !options.find("profile")->is_null())
        invalid("option \"profile\" needs \"credentials\": \"file:/path\" or \"default\"");
    if (c.access_key_id.empty() != c.secret_access_key.empty())
        invalid("options \"access_key_id\" and \"secret_access_key\" must be given together");
    if (!c.session_token.empty() && c.access_key_id.empty())
        invalid("option \"session_token\" needs access_key_id and secret_access_key");
    if (c.endpoint && lower(*c.endpoint).rfind("http://", 0) == 0 && !c.allow_http)
        invalid("a plain http:// endpoint needs the option \"allow_http\": true",
                "Requests and credentials would travel unencrypted.");
    if (!c.sse_kms_key_id.empty() && c.sse != "aws:kms")
        invalid("option \"sse_kms_key_id\" needs \"sse\": \"aws:kms\"");
    if (!c.sse_customer_key.empty() && !c.sse.empty())
        invalid("options \"sse\" and \"sse_customer_key\" exclude each other",
                "An object is encrypted either by the store's keys or by yours.");
    // SSE-C sends the key in every request's headers: S3 and MinIO refuse
    // it over plain HTTP, and so do we, unless nothing leaves the machine.
    if (!c.sse_customer_key.empty() && c.endpoint && lower(*c.endpoint).rfind("http://", 0) == 0 &&
        !loopback_endpoint(*c.endpoint))
        invalid("option \"sse_customer_key\" needs an https:// endpoint",
                "The key travels in the headers of every request.");
}

void check_gcs_rules(const S3Config &c) {
    if (!c.gcs_credentials.empty() && !c.access_key_id.empty())
        invalid("option \"credentials\" excludes access_key_id and secret_access_key");
    if (c.gcs_credentials == "service_account" && c.service_account_file.empty())
        invalid("\"credentials\": \"service_account\" needs the option \"service_account_file\"");
}

void check_azure_rules(const AzureConfig &c) {
    if (c.account.empty())
        invalid("an Azure backend needs the option \"account\"", "The storage account that holds the container.");
    if (int(!c.account_key.empty()) + int(!c.sas_token.empty()) + int(c.auth == AzureAuth::Token) != 1)
        invalid("an Azure backend needs exactly one of the options \"account_key\", \"sas_token\" and \"credentials\"");
    if (!c.client_id.empty() && c.auth != AzureAuth::Token)
        invalid("option \"client_id\" needs \"credentials\"");
    if (c.endpoint && lower(*c.endpoint).rfind("http://", 0) == 0 && !c.allow_http)
        invalid("a plain http:// endpoint needs the option \"allow_http\": true",
                "Requests and credentials would travel unencrypted.");
}

json::Value parse_options(std::string_view options_json) {
    json::Value options;
    try {
        options = json::parse(options_json);
    } catch (const Error &e) {
        invalid(std::string("backend options are not valid JSON: ") + e.what());
    }
    if (options.kind != json::Value::Kind::Object)
        invalid(std::string("backend options must be a JSON object, not ") + json::kind_name(options.kind));
    return options;
}

}  // namespace

void validate_backend_key(std::string_view key) {
    bool ok = !key.empty() && key.size() <= 63 &&
              std::all_of(key.begin(), key.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
              });
    if (!ok)
        invalid("invalid backend key " + quoted(std::string(key)),
                "A backend key has 1 to 63 characters: letters, digits, '_', '-' and '.'.");
}

std::string url_scheme(std::string_view url) {
    size_t sep = url.find("://");
    if (sep == std::string_view::npos || sep == 0)
        invalid("backend URL has no scheme", kSchemeHint);
    std::string scheme = lower(url.substr(0, sep));
    if (scheme != "file" && scheme != "osfs" && scheme != "s3" && scheme != "gs" && !azure_scheme(scheme)) {
        bool plain = std::all_of(scheme.begin(), scheme.end(),
                                 [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+'; });
        invalid(plain ? "unsupported backend URL scheme " + quoted(scheme) : "backend URL has no valid scheme",
                kSchemeHint);
    }
    return scheme;
}

BackendConfig parse_backend_config(std::string_view key, std::string_view url,
                                   std::string_view options_json, std::string_view data_dir) {
    validate_backend_key(key);
    BackendConfig config;
    config.key = std::string(key);
    std::string scheme = url_scheme(url);
    std::string_view rest = url.substr(scheme.size() + 3);
    json::Value options = parse_options(options_json);
    if (scheme == "s3" || scheme == "gs") {
        config.kind = BackendKind::S3;
        config.s3.gcs = scheme == "gs";
        parse_s3_url(scheme, rest, config.s3);
        OptionTable table = s3_options(config.s3);
        add_network_options(table, config.s3);
        if (config.s3.gcs) {
            config.s3.region = "auto";
            table.backend_name = "gs";
            // What GCS's XML API has no S3 form of, or what an HMAC key
            // backend cannot use.
            for (const char *name : {"sse", "sse_kms_key_id", "sse_customer_key", "credentials", "profile", "region",
                                     "session_token"})
                table.setters.erase(name);
            table.setters.emplace("credentials", string_option("credentials", [&config](const std::string &s) {
                                      if (s != "default" && s != "service_account" && s != "metadata")
                                          invalid("option \"credentials\" of a gs backend must be \"default\", "
                                                  "\"service_account\" or \"metadata\"");
                                      config.s3.gcs_credentials = s;
                                  }));
            table.setters.emplace("service_account_file",
                                  string_option("service_account_file", [&config](const std::string &s) {
                                      if (s[0] != '/') invalid("option \"service_account_file\" must be an absolute path");
                                      config.s3.service_account_file = s;
                                  }));
        }
        add_common_options(table, config);
        apply_options(table, options);
        check_s3_rules(config.s3, options);
        if (config.s3.gcs) check_gcs_rules(config.s3);
    } else if (azure_scheme(scheme)) {
        config.kind = BackendKind::Azure;
        parse_azure_url(scheme, rest, config.azure);
        OptionTable table = azure_options(config.azure);
        add_network_options(table, config.azure);
        add_common_options(table, config);
        apply_options(table, options);
        check_azure_rules(config.azure);
    } else {
        config.kind = BackendKind::Local;
        parse_local_url(scheme, rest, data_dir, config.local);
        OptionTable table = local_options(config.local);
        add_common_options(table, config);
        apply_options(table, options);
    }
    return config;
}

void check_size_limit(const BackendConfig &config, uint64_t size) {
    if (config.max_size && size > static_cast<uint64_t>(*config.max_size))
        throw Error(ErrorKind::LimitExceeded,
                    "an object of " + std::to_string(size) + " bytes is larger than backend " + quoted(config.key) +
                        " allows (max_size " + std::to_string(*config.max_size) + " bytes)");
}

void check_content_type_allowed(const BackendConfig &config, std::string_view content_type) {
    if (config.allowed_content_types.empty()) return;
    std::string type = media_type_of(content_type);
    std::string family = type.substr(0, type.find('/')) + "/*";
    for (const auto &allowed : config.allowed_content_types)
        if (allowed == type || allowed == family) return;
    std::string list;
    for (const auto &allowed : config.allowed_content_types) list += (list.empty() ? "" : ", ") + allowed;
    throw Error(ErrorKind::InvalidParameter,
                "content type " + quoted(std::string(content_type)) + " is not allowed by backend " +
                    quoted(config.key) + " (allowed_content_types: " + list + ")");
}

void check_limits(const BackendConfig &config, uint64_t size, std::string_view content_type) {
    check_size_limit(config, size);
    check_content_type_allowed(config, content_type);
}

std::optional<std::string> public_url(const BackendConfig &config, std::string_view key) {
    if (!config.public_base_url) return std::nullopt;
    std::string url = *config.public_base_url + "/";
    uri::encode(key, true, url);
    return url;
}

bool url_grants_file_access(std::string_view url) {
    size_t sep = url.find("://");
    std::string scheme = sep == std::string_view::npos ? "" : lower(url.substr(0, sep));
    return scheme != "s3" && scheme != "gs" && !azure_scheme(scheme);
}

std::string superuser_only_setting(const BackendConfig &config) {
    auto internal_endpoint = [](const std::optional<std::string> &endpoint) {
        if (!endpoint) return false;
        std::string host = sigv4::Endpoint::parse(endpoint->substr(0, endpoint->find('/', endpoint->find("//") + 2))).host;
        host = host.substr(0, host.rfind(':') == std::string::npos || host.back() == ']' ? host.size() : host.rfind(':'));
        return !net::restricted_may_use_host(host);
    };
    if (config.kind == BackendKind::Azure) {
        const AzureConfig &a = config.azure;
        if (a.auth == AzureAuth::Token) return "\"credentials\": \"" + a.token_provider + "\"";
        if (!a.ca_file.empty()) return "\"ca_file\"";  // a file of the server's
        return internal_endpoint(a.endpoint) ? "an endpoint at an internal address" : "";
    }
    if (config.kind != BackendKind::S3) return "a file system backend";
    const S3Config &c = config.s3;
    // Credentials of the server's own: its environment, files, role.
    switch (c.credential_source) {
        case CredentialSource::Options:
            if (!c.gcs_credentials.empty()) return "\"credentials\": \"" + c.gcs_credentials + "\"";
            if (!c.service_account_file.empty()) return "\"service_account_file\"";
            if (!c.ca_file.empty()) return "\"ca_file\"";
            break;
        case CredentialSource::Environment: return "\"credentials\": \"env\"";
        case CredentialSource::File: return "\"credentials\": \"file:...\"";
        case CredentialSource::Chain: return "\"credentials\": \"default\"";
        case CredentialSource::WebIdentity: return "\"credentials\": \"web_identity\"";
        case CredentialSource::Container: return "\"credentials\": \"container\"";
        case CredentialSource::InstanceMetadata: return "\"credentials\": \"instance\"";
    }
    return internal_endpoint(c.endpoint) ? "an endpoint at an internal address" : "";
}

const std::vector<std::string> &secret_option_names() {
    static const std::vector<std::string> names = {"secret_access_key", "session_token", "signing_secret",
                                                   "sse_customer_key", "account_key", "sas_token"};
    return names;
}

std::string complete_backend_options(std::string_view url, std::string_view options_json) {
    json::Value options = parse_options(options_json);
    std::string scheme = url_scheme(url);
    if ((scheme == "file" || scheme == "osfs") && !options.find("signing_secret")) {
        json::Member secret;
        secret.key = "signing_secret";
        secret.value.kind = json::Value::Kind::String;
        secret.value.text = crypto::hex(crypto::random_bytes(32));
        auto pos = std::lower_bound(options.members.begin(), options.members.end(), secret.key,
                                    [](const json::Member &m, const std::string &k) { return m.key < k; });
        options.members.insert(pos, std::move(secret));
    }
    return json::write(options);
}

}  // namespace so
