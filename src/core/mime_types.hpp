// Content type from a file name's extension, from Debian's /etc/mime.types
// (package media-types), read once per process.
#pragma once

#include <string>
#include <string_view>

namespace so {

constexpr const char *kDefaultContentType = "application/octet-stream";

// The type for the name's extension (case-insensitive), or
// application/octet-stream when it has none or it is unknown.
std::string guess_content_type(std::string_view filename);

// For tests: read a mime.types file from another path.
void load_mime_types(const std::string &path);

}  // namespace so
