// Which endpoints and addresses a backend owned by a non-superuser may use.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/network_policy.hpp"

namespace {

bool may_connect_v4(const char *text) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, text, &a.sin_addr);
    return so::net::restricted_may_connect(reinterpret_cast<sockaddr *>(&a));
}

bool may_connect_v6(const char *text) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, text, &a.sin6_addr);
    return so::net::restricted_may_connect(reinterpret_cast<sockaddr *>(&a));
}

TEST(NetworkPolicy, InternalAddressesAreRefused) {
    so::net::set_allowed_internal_networks({});
    for (const char *v4 : {"127.0.0.1", "127.9.9.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                           "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"})
        EXPECT_FALSE(may_connect_v4(v4)) << v4;
    for (const char *v6 : {"::1", "::", "fe80::1", "fc00::1", "fd12::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                           "64:ff9b::a9fe:a9fe", "ff02::1"})
        EXPECT_FALSE(may_connect_v6(v6)) << v6;
    for (const char *v4 : {"8.8.8.8", "52.216.1.1", "172.32.0.1"}) EXPECT_TRUE(may_connect_v4(v4)) << v4;
    EXPECT_TRUE(may_connect_v6("2a05:d018::1"));
}

TEST(NetworkPolicy, AllowedNetworksLetThrough) {
    so::net::set_allowed_internal_networks(so::net::parse_networks("127.0.0.0/8, fd00::/8"));
    EXPECT_TRUE(may_connect_v4("127.0.0.1"));
    EXPECT_TRUE(may_connect_v6("fd12::1"));
    EXPECT_FALSE(may_connect_v4("10.0.0.1"));
    EXPECT_FALSE(may_connect_v6("::1"));
    so::net::set_allowed_internal_networks({});
    EXPECT_THROW(so::net::parse_networks("127.0.0.0/33"), std::exception);
    EXPECT_THROW(so::net::parse_networks("not-a-network"), std::exception);
}

TEST(NetworkPolicy, EndpointTextsThatAreInternalAddresses) {
    so::net::set_allowed_internal_networks({});
    // Every numeric spelling a resolver would read as an IPv4 address.
    for (const char *host : {"127.0.0.1", "localhost", "LOCALHOST", "api.localhost", "[::1]", "::1",
                             "169.254.169.254", "2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1",
                             "127.0.0.1.", "[::ffff:127.0.0.1]", "0", "10.1"})
        EXPECT_FALSE(so::net::restricted_may_use_host(host)) << host;
    // Names are judged when resolved, at every connection.
    for (const char *host : {"s3.eu-central-1.amazonaws.com", "minio.example.com", "abc.de", "cafe.be", "x1.io",
                             "0xzz.example", "8.8.8.8"})
        EXPECT_TRUE(so::net::restricted_may_use_host(host)) << host;
}

}  // namespace
