// Percent-encoding as URLs and S3 signatures need it: unreserved
// characters (A-Z a-z 0-9 - _ . ~) stay, every other byte becomes %XX.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace so::uri {

// keep_slash: leave '/' as is (object keys in a URL path).
std::string encode(std::string_view s, bool keep_slash);
void encode(std::string_view s, bool keep_slash, std::string &out);
// Decodes %XX; nullopt on a malformed escape. '+' stays '+'.
std::optional<std::string> decode(std::string_view s);

}  // namespace so::uri
