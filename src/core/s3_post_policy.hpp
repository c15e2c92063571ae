// The policy document of an S3 browser upload (POST Object, SigV4): what
// the form may hold, which S3 itself enforces. Written exactly as botocore's
// generate_presigned_post writes it (Python's json.dumps), so the two can be
// compared byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace so::s3post {

struct Condition {
    enum class Kind { Equals, StartsWith, LengthRange } kind = Kind::Equals;
    std::string name;   // Equals/StartsWith: the form field ("Content-Type")
    std::string value;  // Equals: the value; StartsWith: the prefix
    uint64_t min = 0, max = 0;  // LengthRange: bytes

    static Condition equals(std::string name, std::string value) {
        return {Kind::Equals, std::move(name), std::move(value), 0, 0};
    }
    static Condition length_range(uint64_t min, uint64_t max) { return {Kind::LengthRange, "", "", min, max}; }
};

// {"expiration": "2026-12-03T06:00:00Z", "conditions": [...]} for a policy
// that expires at expires_at (seconds since the epoch).
std::string policy_json(int64_t expires_at, const std::vector<Condition> &conditions);

// A string as Python's json.dumps writes it (ASCII only: \uXXXX escapes,
// surrogate pairs beyond U+FFFF).
void append_python_json_string(std::string &out, std::string_view s);

}  // namespace so::s3post
