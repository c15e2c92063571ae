#include "core/network_policy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cctype>
#include <cstring>

#include "core/error.hpp"

namespace so::net {

namespace {

std::vector<Network> &allowed() {
    static std::vector<Network> networks;
    return networks;
}

bool prefix_matches(const uint8_t *a, const uint8_t *b, int bits) {
    int whole = bits / 8, rest = bits % 8;
    if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

struct Range {
    const char *network;
    int prefix;
};

// IANA special-purpose ranges that are not the public Internet.
constexpr Range kInternalV4[] = {
    {"0.0.0.0", 8},      {"10.0.0.0", 8},     {"100.64.0.0", 10},  {"127.0.0.0", 8},    {"169.254.0.0", 16},
    {"172.16.0.0", 12},  {"192.0.0.0", 24},   {"192.0.2.0", 24},   {"192.168.0.0", 16}, {"198.18.0.0", 15},
    {"198.51.100.0", 24}, {"203.0.113.0", 24}, {"224.0.0.0", 4},    {"240.0.0.0", 4},
};
constexpr Range kInternalV6[] = {
    {"::", 128}, {"::1", 128}, {"fc00::", 7}, {"fe80::", 10}, {"fec0::", 10}, {"ff00::", 8}, {"2001:db8::", 32},
};

bool internal_v4(const uint8_t *a) {
    for (const Range &r : kInternalV4) {
        uint8_t net[4];
        inet_pton(AF_INET, r.network, net);
        if (prefix_matches(a, net, r.prefix)) return true;
    }
    return false;
}

bool internal_v6(const uint8_t *a) {
    // IPv4 behind IPv6: mapped (::ffff:0:0/96), compatible (::/96) and the
    // well-known NAT64 prefix (64:ff9b::/96) reach an IPv4 address.
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[12] = {};
    if (std::memcmp(a, mapped, 12) == 0 || std::memcmp(a, nat64, 12) == 0 || std::memcmp(a, zero, 12) == 0)
        return internal_v4(a + 12) || std::memcmp(a, zero, 12) == 0;
    for (const Range &r : kInternalV6) {
        uint8_t net[16];
        inet_pton(AF_INET6, r.network, net);
        if (prefix_matches(a, net, r.prefix)) return true;
    }
    return false;
}

const uint8_t *bytes_of(const sockaddr *address, int *family) {
    *family = address->sa_family;
    if (address->sa_family == AF_INET)
        return reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in *>(address)->sin_addr);
    if (address->sa_family == AF_INET6)
        return reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr);
    return nullptr;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

bool Network::contains(int other_family, const uint8_t *other) const {
    return other_family == family && prefix_matches(other, address, prefix);
}

std::vector<Network> parse_networks(std::string_view list) {
    std::vector<Network> networks;
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string_view::npos) comma = list.size();
        std::string_view entry = list.substr(start, comma - start);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.remove_prefix(1);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.remove_suffix(1);
        start = comma + 1;
        if (entry.empty()) continue;
        auto bad = [&] {
            throw Error(ErrorKind::InvalidParameter, "invalid network " + quoted(entry), {},
                        "Write networks as 10.0.0.0/8 or fd00::/8, separated by commas.");
        };
        std::string text(entry.substr(0, entry.find('/')));
        Network n;
        if (inet_pton(AF_INET, text.c_str(), n.address) == 1) {
            n.family = AF_INET;
            n.prefix = 32;
        } else if (inet_pton(AF_INET6, text.c_str(), n.address) == 1) {
            n.family = AF_INET6;
            n.prefix = 128;
        } else {
            bad();
        }
        if (size_t slash = entry.find('/'); slash != std::string_view::npos) {
            std::string bits(entry.substr(slash + 1));
            if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) bad();
            int prefix = std::stoi(bits);
            if (prefix > n.prefix) bad();
            n.prefix = prefix;
        }
        networks.push_back(n);
        if (comma == list.size()) break;
    }
    return networks;
}

bool is_internal(const sockaddr *address) {
    int family;
    const uint8_t *a = bytes_of(address, &family);
    if (!a) return true;  // not IP: never for a restricted backend
    return family == AF_INET ? internal_v4(a) : internal_v6(a);
}

// One to four dot-separated numbers, each decimal, octal or 0x-hex: what
// inet_aton (and so many resolvers) reads as an IPv4 address.
static bool numeric_ipv4_form(std::string host) {
    if (!host.empty() && host.back() == '.') host.pop_back();
    if (host.empty()) return false;
    int parts = 0;
    size_t start = 0;
    for (;;) {
        size_t end = host.find('.', start);
        std::string part = host.substr(start, end == std::string::npos ? std::string::npos : end - start);
        bool hex = part.size() > 1 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X');
        std::string digits = hex ? part.substr(2) : part;
        const char *allowed = hex ? "0123456789abcdefABCDEF" : "0123456789";
        if ((digits.empty() && !hex) || digits.find_first_not_of(allowed) != std::string::npos) return false;
        if (++parts > 4) return false;
        if (end == std::string::npos) return true;
        start = end + 1;
    }
}

bool restricted_may_use_host(std::string_view host_view) {
    std::string host = lower(host_view);
    if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost" || (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0))
        host = "127.0.0.1";
    sockaddr_in v4{};
    sockaddr_in6 v6{};
    if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        return restricted_may_connect(reinterpret_cast<sockaddr *>(&v4));
    }
    if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        return restricted_may_connect(reinterpret_cast<sockaddr *>(&v6));
    }
    // Numeric forms inet_pton does not take but resolvers do (2130706433,
    // 0x7f.1, 0177.1, 127.1): refuse them; the connection is checked anyway.
    return !numeric_ipv4_form(host);
}

bool restricted_may_connect(const sockaddr *address) {
    if (!is_internal(address)) return true;
    int family;
    const uint8_t *a = bytes_of(address, &family);
    if (!a) return false;
    for (const Network &n : allowed())
        if (n.contains(family, a)) return true;
    return false;
}

void set_allowed_internal_networks(std::vector<Network> networks) { allowed() = std::move(networks); }

std::string address_text(const sockaddr *address) {
    char buf[INET6_ADDRSTRLEN] = "?";
    int family;
    const uint8_t *a = bytes_of(address, &family);
    if (a) inet_ntop(family, a, buf, sizeof buf);
    return buf;
}

}  // namespace so::net
