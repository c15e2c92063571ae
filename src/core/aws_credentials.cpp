#include "core/aws_credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace so {

namespace {

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
    return std::string(s.substr(b, e - b));
}

constexpr size_t kMaxFileSize = 1 << 20;

std::string read_small_file(const std::string &path, bool must_be_private) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd)
        throw Error(ErrorKind::NotConfigured,
                    "could not open the file " + quoted(path) + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw Error(ErrorKind::NotConfigured, quoted(path) + " is not a regular file");
    if (must_be_private && (st.st_mode & (S_IRWXG | S_IRWXO)))
        throw Error(ErrorKind::PermissionDenied,
                    "the credentials file " + quoted(path) + " may be read by others than its owner", {},
                    "Make it readable by the database server's OS user only: chmod 600.");
    if (static_cast<size_t>(st.st_size) > kMaxFileSize)
        throw Error(ErrorKind::NotConfigured, quoted(path) + " is larger than 1 MiB");
    std::string content(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < content.size()) {
        ssize_t n = ::read(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    content.resize(done);
    return content;
}

}  // namespace

std::string read_private_file(const std::string &path) { return read_small_file(path, true); }

std::string read_token_file(const std::string &path) {
    std::string token = read_small_file(path, false);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    return token;
}

sigv4::Credentials credentials_from_environment() {
    auto env = [](const char *name) {
        const char *v = std::getenv(name);
        return std::string(v ? v : "");
    };
    return {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")};
}

std::optional<std::map<std::string, std::string>> read_profile(const std::string &content,
                                                               const std::string &section) {
    std::map<std::string, std::string> values;
    bool in_section = false, found = false;
    size_t start = 0;
    while (start < content.size()) {
        size_t end = content.find('\n', start);
        if (end == std::string::npos) end = content.size();
        std::string line = trim(std::string_view(content).substr(start, end - start));
        start = end + 1;
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line.front() == '[' && line.back() == ']') {
            in_section = trim(std::string_view(line).substr(1, line.size() - 2)) == section;
            found |= in_section;
            continue;
        }
        if (!in_section) continue;
        size_t eq = line.find('=');
        if (eq == std::string::npos) continue;
        values[trim(std::string_view(line).substr(0, eq))] = trim(std::string_view(line).substr(eq + 1));
    }
    if (!found) return std::nullopt;
    return values;
}

sigv4::Credentials credentials_from_file(const std::string &path, const std::string &profile) {
    auto values = read_profile(read_private_file(path), profile);
    if (!values)
        throw Error(ErrorKind::NotConfigured,
                    "the credentials file " + quoted(path) + " has no profile " + quoted(profile));
    return {(*values)["aws_access_key_id"], (*values)["aws_secret_access_key"], (*values)["aws_session_token"]};
}

}  // namespace so
