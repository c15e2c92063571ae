// HTTP on libcurl for the S3 backend, run inside a database backend.
//
// One Client per backend per session: its multi handle owns the connection
// cache, so requests reuse keep-alive connections across calls. Transfers
// are driven by our own loop, which polls at most 100 ms at a time and
// checks the database's interrupt flags in between: a cancel,
// statement_timeout or pg_terminate_backend stops a transfer within a
// fraction of a second (Error(Canceled)); no callback ever calls into
// PostgreSQL.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace so::http {

// Limits on what a server may send back, so a broken or hostile endpoint
// cannot exhaust the database server's memory.
constexpr size_t kDefaultMaxBody = 1 << 20;
constexpr size_t kMaxHeaders = 200;
constexpr size_t kMaxHeaderBytes = 64 << 10;  // all header lines of one response

struct Request {
    std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    const char *body = nullptr;  // sent as is, not copied; must outlive the call
    size_t body_size = 0;
    // For a successful GET: called once with the body's size (from
    // Content-Length) for where to write it, so it is not copied. Without
    // it, the body is collected in Response::body.
    std::function<char *(uint64_t)> body_destination;
    // The most bytes body_destination may be asked for (the length of a
    // ranged read): a larger Content-Length is refused, not allocated.
    uint64_t max_destination = UINT64_MAX;
    // The most bytes collected in Response::body (error documents, XML
    // answers): a longer body stops the transfer with an error.
    size_t max_body = kDefaultMaxBody;
    // Cleanup after a failure (aborting a multipart upload) must run even
    // while a cancel is pending: such requests ignore interrupts and get a
    // short timeout instead.
    bool ignore_interrupts = false;
    long timeout_ms = 0;  // shorter than the client's request timeout, if set
};

struct Response {
    long status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lowercase
    std::string body;
    uint64_t body_written = 0;  // bytes written to body_destination

    const std::string *header(std::string_view lowercase_name) const;
};

// How one transfer ended.
struct Outcome {
    bool transport_ok = false;  // false: no complete HTTP response (see error)
    bool retryable = false;     // a transport failure worth another attempt
    std::string error;          // curl's description, without the URL's query
    Response response;
};

struct Timeouts {
    long connect_ms = 10000;
    long request_ms = 300000;
};

class Client {
public:
    explicit Client(Timeouts timeouts);
    ~Client();
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    // Runs the requests, at most max_parallel at a time. Throws
    // Error(Canceled) when interrupted (every transfer is stopped first);
    // other failures are reported per request in its Outcome.
    std::vector<Outcome> perform(std::vector<Request> &requests, int max_parallel);
    Outcome perform(Request &request);

    // The same for count requests made as they become ready: next(i, slot)
    // fills request i and returns true, or returns false when it is not
    // ready yet (it is asked again a few milliseconds later), so work such
    // as hashing the next part overlaps the transfers already running.
    std::vector<Outcome> perform_as_ready(size_t count, int max_parallel,
                                          const std::function<bool(size_t, Request &)> &next);

    void set_timeouts(Timeouts timeouts) { timeouts_ = timeouts; }
    // Restricted: refuse to connect to internal addresses (network_policy.hpp).
    void set_restricted(bool restricted) { restricted_ = restricted; }
    // Verify servers against the CA certificates of this PEM file instead
    // of the system's (a private CA); empty: the system's.
    void set_ca_file(std::string path) { ca_file_ = std::move(path); }
    const Timeouts &timeouts() const { return timeouts_; }

    // Connections opened so far (for tests and benchmarks of reuse).
    long connections_opened() const { return connections_opened_; }

private:
    struct Transfer;
    void *multi_;
    std::vector<void *> idle_handles_;
    Timeouts timeouts_;
    bool restricted_ = false;
    std::string ca_file_;
    long connections_opened_ = 0;
    // After a failed exchange the connection may hold what the server sent
    // beyond the response (a body after HEAD): the next request opens a new one.
    bool fresh_connection_next_ = false;

    void *take_handle();
    void setup(void *handle, Transfer &transfer);
};

// Sleeps for ms milliseconds in short steps, throwing Error(Canceled) as
// soon as an interrupt arrives.
void interruptible_sleep(long ms);

}  // namespace so::http
