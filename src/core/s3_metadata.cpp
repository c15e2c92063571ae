#include "core/s3_metadata.hpp"

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/utf8.hpp"

namespace so::s3meta {

namespace {

constexpr std::string_view kPrefix = "x-amz-meta-";

bool parses_as_json(const std::string &s) {
    try {
        json::parse(s);
        return true;
    } catch (const Error &) {
        return false;
    }
}

bool plain_ascii(const std::string &s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e) return false;
    // Leading or trailing blanks would be trimmed in transit.
    return s.empty() || (s.front() != ' ' && s.back() != ' ');
}

// JSON text with every non-ASCII character as \u escapes.
std::string ascii_json(const json::Value &v) {
    std::string utf8 = json::write(v), out;
    for (size_t i = 0; i < utf8.size();) {
        unsigned char c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        unsigned cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
        for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
        auto escape = [&out](unsigned unit) {
            char buf[12];
            std::snprintf(buf, sizeof buf, "\\u%04x", unit & 0xFFFF);
            out += buf;
        };
        if (cp >= 0x10000) {
            cp -= 0x10000;
            escape(0xD800 + (cp >> 10));
            escape(0xDC00 + (cp & 0x3FF));
        } else {
            escape(cp);
        }
        i += static_cast<size_t>(len);
    }
    return out;
}

bool valid_name(const std::string &name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) return false;
    return true;
}

}  // namespace

Headers encode(const std::string &metadata_json, const char *store) {
    json::Value object = json::parse(metadata_json);
    Headers headers;
    for (const auto &m : object.members) {
        if (!valid_name(m.key))
            throw Error(ErrorKind::InvalidParameter,
                        "metadata key " + quoted(m.key) + " cannot be stored as " + store + " object metadata",
                        {}, std::string(store) + " metadata keys are lowercase letters, digits, '-', '_' and '.'.");
        const json::Value &v = m.value;
        bool raw = v.kind == json::Value::Kind::String && plain_ascii(v.text) && !parses_as_json(v.text);
        headers.emplace_back(std::string(kPrefix) + m.key, raw ? v.text : ascii_json(v));
    }
    return headers;
}

std::string decode(const Headers &headers) {
    json::Value object;
    object.kind = json::Value::Kind::Object;
    for (const auto &h : headers) {
        if (h.first.compare(0, kPrefix.size(), kPrefix) != 0) continue;
        json::Member m;
        m.key = h.first.substr(kPrefix.size());
        if (!valid_name(m.key)) continue;  // not one we could have written
        try {
            m.value = json::parse(h.second);
        } catch (const Error &) {
            m.value.kind = json::Value::Kind::String;
            // Bytes that are not UTF-8 or are control characters, escaped.
            m.value.text = valid_utf8(h.second) ? h.second : message_text(h.second, 8192);
        }
        object.members.push_back(std::move(m));
    }
    // Canonical: sorted keys.
    return json::write(json::parse(json::write(object)));
}

}  // namespace so::s3meta
