#include "core/error.hpp"

#include <cstdio>

namespace so {

// Messages quote user input; keep them one line and bounded so a hostile
// value cannot flood the log or forge extra log lines.
std::string quoted(const std::string &value) {
    constexpr size_t kMaxShown = 200;
    std::string out = "\"";
    size_t shown = 0;
    for (unsigned char c : value) {
        if (shown++ == kMaxShown) {
            out += "...";
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    return out;
}

}  // namespace so
