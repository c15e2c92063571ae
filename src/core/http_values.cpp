#include "core/http_values.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/uri.hpp"

namespace so::http {

namespace {

int month_number(std::string_view name) {
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i)
        if (name == months[i]) return i;
    return -1;
}

}  // namespace

std::optional<double> parse_http_date(const std::string *value) {
    if (!value) return std::nullopt;
    char month[4] = {};
    struct tm tm = {};
    if (std::sscanf(value->c_str(), "%*3s, %d %3s %d %d:%d:%d", &tm.tm_mday, month, &tm.tm_year, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec) != 6)
        return std::nullopt;
    tm.tm_mon = month_number(month);
    if (tm.tm_mon < 0) return std::nullopt;
    tm.tm_year -= 1900;
    return static_cast<double>(timegm(&tm));
}

double parse_iso8601(const std::string &value) {
    struct tm tm = {};
    double seconds = 0;
    if (std::sscanf(value.c_str(), "%d-%d-%dT%d:%d:%lf", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &seconds) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_sec = static_cast<int>(seconds);
    return static_cast<double>(timegm(&tm)) + (seconds - tm.tm_sec);
}

std::string iso8601(int64_t unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[32];
    std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

std::string strip_quotes(const std::string *etag) {
    if (!etag) return "";
    std::string s = *etag;
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
}

std::string attachment_disposition(const std::string &name) {
    // The plain filename= is for old clients: one '_' per character it cannot carry.
    std::string ascii;
    for (unsigned char c : name) {
        if ((c & 0xC0) == 0x80) continue;  // continuation byte of a UTF-8 character
        ascii += (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '_' : char(c);
    }
    return "attachment; filename=\"" + ascii + "\"; filename*=UTF-8''" + uri::encode(name, false);
}

const std::string *find_header(const HeaderList &headers, std::string_view name) {
    for (const auto &[k, v] : headers)
        if (k == name) return &v;
    return nullptr;
}

std::optional<std::string> printable_header(const HeaderList &headers, std::string_view name) {
    const std::string *v = find_header(headers, name);
    if (!v || v->empty() || v->size() > 1024 || !printable_ascii(*v)) return std::nullopt;
    return *v;
}

bool printable_ascii(const std::string &s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

}  // namespace so::http
