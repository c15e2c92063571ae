// Credentials for the S3 backend that are not written in SQL: the
// database server's environment, or a file in the AWS shared-credentials
// format (the one the AWS CLI and SDKs read), readable only by the
// server's OS user.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/sigv4.hpp"

namespace so {

// The content of a file only its owner may read (credentials, tokens):
// Error(PermissionDenied) when others may, Error(NotConfigured) when it
// cannot be read or is above 1 MiB. Messages name the path, never content.
std::string read_private_file(const std::string &path);
// A token file (web identity, container authorization), which Kubernetes
// may mount readable by its group: no mode check; trailing newlines cut.
std::string read_token_file(const std::string &path);

// The name = value pairs of [section] of an INI file in the AWS format;
// nullopt when there is no such section.
std::optional<std::map<std::string, std::string>> read_profile(const std::string &content,
                                                               const std::string &section);

// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
sigv4::Credentials credentials_from_environment();

// aws_access_key_id, aws_secret_access_key and aws_session_token of
// [profile] in the file at path. Throws Error(PermissionDenied) when the
// file is readable by others than its owner, Error(NotConfigured) when it
// or the profile is missing. Messages never show a value from the file.
sigv4::Credentials credentials_from_file(const std::string &path, const std::string &profile);

}  // namespace so
