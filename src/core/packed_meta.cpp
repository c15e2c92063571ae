#include "core/packed_meta.hpp"

#include <cstring>
#include <string>

namespace so {

namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr int kStrings = 7;  // backend, filename, content_type, checksum, etag, version_id, metadata

enum Flag : uint8_t {
    kHasSize = 1 << 0,
    kHasLastModified = 1 << 1,
    kHasContentType = 1 << 2,
    kHasChecksum = 1 << 3,
    kHasEtag = 1 << 4,
    kHasVersionId = 1 << 5,
};

// version(1) flags(1) size(8) last_modified(8) lengths(4 * kStrings)
constexpr size_t kHeaderSize = 2 + 8 + 8 + 4 * kStrings;

std::string_view opt(const std::optional<std::string> &s) {
    return s ? std::string_view(*s) : std::string_view();
}

}  // namespace

size_t packed_size(const ObjectMeta &m) {
    return kHeaderSize + m.backend.size() + m.filename.size() + opt(m.content_type).size() +
           opt(m.checksum).size() + opt(m.etag).size() + opt(m.version_id).size() +
           m.metadata.size();
}

void pack(const ObjectMeta &m, char *out) {
    uint8_t flags = (m.size ? kHasSize : 0) | (m.last_modified ? kHasLastModified : 0) |
                    (m.content_type ? kHasContentType : 0) | (m.checksum ? kHasChecksum : 0) |
                    (m.etag ? kHasEtag : 0) | (m.version_id ? kHasVersionId : 0);
    int64_t size = m.size.value_or(0);
    double last_modified = m.last_modified.value_or(0.0);
    const std::string_view strings[kStrings] = {m.backend,     m.filename,     opt(m.content_type),
                                                opt(m.checksum), opt(m.etag), opt(m.version_id),
                                                m.metadata};
    out[0] = static_cast<char>(kFormatVersion);
    out[1] = static_cast<char>(flags);
    std::memcpy(out + 2, &size, 8);
    std::memcpy(out + 10, &last_modified, 8);
    char *p = out + 18;
    for (auto s : strings) {
        uint32_t len = static_cast<uint32_t>(s.size());
        std::memcpy(p, &len, 4);
        p += 4;
    }
    for (auto s : strings) {
        if (!s.empty()) std::memcpy(p, s.data(), s.size());
        p += s.size();
    }
}

bool unpack(const char *data, size_t len, PackedView *v) noexcept {
    if (len < kHeaderSize || static_cast<uint8_t>(data[0]) != kFormatVersion) return false;
    uint8_t flags = static_cast<uint8_t>(data[1]);
    std::memcpy(&v->size, data + 2, 8);
    std::memcpy(&v->last_modified, data + 10, 8);
    std::string_view *fields[kStrings] = {&v->backend, &v->filename, &v->content_type, &v->checksum,
                                          &v->etag,    &v->version_id, &v->metadata};
    size_t offset = kHeaderSize;
    for (int i = 0; i < kStrings; ++i) {
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
