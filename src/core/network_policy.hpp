// Which network addresses a backend may connect to.
//
// A backend registered by a role that is not a superuser must not become a
// way to reach the database server's own network: the cloud metadata
// service (169.254.169.254), loopback services, private networks. Such
// backends are "restricted": every address libcurl is about to connect to
// (after name resolution, so DNS tricks do not help) is checked, and an
// internal one is refused unless it lies in a network a superuser allowed
// (the setting stored_object.allowed_internal_networks).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace so::net {

struct Network {
    int family = 0;  // AF_INET or AF_INET6
    uint8_t address[16] = {};
    int prefix = 0;  // bits

    bool contains(int family, const uint8_t *address) const;
};

// "127.0.0.0/8, ::1" (a bare address is a /32 or /128). Throws
// Error(InvalidParameter) naming the entry that is not one.
std::vector<Network> parse_networks(std::string_view list);

// Whether an address belongs to the server's own or a private network:
// unspecified, loopback, link-local, private (RFC 1918, fc00::/7),
// carrier-grade NAT, benchmarking, IETF protocol, multicast, reserved and
// broadcast ranges, and IPv4 addresses mapped or translated into IPv6.
bool is_internal(const sockaddr *address);

// Whether a restricted backend may name this endpoint host: an IP address
// or localhost is judged as restricted_may_connect would judge it; other
// host names are judged when they are resolved, at every connection.
bool restricted_may_use_host(std::string_view host);

// Whether a restricted backend may connect to address: not internal, or
// in one of the allowed networks.
bool restricted_may_connect(const sockaddr *address);

// The networks a superuser allowed (the setting, parsed by the glue).
void set_allowed_internal_networks(std::vector<Network> networks);

// The address as text, for messages.
std::string address_text(const sockaddr *address);

}  // namespace so::net
