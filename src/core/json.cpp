#include "core/json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/utf8.hpp"

namespace so::json {

const Value *Value::find(std::string_view key) const {
    auto it = std::lower_bound(members.begin(), members.end(), key,
                               [](const Member &m, std::string_view k) { return m.key < k; });
    return (it != members.end() && it->key == key) ? &it->value : nullptr;
}

const char *kind_name(Value::Kind kind) {
    switch (kind) {
        case Value::Kind::Null: return "null";
        case Value::Kind::Bool: return "a boolean";
        case Value::Kind::Number: return "a number";
        case Value::Kind::String: return "a string";
        case Value::Kind::Array: return "an array";
        case Value::Kind::Object: return "an object";
    }
    return "a value";
}

namespace {

class Parser {
public:
    explicit Parser(std::string_view in) : in_(in) {}

    Value document() {
        Value v = value(0);
        skip_space();
        if (pos_ != in_.size()) fail("unexpected data after the JSON value");
        return v;
    }

private:
    std::string_view in_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string &what) const { fail_at(pos_, what); }

    [[noreturn]] static void fail_at(size_t pos, const std::string &what) {
        throw Error(ErrorKind::InvalidTextRepresentation,
                    "malformed JSON at byte " + std::to_string(pos) + ": " + what);
    }

    bool at_end() const { return pos_ >= in_.size(); }
    char peek() const { return at_end() ? '\0' : in_[pos_]; }

    void skip_space() {
        while (!at_end() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' ||
                             in_[pos_] == '\r'))
            ++pos_;
    }

    void expect_literal(std::string_view word) {
        if (in_.substr(pos_, word.size()) != word) fail("invalid literal");
        pos_ += word.size();
    }

    Value value(int depth) {
        skip_space();
        if (at_end()) fail("unexpected end of input");
        Value v;
        switch (peek()) {
            case '{': object(v, depth); break;
            case '[': array(v, depth); break;
            case '"':
                v.kind = Value::Kind::String;
                v.text = string();
                break;
            case 't': expect_literal("true"); v.kind = Value::Kind::Bool; v.boolean = true; break;
            case 'f': expect_literal("false"); v.kind = Value::Kind::Bool; break;
            case 'n': expect_literal("null"); break;
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
                    v.kind = Value::Kind::Number;
                    v.text = number();
                } else if (peek() == '\0') {
                    fail("NUL byte is not allowed");
                } else {
                    fail("unexpected character");
                }
        }
        return v;
    }

    void enter(int depth) {
        if (depth >= kMaxDepth)
            fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }

    void object(Value &v, int depth) {
        enter(depth);
        v.kind = Value::Kind::Object;
        ++pos_;  // '{'
        skip_space();
        if (peek() == '}') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_space();
            if (peek() != '"') fail("expected a string as object key");
            Member m;
            m.key = string();
            skip_space();
            if (peek() != ':') fail("expected ':' after object key");
            ++pos_;
            m.value = value(depth + 1);
            v.members.push_back(std::move(m));
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                break;
            }
            fail("expected ',' or '}' in object");
        }
        // Sort by key; for equal keys the later one wins, as in jsonb.
        std::stable_sort(v.members.begin(), v.members.end(),
                         [](const Member &a, const Member &b) { return a.key < b.key; });
        std::vector<Member> unique;
        unique.reserve(v.members.size());
        for (auto &m : v.members) {
            if (!unique.empty() && unique.back().key == m.key)
                unique.back() = std::move(m);
            else
                unique.push_back(std::move(m));
        }
        v.members = std::move(unique);
    }

    void array(Value &v, int depth) {
        enter(depth);
        v.kind = Value::Kind::Array;
        ++pos_;  // '['
        skip_space();
        if (peek() == ']') {
            ++pos_;
            return;
        }
        for (;;) {
            v.items.push_back(value(depth + 1));
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                break;
            }
            fail("expected ',' or ']' in array");
        }
    }

    std::string number() {
        size_t start = pos_;
        if (peek() == '-') ++pos_;
        size_t int_start = pos_;
        if (peek() == '0') {
            ++pos_;
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') ++pos_;
        } else {
            fail("invalid number");
        }
        std::string_view integer = in_.substr(int_start, pos_ - int_start), fraction;
        if (peek() == '.') {
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            size_t frac_start = pos_;
            while (peek() >= '0' && peek() <= '9') ++pos_;
            fraction = in_.substr(frac_start, pos_ - frac_start);
        }
        int64_t exponent = 0;
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            bool negative = peek() == '-';
            if (peek() == '+' || peek() == '-') ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) fail("invalid number");
            while (peek() >= '0' && peek() <= '9') {
                if (exponent < 1000000000) exponent = exponent * 10 + (peek() - '0');
                ++pos_;
            }
            if (negative) exponent = -exponent;
        }
        if (!fits_numeric(integer, fraction, exponent))
            fail_at(start, "number out of the range PostgreSQL's numeric (and so jsonb) can hold");
        return std::string(in_.substr(start, pos_ - start));
    }

    // PostgreSQL's numeric, which jsonb stores numbers in, holds at most
    // 131072 digits before the decimal point and 16383 after it.
    static bool fits_numeric(std::string_view integer, std::string_view fraction, int64_t exponent) {
        constexpr int64_t kMaxWeight = 131071, kMaxScale = 16383;
        int64_t scale = std::max<int64_t>(0, static_cast<int64_t>(fraction.size()) - exponent);
        if (scale > kMaxScale) return false;
        size_t first = integer.find_first_not_of('0');
        int64_t weight;
        if (first != std::string_view::npos) {
            weight = static_cast<int64_t>(integer.size() - first) - 1 + exponent;
        } else {
            size_t nonzero = fraction.find_first_not_of('0');
            if (nonzero == std::string_view::npos) return true;  // zero
            weight = -static_cast<int64_t>(nonzero) - 1 + exponent;
        }
        return weight <= kMaxWeight;
    }

    unsigned hex4() {
        if (pos_ + 4 > in_.size()) fail("truncated \\u escape");
        unsigned cp = 0;
        for (int i = 0; i < 4; ++i) {
            char c = in_[pos_++];
            cp <<= 4;
            if (c >= '0' && c <= '9') cp |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') cp |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') cp |= unsigned(c - 'A' + 10);
            else fail("invalid \\u escape");
        }
        return cp;
    }

    // Copies one UTF-8 sequence starting at pos_, rejecting malformed,
    // overlong and surrogate encodings.
    void utf8_sequence(std::string &out) {
        uint32_t cp;
        size_t len = so::utf8_sequence(in_.substr(pos_), &cp);
        if (len == 0) fail("invalid UTF-8 byte sequence");
        out.append(in_.substr(pos_, len));
        pos_ += len;
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated string");
            unsigned char c = static_cast<unsigned char>(in_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c == '\\') {
                ++pos_;
                char e = peek();
                ++pos_;
                switch (e) {
                    case '"': out += '"'; break;
                    case '\\': out += '\\'; break;
                    case '/': out += '/'; break;
                    case 'b': out += '\b'; break;
                    case 'f': out += '\f'; break;
                    case 'n': out += '\n'; break;
                    case 'r': out += '\r'; break;
                    case 't': out += '\t'; break;
                    case 'u': unicode_escape(out); break;
                    default: --pos_; fail("invalid escape sequence");
                }
            } else if (c == 0) {
                fail("NUL byte is not allowed");
            } else if (c < 0x20) {
                fail("unescaped control character in string");
            } else if (c < 0x80) {
                out += char(c);
                ++pos_;
            } else {
                utf8_sequence(out);
            }
        }
    }

    void unicode_escape(std::string &out) {
        size_t start = pos_ - 2;  // the backslash
        unsigned cp = hex4();
        if (cp == 0) fail_at(start, "\\u0000 (NUL) is not allowed");
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(start, "unpaired UTF-16 surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (in_.substr(pos_, 2) != "\\u") fail_at(start, "unpaired UTF-16 surrogate in \\u escape");
            pos_ += 2;
            unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail_at(start, "unpaired UTF-16 surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(cp, out);
    }
};

}  // namespace

Value parse(std::string_view input) { return Parser(input).document(); }

void write_string(std::string_view s, std::string &out) {
    out += '"';
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    out += '"';
}

std::string quoted_string(std::string_view s) {
    std::string out;
    write_string(s, out);
    return out;
}

void write(const Value &v, std::string &out) {
    switch (v.kind) {
        case Value::Kind::Null: out += "null"; break;
        case Value::Kind::Bool: out += v.boolean ? "true" : "false"; break;
        case Value::Kind::Number: out += v.text; break;
        case Value::Kind::String: write_string(v.text, out); break;
        case Value::Kind::Array:
            out += '[';
            for (size_t i = 0; i < v.items.size(); ++i) {
                if (i) out += ',';
                write(v.items[i], out);
            }
            out += ']';
            break;
        case Value::Kind::Object:
            out += '{';
            for (size_t i = 0; i < v.members.size(); ++i) {
                if (i) out += ',';
                write_string(v.members[i].key, out);
                out += ':';
                write(v.members[i].value, out);
            }
            out += '}';
            break;
    }
}

std::string write(const Value &v) {
    std::string out;
    write(v, out);
    return out;
}

std::optional<int64_t> as_int64(const Value &v) {
    if (v.kind != Value::Kind::Number) return std::nullopt;
    int64_t result = 0;
    const char *first = v.text.data(), *last = first + v.text.size();
    auto [ptr, ec] = std::from_chars(first, last, result);
    if (ec != std::errc() || ptr != last) return std::nullopt;
    return result;
}

std::optional<double> as_double(const Value &v) {
    if (v.kind != Value::Kind::Number) return std::nullopt;
    double result = 0;
    const char *first = v.text.data(), *last = first + v.text.size();
    auto [ptr, ec] = std::from_chars(first, last, result);
    if (ec != std::errc() || ptr != last || !std::isfinite(result)) return std::nullopt;
    return result;
}

std::string format_double(double d) {
    char buf[64];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
    (void)ec;  // 64 bytes always suffice for the shortest form
    return std::string(buf, ptr);  // "1e+20" is valid JSON as it is
}

}  // namespace so::json
