// What a store keeps on an object beside its bytes and user metadata, as
// obstore's `attributes` do: the HTTP headers it serves the object with,
// its storage class and its tags, set per backend as defaults and per put;
// and, reported by the store only, how it encrypted the object.
//
// In a stored_object value they are the JSON object "attributes", written
// only when not empty, so values without attributes read as before.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace so {

using Tags = std::vector<std::pair<std::string, std::string>>;  // sorted by key, unique

struct ObjectAttributes {
    std::optional<std::string> cache_control, content_disposition, content_encoding, content_language;
    std::optional<std::string> storage_class;
    std::optional<Tags> tags;  // present: this tag set, replacing any other
    // Reported by the store: "AES256", "aws:kms" or "SSE-C", and the KMS key.
    std::optional<std::string> sse, sse_kms_key_id;

    bool empty() const {
        return !cache_control && !content_disposition && !content_encoding && !content_language && !storage_class &&
               !tags && !sse && !sse_kms_key_id;
    }
    // Whether a caller set anything (everything but what the store reports).
    bool has_settable() const {
        return cache_control || content_disposition || content_encoding || content_language || storage_class || tags;
    }
};

// Reads attributes a caller gives (an so_put argument, the backend option
// "attributes"); what names them in messages. Throws InvalidParameter for
// an unknown name, a value that cannot be a header, an invalid tag set (at
// most 10 tags, keys of 1 to 128 and values of at most 256 characters, the
// characters S3 allows) or the store-reported names.
ObjectAttributes parse_attributes(std::string_view json_text, const char *what);

// Reads the "attributes" of a stored value: any string members are kept,
// nothing is refused (a value is not a request); tags as an object.
ObjectAttributes read_value_attributes(std::string_view json_text);

// Canonical JSON object text ("{}" when empty).
std::string format_attributes(const ObjectAttributes &attributes);

// A put's attributes: the call's over the backend's defaults, name by name
// (a tag set replaces the default one whole).
ObjectAttributes merge_attributes(const ObjectAttributes &defaults, const ObjectAttributes &call);

// The x-amz-tagging form of a tag set: k=v&k2=v2, URL-encoded.
std::string tagging_query(const Tags &tags);

}  // namespace so
