// The metadata of one stored object: the value of a stored_object column.
//
// Its text form is a JSON object, a superset of advanced-alchemy's
// FileObject.to_dict(). Identity is (backend, filename, version_id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace so {

struct ObjectMeta {
    std::string backend;   // registry key
    std::string filename;  // the object's key inside its backend
    std::optional<std::string> content_type;
    std::optional<int64_t> size;
    std::optional<double> last_modified;  // seconds since the Unix epoch
    std::optional<std::string> checksum;
    std::optional<std::string> etag;
    std::optional<std::string> version_id;
    std::string metadata = "{}";  // canonical JSON text of an object
    // Canonical JSON text of what the store keeps on the object beside it
    // (object_attributes.hpp); "{}" when nothing.
    std::string attributes = "{}";
};

// Reads the JSON text form; throws Error(InvalidTextRepresentation) naming
// what is wrong.
ObjectMeta parse_object_meta(std::string_view text);

// Canonical JSON text: always the same keys in the same order.
std::string format_object_meta(const ObjectMeta &meta);

// Makes a value built from what a store reported safe to become a
// stored_object: a content type that is not a plain media type is dropped,
// metadata that is not valid is replaced by {}, and a key, etag, version
// or checksum with control characters or invalid UTF-8 (or a negative
// size) is refused with Error(Io). The result always reads back through
// parse_object_meta, so pg_dump can restore it.
void sanitize_from_store(ObjectMeta &meta);

// Whether s is a media type fit for a Content-Type header: type/subtype
// with optional parameters, printable ASCII, at most 255 bytes.
bool valid_media_type(std::string_view s);

// Canonical text of a JSON object given as text (a metadata argument).
// Throws InvalidParameter when it is not a JSON object.
std::string canonical_json_object(std::string_view text, const char *what);

}  // namespace so
