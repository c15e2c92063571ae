#include "core/s3_post_policy.hpp"

#include <cstdio>
#include <ctime>

#include "core/utf8.hpp"

namespace so::s3post {

namespace {

void append_u_escape(std::string &out, unsigned unit) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", unit);
    out += buf;
}

}  // namespace

void append_python_json_string(std::string &out, std::string_view s) {
    out += '"';
    while (!s.empty()) {
        uint32_t cp;
        size_t n = utf8_sequence(s, &cp);
        if (n == 0) {  // not UTF-8: never from our callers; keep the output valid
            cp = 0xFFFD;
            n = 1;
        }
        s.remove_prefix(n);
        switch (cp) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (cp < 0x20 || (cp >= 0x7f && cp <= 0xFFFF)) {
                    append_u_escape(out, cp);
                } else if (cp > 0xFFFF) {
                    cp -= 0x10000;
                    append_u_escape(out, 0xD800 + (cp >> 10));
                    append_u_escape(out, 0xDC00 + (cp & 0x3FF));
                } else {
                    out += static_cast<char>(cp);
                }
        }
    }
    out += '"';
}

std::string policy_json(int64_t expires_at, const std::vector<Condition> &conditions) {
    char expiration[32];
    time_t t = static_cast<time_t>(expires_at);
    struct tm tm;
    gmtime_r(&t, &tm);
    std::strftime(expiration, sizeof expiration, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string out = "{\"expiration\": \"";
    out += expiration;
    out += "\", \"conditions\": [";
    bool first = true;
    for (const auto &c : conditions) {
        if (!first) out += ", ";
        first = false;
        switch (c.kind) {
            case Condition::Kind::Equals:
                out += '{';
                append_python_json_string(out, c.name);
                out += ": ";
                append_python_json_string(out, c.value);
                out += '}';
                break;
            case Condition::Kind::StartsWith:
                out += "[\"starts-with\", ";
                append_python_json_string(out, "$" + c.name);
                out += ", ";
                append_python_json_string(out, c.value);
                out += ']';
                break;
            case Condition::Kind::LengthRange:
                out += "[\"content-length-range\", " + std::to_string(c.min) + ", " + std::to_string(c.max) + "]";
                break;
        }
    }
    out += "]}";
    return out;
}

}  // namespace so::s3post
