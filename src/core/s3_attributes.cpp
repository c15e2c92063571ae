#include "core/s3_attributes.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/crypto.hpp"
#include "core/error.hpp"
#include "core/http_values.hpp"
#include "core/s3_xml.hpp"

namespace so::s3attr {

namespace {

// The storage classes of S3's PutObject reference.
constexpr const char *kStorageClasses[] = {"STANDARD",     "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                                           "INTELLIGENT_TIERING", "GLACIER",     "DEEP_ARCHIVE", "GLACIER_IR",
                                           "OUTPOSTS",     "SNOW",               "EXPRESS_ONEZONE"};

using http::printable_header;

const std::string *find(const Headers &headers, const char *name) { return http::find_header(headers, name); }
std::optional<std::string> printable(const Headers &headers, const char *name) { return printable_header(headers, name); }

}  // namespace

void append_storage_class(const ObjectAttributes &a, Headers &headers) {
    if (!a.storage_class) return;
    if (std::none_of(std::begin(kStorageClasses), std::end(kStorageClasses),
                     [&](const char *c) { return *a.storage_class == c; }))
        throw Error(ErrorKind::InvalidParameter, "unknown S3 storage class " + quoted(*a.storage_class), {},
                    "S3 storage classes: STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, "
                    "GLACIER, DEEP_ARCHIVE, REDUCED_REDUNDANCY, OUTPOSTS, SNOW, EXPRESS_ONEZONE.");
    headers.emplace_back("x-amz-storage-class", *a.storage_class);
}

void append_standard_headers(const ObjectAttributes &a, Headers &headers) {
    if (a.cache_control) headers.emplace_back("Cache-Control", *a.cache_control);
    if (a.content_disposition) headers.emplace_back("Content-Disposition", *a.content_disposition);
    if (a.content_encoding) headers.emplace_back("Content-Encoding", *a.content_encoding);
    if (a.content_language) headers.emplace_back("Content-Language", *a.content_language);
}

void read_standard_headers(const Headers &headers, ObjectAttributes &a) {
    a.cache_control = printable(headers, "cache-control");
    a.content_disposition = printable(headers, "content-disposition");
    a.content_encoding = printable(headers, "content-encoding");
    a.content_language = printable(headers, "content-language");
}

void append_put_headers(const ObjectAttributes &a, Headers &headers) {
    append_standard_headers(a, headers);
    append_storage_class(a, headers);
    if (a.tags && !a.tags->empty()) headers.emplace_back("x-amz-tagging", tagging_query(*a.tags));
}

void append_encryption(const S3Config &c, Headers &headers) {
    if (!c.sse.empty()) {
        headers.emplace_back("x-amz-server-side-encryption", c.sse);
        if (!c.sse_kms_key_id.empty())
            headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", c.sse_kms_key_id);
    }
    append_customer_key(c, headers);
}

void append_customer_key(const S3Config &c, Headers &headers, bool copy_source) {
    if (c.sse_customer_key.empty()) return;
    std::string prefix = copy_source ? "x-amz-copy-source-server-side-encryption-customer-"
                                     : "x-amz-server-side-encryption-customer-";
    headers.emplace_back(prefix + "algorithm", "AES256");
    headers.emplace_back(prefix + "key", crypto::base64(c.sse_customer_key));
    headers.emplace_back(prefix + "key-md5", c.sse_customer_key_md5);
}

ObjectAttributes from_response(const Headers &headers) {
    ObjectAttributes a;
    read_standard_headers(headers, a);
    a.storage_class = printable(headers, "x-amz-storage-class");
    if (find(headers, "x-amz-server-side-encryption-customer-algorithm")) {
        a.sse = "SSE-C";
    } else {
        a.sse = printable(headers, "x-amz-server-side-encryption");
        if (a.sse == "aws:kms") a.sse_kms_key_id = printable(headers, "x-amz-server-side-encryption-aws-kms-key-id");
    }
    return a;
}

int tag_count(const Headers &headers) {
    const std::string *v = find(headers, "x-amz-tagging-count");
    return v ? std::atoi(v->c_str()) : 0;
}

Tags parse_tagging(const std::string &xml) {
    Tags tags;
    for (std::string_view tag : s3xml::blocks(xml, "Tag")) tags.emplace_back(s3xml::text(tag, "Key"), s3xml::text(tag, "Value"));
    std::sort(tags.begin(), tags.end());
    return tags;
}

}  // namespace so::s3attr
