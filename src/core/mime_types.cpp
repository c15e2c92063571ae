#include "core/mime_types.hpp"

#include <cctype>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace so {

namespace {

std::unordered_map<std::string, std::string> &table() {
    static std::unordered_map<std::string, std::string> extensions;
    return extensions;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

void load_from(const std::string &path) {
    auto &extensions = table();
    extensions.clear();
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string type, extension;
        if (!(fields >> type)) continue;
        // The first type listed for an extension wins, as in mimetypes(5).
        while (fields >> extension) extensions.emplace(lower(extension), type);
    }
}

std::once_flag loaded;

}  // namespace

void load_mime_types(const std::string &path) {
    std::call_once(loaded, [] {});
    load_from(path);
}

std::string guess_content_type(std::string_view filename) {
    std::call_once(loaded, [] { load_from("/etc/mime.types"); });
    size_t slash = filename.rfind('/');
    std::string_view base = slash == std::string_view::npos ? filename : filename.substr(slash + 1);
    size_t dot = base.rfind('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == base.size()) return kDefaultContentType;
    auto it = table().find(lower(base.substr(dot + 1)));
    return it == table().end() ? kDefaultContentType : it->second;
}

}  // namespace so
