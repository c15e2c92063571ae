#include "core/error.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/utf8.hpp"

namespace so {

namespace {

// Writes text made safe for a message through put(const char *, size_t).
template <typename Put>
void write_message_text(std::string_view text, size_t max_bytes, Put &&put) {
    size_t shown = 0;
    for (size_t i = 0; i < text.size();) {
        uint32_t cp;
        size_t n = utf8_sequence(text.substr(i), &cp);
        if (shown + std::max<size_t>(n, 1) > max_bytes) {
            put("...", 3);
            return;
        }
        char buf[8];
        int escaped = 0;
        if (n == 0) {  // not UTF-8: the byte itself, escaped
            escaped = std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(text[i]));
            n = 1;
        } else if (cp < 0x20 || cp == 0x7f) {
            escaped = std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(cp));
        } else if ((cp >= 0x80 && cp < 0xa0) || cp == 0x2028 || cp == 0x2029) {
            // C1 controls, line and paragraph separators: line breaks to some readers.
            escaped = std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
        }
        if (escaped > 0) put(buf, static_cast<size_t>(escaped));
        else put(text.data() + i, n);
        i += n;
        shown += n;
    }
}

}  // namespace

void append_message_text(std::string &out, std::string_view text, size_t max_bytes) {
    write_message_text(text, max_bytes, [&out](const char *p, size_t n) { out.append(p, n); });
}

void message_text_into(char *out, size_t capacity, std::string_view text, size_t max_bytes) noexcept {
    if (capacity == 0) return;
    size_t used = 0;
    write_message_text(text, max_bytes, [&](const char *p, size_t n) {
        if (used + n < capacity) {
            std::memcpy(out + used, p, n);
            used += n;
        }
    });
    out[used] = '\0';
}

std::string message_text(std::string_view text, size_t max_bytes) {
    std::string out;
    append_message_text(out, text, max_bytes);
    return out;
}

std::string quoted(std::string_view value) {
    constexpr size_t kMaxShown = 200;
    std::string out = "\"";
    append_message_text(out, value, kMaxShown);
    out += '"';
    return out;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace so
