// The on-disk form of a stored_object: a fixed header followed by the
// strings, so comparisons and accessors read fields in place without
// parsing JSON. Host byte order, like PostgreSQL's own types; the binary
// send/receive form is the JSON text, which is portable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/object_meta.hpp"

namespace so {

struct PackedView {
    std::string_view backend, filename, content_type, checksum, etag, version_id, metadata;
    std::string_view attributes = "{}";
    bool has_content_type = false, has_checksum = false, has_etag = false,
         has_version_id = false, has_size = false, has_last_modified = false;
    int64_t size = 0;
    double last_modified = 0;
};

size_t packed_size(const ObjectMeta &meta);
// Writes exactly packed_size(meta) bytes to out.
void pack(const ObjectMeta &meta, char *out);
// Reads a payload written by pack(); false if it is not one (corruption).
bool unpack(const char *data, size_t len, PackedView *view) noexcept;
ObjectMeta to_object_meta(const PackedView &view);

// Order by identity: backend, filename, then version_id (absent first),
// each compared bytewise. Consistent with equality of the identity.
int compare_identity(const PackedView &a, const PackedView &b) noexcept;

}  // namespace so
