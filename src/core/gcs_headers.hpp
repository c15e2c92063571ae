// Google Cloud Storage's XML API where it differs from S3's, for the S3
// backend's gs:// flavour: x-goog-meta-* metadata, x-goog-storage-class
// with GCS's classes, no object tags, generations for versions
// (x-goog-generation, ?generation=), and x-goog-if-generation-match: 0 for
// create-only writes (GCS does not honour If-None-Match on writes).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/object_attributes.hpp"

namespace so::gcs {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr const char *kCreateOnlyHeader = "x-goog-if-generation-match";
inline constexpr const char *kGenerationHeader = "x-goog-generation";
inline constexpr const char *kGenerationParam = "generation";
inline constexpr const char *kCopySourceHeader = "x-goog-copy-source";

// x-goog-meta-* headers for a canonical JSON object (values encoded as
// for S3: s3_metadata.hpp). Throws Error(InvalidParameter) for a key GCS
// cannot keep as given.
Headers encode_metadata(const std::string &metadata_json);
// The canonical JSON object of the x-goog-meta-* headers (names lowercase).
std::string decode_metadata(const Headers &headers);

// Cache-Control, Content-Disposition, Content-Encoding, Content-Language
// and x-goog-storage-class for a put. Throws Error(InvalidParameter) for
// a storage class GCS does not know, and for tags (GCS objects have none).
void append_put_headers(const ObjectAttributes &attributes, Headers &headers);
// x-goog-storage-class alone (a copy does not carry the class over).
void append_storage_class(const ObjectAttributes &attributes, Headers &headers);
// The attributes a HEAD, GET or write response reports (names lowercase).
ObjectAttributes from_response(const Headers &headers);

// The hex MD5 of x-goog-hash (crc32c=...,md5=...), if it has one.
std::optional<std::string> md5_of(const Headers &headers);

}  // namespace so::gcs
