#include "core/packed_meta.hpp"

#include <cstring>
#include <string>

namespace so {

namespace {

// Version 1: seven strings. Version 2 (0.3.0) appends the attributes;
// a value without attributes is still written as version 1, byte for byte
// what earlier versions wrote.
constexpr uint8_t kFormatVersion1 = 1;
constexpr uint8_t kFormatVersion2 = 2;
constexpr int kStrings1 = 7;  // backend, filename, content_type, checksum, etag, version_id, metadata
constexpr int kStrings2 = 8;  // ..., attributes

enum Flag : uint8_t {
    kHasSize = 1 << 0,
    kHasLastModified = 1 << 1,
    kHasContentType = 1 << 2,
    kHasChecksum = 1 << 3,
    kHasEtag = 1 << 4,
    kHasVersionId = 1 << 5,
};

// version(1) flags(1) size(8) last_modified(8) lengths(4 * strings)
constexpr size_t header_size(int strings) { return 2 + 8 + 8 + 4 * static_cast<size_t>(strings); }

bool has_attributes(const ObjectMeta &m) { return m.attributes != "{}"; }

std::string_view opt(const std::optional<std::string> &s) {
    return s ? std::string_view(*s) : std::string_view();
}

}  // namespace

size_t packed_size(const ObjectMeta &m) {
    size_t extra = has_attributes(m) ? 4 + m.attributes.size() : 0;
    return extra + header_size(kStrings1) + m.backend.size() + m.filename.size() + opt(m.content_type).size() +
           opt(m.checksum).size() + opt(m.etag).size() + opt(m.version_id).size() +
           m.metadata.size();
}

void pack(const ObjectMeta &m, char *out) {
    uint8_t flags = (m.size ? kHasSize : 0) | (m.last_modified ? kHasLastModified : 0) |
                    (m.content_type ? kHasContentType : 0) | (m.checksum ? kHasChecksum : 0) |
                    (m.etag ? kHasEtag : 0) | (m.version_id ? kHasVersionId : 0);
    int64_t size = m.size.value_or(0);
    double last_modified = m.last_modified.value_or(0.0);
    const int count = has_attributes(m) ? kStrings2 : kStrings1;
    const std::string_view strings[kStrings2] = {m.backend,     m.filename,     opt(m.content_type),
                                                 opt(m.checksum), opt(m.etag), opt(m.version_id),
                                                 m.metadata,    m.attributes};
    out[0] = static_cast<char>(count == kStrings2 ? kFormatVersion2 : kFormatVersion1);
    out[1] = static_cast<char>(flags);
    std::memcpy(out + 2, &size, 8);
    std::memcpy(out + 10, &last_modified, 8);
    char *p = out + 18;
    for (int i = 0; i < count; ++i) {
        uint32_t len = static_cast<uint32_t>(strings[i].size());
        std::memcpy(p, &len, 4);
        p += 4;
    }
    for (int i = 0; i < count; ++i) {
        if (!strings[i].empty()) std::memcpy(p, strings[i].data(), strings[i].size());
        p += strings[i].size();
    }
}

bool unpack(const char *data, size_t len, PackedView *v) noexcept {
    if (len < 1) return false;
    const uint8_t version = static_cast<uint8_t>(data[0]);
    if (version != kFormatVersion1 && version != kFormatVersion2) return false;
    const int count = version == kFormatVersion2 ? kStrings2 : kStrings1;
    if (len < header_size(count)) return false;
    uint8_t flags = static_cast<uint8_t>(data[1]);
    std::memcpy(&v->size, data + 2, 8);
    std::memcpy(&v->last_modified, data + 10, 8);
    std::string_view *fields[kStrings2] = {&v->backend, &v->filename,   &v->content_type, &v->checksum,
                                           &v->etag,    &v->version_id, &v->metadata,     &v->attributes};
    v->attributes = "{}";
    size_t offset = header_size(count);
    for (int i = 0; i < count; ++i) {
        uint32_t n;
        std::memcpy(&n, data + 18 + 4 * i, 4);
        if (n > len - offset) return false;
        *fields[i] = std::string_view(data + offset, n);
        offset += n;
    }
    if (offset != len) return false;
    v->has_size = flags & kHasSize;
    v->has_last_modified = flags & kHasLastModified;
    v->has_content_type = flags & kHasContentType;
    v->has_checksum = flags & kHasChecksum;
    v->has_etag = flags & kHasEtag;
    v->has_version_id = flags & kHasVersionId;
    return true;
}

ObjectMeta to_object_meta(const PackedView &v) {
    auto opt_string = [](bool has, std::string_view s) {
        return has ? std::optional<std::string>(std::string(s)) : std::nullopt;
    };
    ObjectMeta m;
    m.backend = std::string(v.backend);
    m.filename = std::string(v.filename);
    m.content_type = opt_string(v.has_content_type, v.content_type);
    m.checksum = opt_string(v.has_checksum, v.checksum);
    m.etag = opt_string(v.has_etag, v.etag);
    m.version_id = opt_string(v.has_version_id, v.version_id);
    if (v.has_size) m.size = v.size;
    if (v.has_last_modified) m.last_modified = v.last_modified;
    m.metadata = std::string(v.metadata);
    m.attributes = std::string(v.attributes);
    return m;
}

int compare_identity(const PackedView &a, const PackedView &b) noexcept {
    if (int c = a.backend.compare(b.backend)) return c < 0 ? -1 : 1;
    if (int c = a.filename.compare(b.filename)) return c < 0 ? -1 : 1;
    if (a.has_version_id != b.has_version_id) return a.has_version_id ? 1 : -1;
    if (int c = a.version_id.compare(b.version_id)) return c < 0 ? -1 : 1;
    return 0;
}

}  // namespace so
