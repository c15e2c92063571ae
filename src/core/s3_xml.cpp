#include "core/s3_xml.hpp"

#include <cstdlib>

#include "core/utf8.hpp"

namespace so::s3xml {

namespace {

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
            std::string digits(entity.substr(1));
            bool hex = !digits.empty() && (digits[0] == 'x' || digits[0] == 'X');
            append_utf8(static_cast<uint32_t>(std::strtoul(digits.c_str() + (hex ? 1 : 0), nullptr, hex ? 16 : 10)), out);
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
    return found.empty() ? std::string() : decode_entities(found.front());
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
