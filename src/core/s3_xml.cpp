#include "core/s3_xml.hpp"

#include <cstdlib>

#include "core/error.hpp"
#include "core/utf8.hpp"

namespace so::s3xml {

namespace {

[[noreturn]] void invalid(const std::string &what) {
    throw Error(ErrorKind::Io, "the storage server sent invalid XML: " + what);
}

// The code point of "#65" or "#x41" (without '&' and ';'): XML allows
// neither NUL, nor surrogates, nor anything above U+10FFFF.
uint32_t character_reference(std::string_view digits) {
    bool hex = !digits.empty() && (digits[0] == 'x' || digits[0] == 'X');
    if (hex) digits.remove_prefix(1);
    if (digits.empty() || digits.size() > 8) invalid("a bad character reference");
    uint32_t cp = 0;
    for (char c : digits) {
        int v = (c >= '0' && c <= '9') ? c - '0'
                : hex && (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : hex && (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                 : -1;
        if (v < 0) invalid("a bad character reference");
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
    }
    if (cp == 0 || !is_scalar_value(cp)) invalid("a character reference to a character XML does not allow");
    return cp;
}

std::string decode_entities(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        size_t semi = s.find(';', i);
        if (semi == std::string_view::npos) {
            out += s.substr(i);
            break;
        }
        std::string_view entity = s.substr(i + 1, semi - i - 1);
        if (entity == "amp") out += '&';
        else if (entity == "lt") out += '<';
        else if (entity == "gt") out += '>';
        else if (entity == "quot") out += '"';
        else if (entity == "apos") out += '\'';
        else if (!entity.empty() && entity[0] == '#') {
            append_utf8(character_reference(entity.substr(1)), out);
        } else {
            out += s.substr(i, semi - i + 1);
        }
        i = semi;
    }
    return out;
}

}  // namespace

std::vector<std::string_view> blocks(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> found;
    std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
    size_t pos = 0;
    for (;;) {
        size_t start = xml.find(open, pos);
        if (start == std::string_view::npos) break;
        start += open.size();
        size_t end = xml.find(close, start);
        if (end == std::string_view::npos) break;
        found.push_back(xml.substr(start, end - start));
        pos = end + close.size();
    }
    return found;
}

std::string text(std::string_view xml, std::string_view tag) {
    auto found = blocks(xml, tag);
    if (found.empty()) return std::string();
    std::string decoded = decode_entities(found.front());
    if (!valid_utf8(decoded)) invalid("text that is not UTF-8");
    return decoded;
}

std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

}  // namespace so::s3xml
