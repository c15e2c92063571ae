#include "core/retrying.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include "core/error.hpp"
#include "core/store.hpp"

namespace so {

namespace {
constexpr long kMaxBackoffMs = 5000;
}

void retry_backoff(int attempt) {
    static thread_local std::mt19937 rng(std::random_device{}());
    long cap = std::min<long>(kMaxBackoffMs, 100L << std::min(attempt, 10));
    long delay = cap / 2 + static_cast<long>(rng() % static_cast<unsigned long>(cap / 2 + 1));
    http::interruptible_sleep(delay);
}

bool retryable_status(long status) { return status >= 500 || status == 429; }

void throw_unreachable(const StoreEndpoint &endpoint, const std::string &error) {
    throw Error(ErrorKind::Io, std::string("could not reach the ") + endpoint.service + " endpoint " +
                                   endpoint.authority + " of backend " + quoted(endpoint.backend) + ": " +
                                   message_text(error));
}

http::Response perform_with_retries(http::Client &client, const StoreEndpoint &endpoint, int max_retries,
                                    bool ignore_interrupts, const std::function<http::Request()> &build) {
    // Retries stop once one request timeout has passed in all.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(client.timeouts().request_ms);
    for (int attempt = 0;; ++attempt) {
        http::Request request = build();
        // A retry gets only what is left of the request timeout.
        long left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
                        .count();
        request.timeout_ms = std::max(1L, left);
        http::Outcome outcome;
        try {
            outcome = client.perform(request);
        } catch (const Error &e) {
            // What the transfer refused (an oversized answer, an internal
            // address): name the endpoint and backend.
            if (e.kind() != ErrorKind::Io && e.kind() != ErrorKind::PermissionDenied) throw;
            throw Error(e.kind(),
                        std::string(endpoint.service) + " endpoint " + message_text(endpoint.authority) +
                            " of backend " + quoted(endpoint.backend) + ": " + e.what(),
                        e.detail(), e.hint());
        }
        bool worth_retry = outcome.transport_ok ? retryable_status(outcome.response.status) : outcome.retryable;
        if (worth_retry && attempt < max_retries && !ignore_interrupts && std::chrono::steady_clock::now() < deadline) {
            retry_backoff(attempt);
            // The backoff may have used up the rest of the timeout: then
            // this answer is the last.
            if (std::chrono::steady_clock::now() < deadline) {
                note_store_retry();
                continue;
            }
        }
        if (!outcome.transport_ok) throw_unreachable(endpoint, outcome.error);
        return std::move(outcome.response);
    }
}

}  // namespace so
