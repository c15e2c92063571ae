// What S3 keeps on an object beside its bytes and user metadata: standard
// headers, storage class, tags and server-side encryption, as request
// headers going out and as attributes coming back.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/backend_config.hpp"
#include "core/object_attributes.hpp"

namespace so::s3attr {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Cache-Control, Content-Disposition, Content-Encoding and
// Content-Language: the standard headers S3 and GCS keep on an object, for
// a put and as a response reports them (printable ASCII only).
void append_standard_headers(const ObjectAttributes &attributes, Headers &headers);
void read_standard_headers(const Headers &headers, ObjectAttributes &attributes);

// The standard headers, x-amz-storage-class and x-amz-tagging for a put. Throws
// Error(InvalidParameter) for a storage class S3 does not know.
void append_put_headers(const ObjectAttributes &attributes, Headers &headers);

// x-amz-storage-class alone: what a CopyObject needs, which copies the
// headers and tags of its source but not its class.
void append_storage_class(const ObjectAttributes &attributes, Headers &headers);

// How a write encrypts: x-amz-server-side-encryption (with the KMS key
// id), or the three SSE-C headers.
void append_encryption(const S3Config &config, Headers &headers);

// The SSE-C headers every read of an object, and every part of a
// multipart upload, needs (nothing without SSE-C); with copy_source, the
// x-amz-copy-source-... forms a CopyObject from such an object needs.
void append_customer_key(const S3Config &config, Headers &headers, bool copy_source = false);

// The attributes a HEAD, GET or write response reports (names lowercase):
// headers (printable ASCII only), class (absent for STANDARD, as S3
// leaves it out), and how
// the store encrypted the object. Tags are not in headers: see tagging.
ObjectAttributes from_response(const Headers &headers);

// The number of tags x-amz-tagging-count reports (0 when absent).
int tag_count(const Headers &headers);

// The TagSet of a GetObjectTagging answer.
Tags parse_tagging(const std::string &xml);

}  // namespace so::s3attr
