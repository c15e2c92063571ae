// Values HTTP object stores send and take, read and written the same way
// for every store: dates, entity tags, download names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace so::http {

// "Sun, 06 Nov 1994 08:49:37 GMT" (HTTP dates) as seconds since the
// epoch, independent of the locale; nullopt when absent or malformed.
std::optional<double> parse_http_date(const std::string *value);

// "2024-01-02T03:04:05.000Z" (ISO 8601, UTC, as listings give it) as
// seconds since the epoch; 0 when malformed.
double parse_iso8601(const std::string &value);

// "2024-01-02T03:04:05Z" for seconds since the epoch.
std::string iso8601(int64_t unix_seconds);

// An entity tag without its quotes ("" when absent).
std::string strip_quotes(const std::string *etag);

// attachment; filename="report.pdf"; filename*=UTF-8''report.pdf
std::string attachment_disposition(const std::string &name);

bool printable_ascii(const std::string &s);

using HeaderList = std::vector<std::pair<std::string, std::string>>;  // names lowercase, as received

// The value of the first header named name, or nullptr.
const std::string *find_header(const HeaderList &headers, std::string_view name);
// A header value fit to be an object attribute: present, at most 1 KiB of
// printable ASCII, as sent.
std::optional<std::string> printable_header(const HeaderList &headers, std::string_view name);

}  // namespace so::http
