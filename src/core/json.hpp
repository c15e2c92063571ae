// A small strict JSON reader and canonical writer (RFC 8259).
//
// Used for the stored_object text form and for backend options. Canonical
// output: no insignificant whitespace, object keys sorted by their UTF-8
// bytes with duplicates resolved last-wins (as jsonb does), numbers kept as
// the literal text that was read. Parsing never recurses deeper than
// kMaxDepth, so no input can exhaust the stack.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace so::json {

constexpr int kMaxDepth = 256;

struct Member;

struct Value {
    enum class Kind { Null, Bool, Number, String, Array, Object };

    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text;              // String: decoded UTF-8; Number: literal
    std::vector<Value> items;      // Array
    std::vector<Member> members;   // Object, sorted by key, unique keys

    bool is_null() const { return kind == Kind::Null; }
    const Value *find(std::string_view key) const;
};

struct Member {
    std::string key;
    Value value;
};

// Parses one JSON document; throws so::Error(InvalidTextRepresentation)
// with a message naming the byte offset and what was expected.
Value parse(std::string_view input);

// Writes v canonically.
std::string write(const Value &v);
void write(const Value &v, std::string &out);
void write_string(std::string_view s, std::string &out);
// s as a JSON string literal, quotes included.
std::string quoted_string(std::string_view s);

// Name of a kind for messages: "a string", "an object", ...
const char *kind_name(Value::Kind kind);

// Integer value of a Number with no fraction or exponent, if it fits.
std::optional<int64_t> as_int64(const Value &v);
// Double value of a Number (finite), parsed locale-independently.
std::optional<double> as_double(const Value &v);
// Shortest text that reads back as exactly d (JSON number syntax).
std::string format_double(double d);

}  // namespace so::json
