// User metadata as S3 object metadata (x-amz-meta-* headers).
//
// S3 takes ASCII header values and lowercases names. A string value that
// is printable ASCII and does not itself read as JSON is sent as is; any
// other value (nested objects and arrays, numbers, booleans, non-ASCII
// strings, strings that look like JSON) is sent JSON-encoded with \u
// escapes. Reading reverses it, so every value round-trips, and other
// clients (boto3, the AWS CLI) see plain strings.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace so::s3meta {

using Headers = std::vector<std::pair<std::string, std::string>>;

// x-amz-meta-* headers for a canonical JSON object. Throws
// Error(InvalidParameter) for a key S3 cannot keep as given; store names
// the store in that message (GCS and Azure encode their metadata so too).
Headers encode(const std::string &metadata_json, const char *store = "S3");

// The canonical JSON object of the x-amz-meta-* headers among headers
// (names lowercase).
std::string decode(const Headers &headers);

}  // namespace so::s3meta
