#include "core/http_client.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/interrupts.hpp"
#include "core/network_policy.hpp"

namespace so::http {

namespace {

constexpr int kPollMs = 100;
constexpr int kWaitMs = 5;  // while the next request is being prepared

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool retryable_code(CURLcode code) {
    switch (code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SEND_FAIL_REWIND:
            return true;
        default:
            return false;
    }
}

// Blocks every signal in this thread while it lives. libcurl's threaded
// resolver starts its thread inside curl_multi_perform, and a new thread
// inherits the mask in force: so PostgreSQL's handlers (SIGINT, SIGALRM,
// SIGUSR1, ...) never run on a thread of libcurl's. Signals that arrive
// meanwhile are delivered when the mask is restored, a moment later.
class SignalsBlocked {
public:
    SignalsBlocked() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &previous_);
    }
    ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
    SignalsBlocked(const SignalsBlocked &) = delete;
    SignalsBlocked &operator=(const SignalsBlocked &) = delete;

private:
    sigset_t previous_;
};

// An Error made inside a libcurl callback, which must not throw: kept and
// rethrown once curl has returned.
template <typename... Args>
void keep_failure(std::exception_ptr &failure, Args &&...args) noexcept {
    if (failure) return;
    try {
        failure = std::make_exception_ptr(Error(std::forward<Args>(args)...));
    } catch (...) {
        failure = std::make_exception_ptr(std::bad_alloc());
    }
}

std::string lowercase(std::string s) {
    for (char &c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
    return std::string(s.substr(b, e - b));
}

}  // namespace

const std::string *Response::header(std::string_view name) const {
    for (const auto &h : headers)
        if (h.first == name) return &h.second;
    return nullptr;
}

// The state of one request while curl runs it. Callbacks only touch this.
struct Client::Transfer {
    Request request;
    Outcome outcome;
    size_t sent = 0;
    char *destination = nullptr;
    uint64_t destination_size = 0;
    std::exception_ptr failure;  // thrown by body_destination; rethrown after curl returns
    curl_slist *header_list = nullptr;
    size_t header_bytes = 0;
    bool stopped_after_headers = false;  // a HEAD answered with an error: see header_line
    char error_buffer[CURL_ERROR_SIZE] = {};

    ~Transfer() { curl_slist_free_all(header_list); }

    static size_t read_body(char *buffer, size_t size, size_t count, void *self) {
        auto *t = static_cast<Transfer *>(self);
        size_t n = std::min(size * count, t->request.body_size - t->sent);
        if (n) std::memcpy(buffer, t->request.body + t->sent, n);
        t->sent += n;
        return n;
    }

    // curl rewinds an upload to resend it on a new connection when a reused
    // keep-alive connection turns out dead.
    static int seek_body(void *self, curl_off_t offset, int origin) {
        auto *t = static_cast<Transfer *>(self);
        if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > t->request.body_size)
            return CURL_SEEKFUNC_CANTSEEK;
        t->sent = static_cast<size_t>(offset);
        return CURL_SEEKFUNC_OK;
    }

    static size_t header_line(char *buffer, size_t size, size_t count, void *self) {
        auto *t = static_cast<Transfer *>(self);
        std::string_view line(buffer, size * count);
        if (line.substr(0, 5) == "HTTP/") {
            t->outcome.response.headers.clear();  // a new response (after 100 Continue)
            t->header_bytes = 0;
        }
        t->header_bytes += line.size();
        if (t->header_bytes > kMaxHeaderBytes || t->outcome.response.headers.size() >= kMaxHeaders) {
            keep_failure(t->failure, ErrorKind::Io,
                         "the storage server sent more than " + std::to_string(kMaxHeaders) + " headers or " +
                             std::to_string(kMaxHeaderBytes) + " bytes of headers");
            return 0;  // makes curl stop
        }
        if (line.substr(0, 5) == "HTTP/") return size * count;
        if (line == "\r\n" || line == "\n") {
            // End of the headers. After a HEAD answered with a server error
            // the server (or a proxy) may send a body anyway, which the next
            // request on the connection would read as its answer: stopping
            // here makes curl close the connection; the response is complete
            // all the same. (A 404 keeps its connection: so_exists of missing
            // objects must not pay a new TLS handshake each.)
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            if (t->request.method == "HEAD" && status >= 500) {
                t->stopped_after_headers = true;
                return 0;
            }
            return size * count;
        }
        if (size_t colon = line.find(':'); colon != std::string_view::npos) {
            try {
                t->outcome.response.headers.emplace_back(lowercase(std::string(line.substr(0, colon))),
                                                         trim(line.substr(colon + 1)));
            } catch (...) {
                return 0;  // out of memory: abort the transfer
            }
        }
        return size * count;
    }

    static size_t write_body(char *data, size_t size, size_t count, void *self) {
        auto *t = static_cast<Transfer *>(self);
        size_t n = size * count;
        try {
            long status = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
            bool to_destination = t->request.body_destination && status >= 200 && status < 300;
            if (!to_destination) {
                if (t->outcome.response.body.size() + n > t->request.max_body)
                    throw Error(ErrorKind::Io, "the storage server sent a response body larger than " +
                                                   std::to_string(t->request.max_body) + " bytes (HTTP status " +
                                                   std::to_string(status) + ")");
                t->outcome.response.body.append(data, n);
                return n;
            }
            if (!t->destination) {
                curl_off_t length = -1;
                curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
                if (length < 0) throw Error(ErrorKind::Io, "the storage server sent a body without a length");
                if (static_cast<uint64_t>(length) > t->request.max_destination)
                    throw Error(ErrorKind::Io, "the storage server announced " + std::to_string(length) +
                                                   " bytes where at most " +
                                                   std::to_string(t->request.max_destination) + " were asked for");
                t->destination_size = static_cast<uint64_t>(length);
                t->destination = t->request.body_destination(t->destination_size);
            }
            if (t->outcome.response.body_written + n > t->destination_size)
                throw Error(ErrorKind::Io, "the storage server sent more bytes than announced");
            std::memcpy(t->destination + t->outcome.response.body_written, data, n);
            t->outcome.response.body_written += n;
            return n;
        } catch (...) {
            if (!t->failure) t->failure = std::current_exception();
            return 0;  // makes curl stop with CURLE_WRITE_ERROR
        }
    }

    // Every connection of a restricted backend passes here, with the
    // address name resolution produced.
    static curl_socket_t open_socket(void *self, curlsocktype, curl_sockaddr *address) {
        auto *t = static_cast<Transfer *>(self);
        if (!net::restricted_may_connect(&address->addr)) {
            keep_failure(t->failure, ErrorKind::PermissionDenied,
                         "refused to connect to the internal address " + net::address_text(&address->addr) +
                             " for a storage backend not registered by a superuser",
                         std::string(),
                         "A superuser may allow internal networks with the setting "
                         "stored_object.allowed_internal_networks.");
            return CURL_SOCKET_BAD;
        }
        return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    }

    CURL *easy = nullptr;
};

Client::Client(Timeouts timeouts) : multi_(nullptr), timeouts_(timeouts) {
    global_init();
    multi_ = curl_multi_init();
    if (!multi_) throw Error(ErrorKind::Internal, "could not initialise libcurl");
}

Client::~Client() {
    for (void *h : idle_handles_) curl_easy_cleanup(static_cast<CURL *>(h));
    curl_multi_cleanup(static_cast<CURLM *>(multi_));
}

void *Client::take_handle() {
    if (!idle_handles_.empty()) {
        void *h = idle_handles_.back();
        idle_handles_.pop_back();
        curl_easy_reset(static_cast<CURL *>(h));
        return h;
    }
    CURL *h = curl_easy_init();
    if (!h) throw std::bad_alloc();
    return h;
}

void Client::setup(void *handle, Transfer &t) {
    CURL *h = static_cast<CURL *>(handle);
    t.easy = h;
    const Request &r = t.request;
    curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // never touch the server's signal handlers
    constexpr long kCleanupTimeoutMs = 5000;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     r.ignore_interrupts ? std::min(timeouts_.connect_ms, kCleanupTimeoutMs) : timeouts_.connect_ms);
    long request_ms = r.timeout_ms > 0 ? std::min(r.timeout_ms, timeouts_.request_ms) : timeouts_.request_ms;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r.ignore_interrupts ? std::min(request_ms, kCleanupTimeoutMs) : request_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t.error_buffer);
    if (fresh_connection_next_) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        fresh_connection_next_ = false;
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transfer::header_line);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Transfer::write_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
    if (restricted_) {
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, &Transfer::open_socket);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &t);
    }
    if (r.method == "HEAD") {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (r.method == "PUT") {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, &Transfer::read_body);
        curl_easy_setopt(h, CURLOPT_READDATA, &t);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &Transfer::seek_body);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body_size));
    } else if (r.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r.body ? r.body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body_size));
    } else if (r.method != "GET") {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    // Only the headers we sign: no "Expect: 100-continue" round trip, no
    // default Content-Type for POST.
    curl_slist *list = nullptr;
    for (const auto &header : r.headers) list = curl_slist_append(list, (header.first + ": " + header.second).c_str());
    list = curl_slist_append(list, "Expect:");
    list = curl_slist_append(list, "Accept:");
    if (r.method == "POST") list = curl_slist_append(list, "Content-Type:");
    t.header_list = list;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
}

std::vector<Outcome> Client::perform_as_ready(size_t count, int max_parallel,
                                              const std::function<bool(size_t, Request &)> &next) {
    CURLM *multi = static_cast<CURLM *>(multi_);
    std::vector<Transfer> transfers(count);  // never resized: callbacks hold pointers into it
    std::map<CURL *, size_t> running;
    size_t next_index = 0;
    bool interruptible = true;
    auto check_interrupts = [&] {
        if (interruptible) throw_if_interrupted();
    };
    auto stop_all = [&] {
        for (auto &entry : running) {
            curl_multi_remove_handle(multi, entry.first);
            curl_easy_cleanup(entry.first);  // its connection may be mid-transfer: do not reuse
        }
        running.clear();
    };
    try {
        while (next_index < count || !running.empty()) {
            bool waiting = false;  // the next request is not ready yet
            while (static_cast<int>(running.size()) < std::max(1, max_parallel) && next_index < count) {
                Transfer &t = transfers[next_index];
                if (!next(next_index, t.request)) {
                    waiting = true;
                    break;
                }
                if (t.request.ignore_interrupts) interruptible = false;
                CURL *h = static_cast<CURL *>(take_handle());
                setup(h, t);
                curl_multi_add_handle(multi, h);
                running[h] = next_index++;
            }
            int still_running = 0;
            {
                SignalsBlocked blocked;
                curl_multi_perform(multi, &still_running);
            }
            int queued = 0;
            while (CURLMsg *msg = curl_multi_info_read(multi, &queued)) {
                if (msg->msg != CURLMSG_DONE) continue;
                CURL *h = msg->easy_handle;
                Transfer &t = transfers[running[h]];
                CURLcode code = msg->data.result;
                long connects = 0;
                curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
                connections_opened_ += connects;
                if (code == CURLE_OK || (t.stopped_after_headers && !t.failure)) {
                    t.outcome.transport_ok = true;
                    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t.outcome.response.status);
                    if (t.outcome.response.status >= 500) fresh_connection_next_ = true;
                } else {
                    t.outcome.retryable = retryable_code(code);
                    fresh_connection_next_ = true;
                    if (code == CURLE_OUT_OF_MEMORY)
                        // libcurl's word for a header line over its 100 KiB limit, too.
                        t.outcome.error = "the response could not be held: a header line over libcurl's limit of "
                                          "100 KiB, or no memory left";
                    else
                        t.outcome.error = t.error_buffer[0] ? t.error_buffer : curl_easy_strerror(code);
                }
                curl_multi_remove_handle(multi, h);
                running.erase(h);
                idle_handles_.push_back(h);
                if (t.failure) std::rethrow_exception(t.failure);
            }
            if (running.empty() && next_index >= count) break;
            check_interrupts();
            curl_multi_poll(multi, nullptr, 0, waiting ? kWaitMs : kPollMs, nullptr);
            check_interrupts();
        }
    } catch (...) {
        stop_all();
        throw;
    }
    std::vector<Outcome> outcomes;
    outcomes.reserve(transfers.size());
    for (auto &t : transfers) outcomes.push_back(std::move(t.outcome));
    return outcomes;
}

std::vector<Outcome> Client::perform(std::vector<Request> &requests, int max_parallel) {
    return perform_as_ready(requests.size(), max_parallel, [&](size_t i, Request &slot) {
        slot = std::move(requests[i]);
        return true;
    });
}

Outcome Client::perform(Request &request) {
    return std::move(perform_as_ready(1, 1, [&](size_t, Request &slot) {
                         slot = std::move(request);
                         return true;
                     }).front());
}

void interruptible_sleep(long ms) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        throw_if_interrupted();
        std::this_thread::sleep_for(std::min(std::chrono::milliseconds(20),
                                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 until - std::chrono::steady_clock::now())));
    }
    throw_if_interrupted();
}

}  // namespace so::http
