#include "core/gcs_headers.hpp"

#include <algorithm>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/http_values.hpp"
#include "core/s3_attributes.hpp"
#include "core/s3_metadata.hpp"

namespace so::gcs {

namespace {

constexpr std::string_view kS3MetaPrefix = "x-amz-meta-";
constexpr std::string_view kMetaPrefix = "x-goog-meta-";
// The storage classes of GCS's documentation (and the legacy names it
// still takes).
constexpr const char *kStorageClasses[] = {"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE",
                                           "MULTI_REGIONAL", "REGIONAL", "DURABLE_REDUCED_AVAILABILITY"};

std::optional<std::string> printable(const Headers &headers, const char *name) {
    return http::printable_header(headers, name);
}

}  // namespace

Headers encode_metadata(const std::string &metadata_json) {
    Headers out;
    for (auto &[name, value] : s3meta::encode(metadata_json, "GCS"))
        out.emplace_back(std::string(kMetaPrefix) + name.substr(kS3MetaPrefix.size()), std::move(value));
    return out;
}

std::string decode_metadata(const Headers &headers) {
    s3meta::Headers renamed;
    for (const auto &[name, value] : headers)
        if (name.rfind(kMetaPrefix, 0) == 0)
            renamed.emplace_back(std::string(kS3MetaPrefix) + name.substr(kMetaPrefix.size()), value);
    return s3meta::decode(renamed);
}

void append_storage_class(const ObjectAttributes &a, Headers &headers) {
    if (!a.storage_class) return;
    if (std::none_of(std::begin(kStorageClasses), std::end(kStorageClasses),
                     [&](const char *c) { return *a.storage_class == c; }))
        throw Error(ErrorKind::InvalidParameter, "unknown GCS storage class " + quoted(*a.storage_class), {},
                    "GCS storage classes: STANDARD, NEARLINE, COLDLINE, ARCHIVE.");
    headers.emplace_back("x-goog-storage-class", *a.storage_class);
}

void append_put_headers(const ObjectAttributes &a, Headers &headers) {
    if (a.tags && !a.tags->empty())
        throw Error(ErrorKind::InvalidParameter, "GCS objects have no tags", {},
                    "Keep such values as metadata; GCS's XML API has no object tagging.");
    s3attr::append_standard_headers(a, headers);
    append_storage_class(a, headers);
}

ObjectAttributes from_response(const Headers &headers) {
    ObjectAttributes a;
    s3attr::read_standard_headers(headers, a);
    a.storage_class = printable(headers, "x-goog-storage-class");
    if (a.storage_class == "STANDARD") a.storage_class.reset();  // as S3's STANDARD: the default, unreported
    return a;
}

std::optional<std::string> md5_of(const Headers &headers) {
    for (const auto &[name, value] : headers) {
        if (name != "x-goog-hash") continue;  // may come once per hash, or once with both
        size_t start = 0;
        while (start < value.size()) {
            size_t end = value.find(',', start);
            if (end == std::string::npos) end = value.size();
            std::string item = value.substr(start, end - start);
            item.erase(0, item.find_first_not_of(' '));
            if (item.rfind("md5=", 0) == 0)
                if (auto raw = crypto::base64_decode(item.substr(4)); raw && raw->size() == 16) return crypto::hex(*raw);
            start = end + 1;
        }
    }
    return std::nullopt;
}

}  // namespace so::gcs
