// UTF-8 in both directions: writing one code point (JSON \u escapes, XML
// character references) and reading one strictly (no overlong forms, no
// surrogates, nothing above U+10FFFF), for every reader that must refuse
// or escape what is not valid UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace so {

inline void append_utf8(uint32_t cp, std::string &out) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

// Whether cp may be written as UTF-8: not a surrogate, at most U+10FFFF.
inline bool is_scalar_value(uint32_t cp) { return cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

// Length of the valid UTF-8 sequence at the start of s (1 to 4), with its
// code point in *cp; 0 when s does not start with one.
inline size_t utf8_sequence(std::string_view s, uint32_t *cp) {
    if (s.empty()) return 0;
    auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
    unsigned b0 = byte(0);
    size_t len;
    uint32_t value;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        value = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        value = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        value = b0 & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; ++i) {
        unsigned b = byte(i);
        if ((b & 0xC0) != 0x80) return 0;
        value = (value << 6) | (b & 0x3F);
    }
    if ((len == 3 && value < 0x800) || (len == 4 && value < 0x10000) || !is_scalar_value(value)) return 0;
    *cp = value;
    return len;
}

// Whether all of s is valid UTF-8 without NUL characters.
inline bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        size_t n = utf8_sequence(s.substr(i), &cp);
        if (n == 0 || cp == 0) return false;
        i += n;
    }
    return true;
}

}  // namespace so
