#include "core/object_meta.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/utf8.hpp"

namespace so {

namespace {

[[noreturn]] void invalid(const std::string &message, std::string hint = {}) {
    throw Error(ErrorKind::InvalidTextRepresentation, message, {}, std::move(hint));
}

std::optional<std::string> optional_string(const json::Value &v, const char *key) {
    if (v.is_null()) return std::nullopt;
    if (v.kind != json::Value::Kind::String)
        invalid(std::string("stored_object key \"") + key + "\" must be a string or null, not " +
                json::kind_name(v.kind));
    return v.text;
}

std::string required_string(const json::Value *v, const char *key, const std::string &hint) {
    if (!v || v->is_null())
        invalid(std::string("stored_object needs a \"") + key + "\"", hint);
    if (v->kind != json::Value::Kind::String)
        invalid(std::string("stored_object key \"") + key + "\" must be a string, not " +
                json::kind_name(v->kind));
    if (v->text.empty()) invalid(std::string("stored_object key \"") + key + "\" must not be empty", hint);
    return v->text;
}

std::optional<int64_t> parse_size(const json::Value &v) {
    if (v.is_null()) return std::nullopt;
    if (v.kind != json::Value::Kind::Number)
        invalid(std::string("stored_object key \"size\" must be a number or null, not ") +
                json::kind_name(v.kind));
    if (!v.text.empty() && v.text[0] == '-') invalid("stored_object key \"size\" must not be negative");
    auto n = json::as_int64(v);
    if (!n) invalid("stored_object key \"size\" must be a whole number of bytes below 2^63");
    return n;
}

std::optional<double> parse_last_modified(const json::Value &v) {
    if (v.is_null()) return std::nullopt;
    if (v.kind != json::Value::Kind::Number)
        invalid(std::string("stored_object key \"last_modified\" must be a number (seconds since "
                            "the epoch) or null, not ") +
                json::kind_name(v.kind));
    auto d = json::as_double(v);
    if (!d) invalid("stored_object key \"last_modified\" is out of range");
    return d;
}

// Keys some advanced-alchemy versions write that carry nothing we need.
void check_compat_keys(const json::Value &root, const std::string &filename) {
    if (const auto *path = root.find("path"); path && !path->is_null()) {
        if (path->kind != json::Value::Kind::String)
            invalid(std::string("stored_object key \"path\" must be a string or null, not ") +
                    json::kind_name(path->kind));
        if (path->text != filename)
            invalid("stored_object keys \"path\" and \"filename\" differ",
                    "stored_object keys an object by \"filename\"; to convert such a value, "
                    "set \"filename\" to the storage path first.");
    }
    if (const auto *protocol = root.find("protocol");
        protocol && !protocol->is_null() && protocol->kind != json::Value::Kind::String)
        invalid(std::string("stored_object key \"protocol\" must be a string or null, not ") +
                json::kind_name(protocol->kind));
    if (const auto *extra = root.find("extra"); extra && !extra->is_null()) {
        if (extra->kind != json::Value::Kind::Object)
            invalid(std::string("stored_object key \"extra\" must be an object or null, not ") +
                    json::kind_name(extra->kind));
        if (!extra->members.empty())
            invalid("stored_object key \"extra\" must be empty",
                    "Move such values into \"metadata\".");
    }
}

constexpr const char *kKnownKeys[] = {"backend",  "filename", "content_type", "size",
                                      "last_modified", "checksum", "etag", "version_id",
                                      "metadata", "attributes", "path",     "protocol",     "extra"};

bool known_key(const std::string &key) {
    for (const char *k : kKnownKeys)
        if (key == k) return true;
    return false;
}

}  // namespace

ObjectMeta parse_object_meta(std::string_view text) {
    json::Value root = json::parse(text);
    if (root.kind != json::Value::Kind::Object)
        invalid(std::string("stored_object must be a JSON object, not ") + json::kind_name(root.kind));
    for (const auto &m : root.members)
        if (!known_key(m.key)) invalid("unknown key " + quoted(m.key) + " in stored_object");

    ObjectMeta meta;
    meta.backend = required_string(
        root.find("backend"), "backend",
        "Name the backend in the value, or convert with so_from_json(value, 'backend_key').");
    meta.filename = required_string(root.find("filename"), "filename", {});
    check_compat_keys(root, meta.filename);

    auto field = [&](const char *key) -> const json::Value & {
        static const json::Value null_value;
        const auto *v = root.find(key);
        return v ? *v : null_value;
    };
    meta.content_type = optional_string(field("content_type"), "content_type");
    meta.size = parse_size(field("size"));
    meta.last_modified = parse_last_modified(field("last_modified"));
    meta.checksum = optional_string(field("checksum"), "checksum");
    meta.etag = optional_string(field("etag"), "etag");
    meta.version_id = optional_string(field("version_id"), "version_id");

    const json::Value &metadata = field("metadata");
    if (!metadata.is_null()) {
        if (metadata.kind != json::Value::Kind::Object)
            invalid(std::string("stored_object key \"metadata\" must be an object or null, not ") +
                    json::kind_name(metadata.kind));
        meta.metadata = json::write(metadata);
    }
    const json::Value &attributes = field("attributes");
    if (!attributes.is_null()) {
        if (attributes.kind != json::Value::Kind::Object)
            invalid(std::string("stored_object key \"attributes\" must be an object or null, not ") +
                    json::kind_name(attributes.kind));
        meta.attributes = json::write(attributes);
    }
    return meta;
}

std::string format_object_meta(const ObjectMeta &meta) {
    std::string out;
    out.reserve(128 + meta.filename.size() + meta.metadata.size());
    auto key = [&](const char *name) {
        out += out.empty() ? "{\"" : ",\"";
        out += name;
        out += "\":";
    };
    auto string_or_null = [&](const std::optional<std::string> &s) {
        if (s) json::write_string(*s, out);
        else out += "null";
    };
    key("backend");
    json::write_string(meta.backend, out);
    key("filename");
    json::write_string(meta.filename, out);
    key("content_type");
    string_or_null(meta.content_type);
    key("size");
    out += meta.size ? std::to_string(*meta.size) : "null";
    key("last_modified");
    out += meta.last_modified ? json::format_double(*meta.last_modified) : "null";
    key("checksum");
    string_or_null(meta.checksum);
    key("etag");
    string_or_null(meta.etag);
    key("version_id");
    string_or_null(meta.version_id);
    key("metadata");
    out += meta.metadata;
    // Only when there are some: values without attributes read as before.
    if (meta.attributes != "{}") {
        key("attributes");
        out += meta.attributes;
    }
    out += '}';
    return out;
}

std::string canonical_json_object(std::string_view text, const char *what) {
    json::Value v = json::parse(text);
    if (v.kind != json::Value::Kind::Object)
        throw Error(ErrorKind::InvalidParameter,
                    std::string(what) + " must be a JSON object, not " + json::kind_name(v.kind));
    return json::write(v);
}

}  // namespace so

namespace so {

bool valid_media_type(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    auto token_char = [](unsigned char c) {
        return c > 0x20 && c < 0x7f && std::string_view("()<>@,;:\\\"/[]?={}").find(char(c)) == std::string_view::npos;
    };
    size_t slash = s.find('/');
    if (slash == 0 || slash == std::string_view::npos) return false;
    size_t i = 0;
    for (; i < slash; ++i)
        if (!token_char(static_cast<unsigned char>(s[i]))) return false;
    for (i = slash + 1; i < s.size() && s[i] != ';'; ++i)
        if (!token_char(static_cast<unsigned char>(s[i]))) return false;
    if (i == slash + 1) return false;
    // Parameters: printable ASCII and spaces, never CR or LF.
    for (; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if ((c < 0x20 && c != '\t') || c >= 0x7f) return false;
    }
    return true;
}

void sanitize_from_store(ObjectMeta &meta) {
    auto check_text = [&](const std::optional<std::string> &value, const char *what) {
        if (!value) return;
        bool ok = value->size() <= 2048 && valid_utf8(*value);
        for (unsigned char c : *value) ok = ok && c >= 0x20 && c != 0x7f;
        if (!ok)
            throw Error(ErrorKind::Io, std::string("the storage server reported an invalid ") + what +
                                           " for stored object " + quoted(meta.filename));
    };
    check_text(meta.filename, "key");
    check_text(meta.etag, "etag");
    check_text(meta.version_id, "version id");
    check_text(meta.checksum, "checksum");
    if (meta.content_type && !valid_media_type(*meta.content_type)) meta.content_type.reset();
    if (meta.size && *meta.size < 0)
        throw Error(ErrorKind::Io, "the storage server reported a negative size for stored object " + quoted(meta.filename));
    if (meta.last_modified && !std::isfinite(*meta.last_modified)) meta.last_modified.reset();
    try {
        meta.metadata = canonical_json_object(meta.metadata, "metadata");
    } catch (const Error &) {
        meta.metadata = "{}";
    }
    try {
        meta.attributes = canonical_json_object(meta.attributes, "attributes");
    } catch (const Error &) {
        meta.attributes = "{}";
    }
    // The promise: what we return reads back as a stored_object.
    parse_object_meta(format_object_meta(meta));
}

}  // namespace so
