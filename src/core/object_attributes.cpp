#include "core/object_attributes.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/uri.hpp"
#include "core/utf8.hpp"

namespace so {

namespace {

constexpr size_t kMaxHeaderValue = 1024;
constexpr size_t kMaxTags = 10;       // S3's limit per object
constexpr size_t kMaxTagKey = 128;    // characters
constexpr size_t kMaxTagValue = 256;  // characters

[[noreturn]] void invalid(const std::string &message, std::string hint = {}) {
    throw Error(ErrorKind::InvalidParameter, message, {}, std::move(hint));
}

// Length as S3 counts tag characters (UTF-16 code units: a character
// beyond U+FFFF counts two), or nullopt when s is not valid UTF-8.
std::optional<size_t> characters(std::string_view s) {
    size_t count = 0;
    while (!s.empty()) {
        uint32_t cp;
        size_t n = utf8_sequence(s, &cp);
        if (n == 0) return std::nullopt;
        s.remove_prefix(n);
        count += cp > 0xFFFF ? 2 : 1;
    }
    return count;
}

// S3's tag alphabet: letters, digits, white space and + - = . _ : / @;
// letters of any script, so every non-ASCII character is let through.
bool tag_text(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char ch) {
        unsigned char c = static_cast<unsigned char>(ch);
        return c >= 0x80 || std::isalnum(c) || c == ' ' || std::string_view("+-=._:/@").find(ch) != std::string_view::npos;
    });
}

// "\"name\" in attributes", for messages.
std::string named(const std::string &name, const char *what) { return quoted(name) + " in " + what; }

std::string header_value(const json::Value &v, const std::string &name, const char *what) {
    if (v.kind != json::Value::Kind::String)
        invalid(named(name, what) + " must be a string, not " + json::kind_name(v.kind));
    const std::string &s = v.text;
    if (s.empty()) invalid(named(name, what) + " must not be empty");
    if (s.size() > kMaxHeaderValue)
        invalid(named(name, what) + " is longer than " + std::to_string(kMaxHeaderValue) + " bytes");
    for (unsigned char c : s)
        if (c < 0x20 || c >= 0x7f)
            invalid(named(name, what) + " must be printable ASCII",
                    "It becomes an HTTP header; percent-encode other characters (RFC 8187).");
    return s;
}

std::string storage_class(const json::Value &v, const char *what) {
    std::string s = header_value(v, "storage_class", what);
    for (char c : s)
        if (!(std::isupper(static_cast<unsigned char>(c)) || c == '_'))
            invalid(named("storage_class", what) + " must be a storage class name such as STANDARD_IA",
                    "Storage classes are upper-case letters and '_'.");
    return s;
}

Tags tag_set(const json::Value &v, const char *what) {
    if (v.kind != json::Value::Kind::Object)
        invalid(named("tags", what) + " must be an object of strings, not " + json::kind_name(v.kind));
    if (v.members.size() > kMaxTags)
        invalid(named("tags", what) + " has " + std::to_string(v.members.size()) + " tags; at most " +
                std::to_string(kMaxTags) + " are allowed");
    Tags tags;
    for (const auto &m : v.members) {
        if (m.value.kind != json::Value::Kind::String)
            invalid("tag " + quoted(m.key) + " must have a string value, not " + json::kind_name(m.value.kind));
        auto key_length = characters(m.key), value_length = characters(m.value.text);
        if (!key_length || *key_length == 0 || *key_length > kMaxTagKey || !tag_text(m.key))
            invalid("invalid tag key " + quoted(m.key),
                    "A tag key has 1 to 128 characters: letters, digits, spaces and + - = . _ : / @.");
        if (m.key.rfind("aws:", 0) == 0) invalid("tag keys starting with \"aws:\" are reserved by AWS");
        if (!value_length || *value_length > kMaxTagValue || !tag_text(m.value.text))
            invalid("invalid value of tag " + quoted(m.key),
                    "A tag value has at most 256 characters: letters, digits, spaces and + - = . _ : / @.");
        tags.emplace_back(m.key, m.value.text);
    }
    return tags;  // members come sorted by key
}

json::Value string_value(const std::string &s) {
    json::Value v;
    v.kind = json::Value::Kind::String;
    v.text = s;
    return v;
}

json::Value object_of(const std::string &text, const char *what) {
    json::Value v;
    try {
        v = json::parse(text);
    } catch (const Error &e) {
        invalid(std::string(what) + " is not valid JSON: " + e.what());
    }
    if (v.kind != json::Value::Kind::Object)
        invalid(std::string(what) + " must be a JSON object, not " + json::kind_name(v.kind));
    return v;
}

}  // namespace

ObjectAttributes parse_attributes(std::string_view json_text, const char *what) {
    json::Value root = object_of(std::string(json_text), what);
    ObjectAttributes a;
    for (const auto &m : root.members) {
        const std::string &name = m.key;
        if (m.value.is_null()) continue;
        if (name == "cache_control") a.cache_control = header_value(m.value, name, what);
        else if (name == "content_disposition") a.content_disposition = header_value(m.value, name, what);
        else if (name == "content_encoding") a.content_encoding = header_value(m.value, name, what);
        else if (name == "content_language") a.content_language = header_value(m.value, name, what);
        else if (name == "storage_class") a.storage_class = storage_class(m.value, what);
        else if (name == "tags") a.tags = tag_set(m.value, what);
        else if (name == "sse" || name == "sse_kms_key_id")
            invalid(named(name, what) + " is reported by the store, not set per object",
                    "Encrypt with the backend options sse, sse_kms_key_id or sse_customer_key.");
        else
            invalid("unknown name " + quoted(name) + " in " + what,
                    "Attributes are cache_control, content_disposition, content_encoding, content_language, "
                    "storage_class and tags.");
    }
    return a;
}

ObjectAttributes read_value_attributes(std::string_view json_text) {
    ObjectAttributes a;
    json::Value root;
    try {
        root = json::parse(json_text);
    } catch (const Error &) {
        return a;
    }
    auto text = [&](const char *name) -> std::optional<std::string> {
        const json::Value *v = root.find(name);
        if (!v || v->kind != json::Value::Kind::String) return std::nullopt;
        return v->text;
    };
    a.cache_control = text("cache_control");
    a.content_disposition = text("content_disposition");
    a.content_encoding = text("content_encoding");
    a.content_language = text("content_language");
    a.storage_class = text("storage_class");
    a.sse = text("sse");
    a.sse_kms_key_id = text("sse_kms_key_id");
    if (const json::Value *t = root.find("tags"); t && t->kind == json::Value::Kind::Object) {
        Tags tags;
        for (const auto &m : t->members)
            if (m.value.kind == json::Value::Kind::String) tags.emplace_back(m.key, m.value.text);
        a.tags = std::move(tags);
    }
    return a;
}

std::string format_attributes(const ObjectAttributes &a) {
    json::Value root;
    root.kind = json::Value::Kind::Object;
    auto add = [&](const char *name, const std::optional<std::string> &value) {
        if (value) root.members.push_back({name, string_value(*value)});
    };
    add("cache_control", a.cache_control);
    add("content_disposition", a.content_disposition);
    add("content_encoding", a.content_encoding);
    add("content_language", a.content_language);
    add("sse", a.sse);
    add("sse_kms_key_id", a.sse_kms_key_id);
    add("storage_class", a.storage_class);
    if (a.tags) {
        json::Value tags;
        tags.kind = json::Value::Kind::Object;
        for (const auto &[k, v] : *a.tags) tags.members.push_back({k, string_value(v)});
        root.members.push_back({"tags", std::move(tags)});
    }
    // Members were added in sorted order, as the canonical writer needs.
    return json::write(root);
}

ObjectAttributes merge_attributes(const ObjectAttributes &defaults, const ObjectAttributes &call) {
    ObjectAttributes out = defaults;
    auto over = [](std::optional<std::string> &to, const std::optional<std::string> &from) {
        if (from) to = from;
    };
    over(out.cache_control, call.cache_control);
    over(out.content_disposition, call.content_disposition);
    over(out.content_encoding, call.content_encoding);
    over(out.content_language, call.content_language);
    over(out.storage_class, call.storage_class);
    if (call.tags) out.tags = call.tags;
    return out;
}

std::string tagging_query(const Tags &tags) {
    std::string out;
    for (const auto &[k, v] : tags) {
        if (!out.empty()) out += '&';
        uri::encode(k, false, out);
        out += '=';
        uri::encode(v, false, out);
    }
    return out;
}

}  // namespace so
