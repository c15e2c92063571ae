// libcurl's threaded resolver runs with every signal blocked.
//
// Debian's libcurl resolves host names on a thread it starts inside
// curl_multi_perform, and a new thread inherits the signal mask of the
// thread that creates it. Inside a database server that would let
// PostgreSQL's handlers (SIGALRM for statement_timeout, SIGINT for a
// cancel, SIGUSR1 for latches, SIGTERM) run on libcurl's thread. The HTTP
// client blocks signals around its curl calls (SignalsBlocked in
// src/core/http_client.cpp); this test watches from inside the resolver.
//
// getaddrinfo is interposed: this executable defines it (exported, so
// libcurl's calls bind to it), records the calling thread and its signal
// mask, and forwards to the C library's. The made-up host name below is
// answered as 127.0.0.1, where a one-shot HTTP server of the test listens,
// so nothing depends on /etc/hosts or DNS; "localhost" would not do, as
// libcurl answers it itself without resolving.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/http_client.hpp"

namespace {

constexpr const char *kTestHost = "so-resolver-signals.invalid";
constexpr int kWatched[] = {SIGALRM, SIGINT, SIGUSR1, SIGTERM};

struct ResolverCall {
    pthread_t thread;
    bool blocked[std::size(kWatched)];
};

std::mutex calls_mutex;
std::vector<ResolverCall> calls;  // getaddrinfo calls for kTestHost

using GetaddrinfoFn = int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

GetaddrinfoFn real_getaddrinfo() {
    static GetaddrinfoFn real = reinterpret_cast<GetaddrinfoFn>(dlsym(RTLD_NEXT, "getaddrinfo"));
    return real;
}

}  // namespace

extern "C" int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                           struct addrinfo **res) {
    GetaddrinfoFn real = real_getaddrinfo();
    if (!real) return EAI_SYSTEM;
    if (node && std::strcmp(node, kTestHost) == 0) {
        ResolverCall call{pthread_self(), {}};
        sigset_t mask;
        sigemptyset(&mask);
        pthread_sigmask(SIG_BLOCK, nullptr, &mask);  // reads the calling thread's mask
        for (size_t i = 0; i < std::size(kWatched); ++i) call.blocked[i] = sigismember(&mask, kWatched[i]) == 1;
        {
            std::lock_guard<std::mutex> lock(calls_mutex);
            calls.push_back(call);
        }
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}

namespace {

// Accepts one connection on 127.0.0.1, reads one request and answers it.
class OneShotServer {
public:
    OneShotServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
            ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr *>(&address), &length) != 0)
            throw std::runtime_error(std::string("cannot listen on 127.0.0.1: ") + std::strerror(errno));
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~OneShotServer() {
        finish();
        ::close(fd_);
    }
    int port() const { return port_; }
    // Waits for the server's thread; whether it answered a request.
    bool finish() {
        if (thread_.joinable()) thread_.join();
        return served_;
    }

private:
    // Waits at most 10 s for each step: a client that never comes does not
    // hang the test.
    static bool wait_readable(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 10000) == 1;
    }
    void serve() {
        if (!wait_readable(fd_)) return;
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        std::string request;
        char buffer[4096];
        while (request.find("\r\n\r\n") == std::string::npos && wait_readable(client)) {
            ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
            if (n <= 0) break;
            request.append(buffer, static_cast<size_t>(n));
        }
        if (request.find("\r\n\r\n") != std::string::npos) {
            static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            served_ = ::send(client, answer, sizeof answer - 1, MSG_NOSIGNAL) == sizeof answer - 1;
        }
        ::close(client);
    }

    int fd_ = -1;
    int port_ = 0;
    bool served_ = false;
    std::thread thread_;
};

bool watched_blocked_here(size_t i) {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return sigismember(&mask, kWatched[i]) == 1;
}

}  // namespace

TEST(HttpClientSignals, ResolverThreadRunsWithSignalsBlocked) {
    ASSERT_NE(real_getaddrinfo(), nullptr);
    {
        std::lock_guard<std::mutex> lock(calls_mutex);
        calls.clear();
    }
    // The caller has these signals open, as a database backend has.
    sigset_t watched, previous;
    sigemptyset(&watched);
    for (int s : kWatched) sigaddset(&watched, s);
    pthread_sigmask(SIG_UNBLOCK, &watched, &previous);

    OneShotServer server;
    so::http::Client client(so::http::Timeouts{5000, 10000});
    so::http::Request request;
    request.url = "http://" + std::string(kTestHost) + ":" + std::to_string(server.port()) + "/";
    so::http::Outcome outcome = client.perform(request);
    // The caller's mask is back as it was.
    for (size_t i = 0; i < std::size(kWatched); ++i)
        EXPECT_FALSE(watched_blocked_here(i)) << "signal " << kWatched[i] << " left blocked in the caller";
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);

    EXPECT_TRUE(server.finish()) << "the test's server answered no request";
    ASSERT_TRUE(outcome.transport_ok) << outcome.error;
    EXPECT_EQ(outcome.response.status, 200);
    EXPECT_EQ(outcome.response.body, "ok");

    std::lock_guard<std::mutex> lock(calls_mutex);
    ASSERT_FALSE(calls.empty()) << "getaddrinfo was never called for " << kTestHost
                                << ": the interposition did not take, or libcurl did not resolve";
    for (const ResolverCall &call : calls) {
        // libcurl's threaded resolver: not the thread that called perform.
        EXPECT_FALSE(pthread_equal(call.thread, pthread_self())) << "getaddrinfo ran on the calling thread";
        for (size_t i = 0; i < std::size(kWatched); ++i)
            EXPECT_TRUE(call.blocked[i]) << "signal " << kWatched[i] << " (" << strsignal(kWatched[i])
                                         << ") was not blocked on libcurl's resolver thread";
    }
}
