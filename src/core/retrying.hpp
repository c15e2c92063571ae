// Requests to an object store over HTTP, retried the way the cloud SDKs
// retry: after a dropped connection, a 5xx or a 429, with exponential
// backoff and jitter, within one request timeout in all.
#pragma once

#include <functional>
#include <string>

#include "core/http_client.hpp"

namespace so {

// What a message names when a store cannot be reached.
struct StoreEndpoint {
    const char *service;    // "S3", "Azure Blob Storage"
    std::string authority;  // host[:port]
    std::string backend;    // the backend's key
};

// Sleeps before retry number attempt (from 0): at least half of an
// exponential delay capped at 5 s, so retries spread out without ever
// hammering the store. Throws Error(Canceled) when interrupted.
void retry_backoff(int attempt);

bool retryable_status(long status);

// The answer to the request build() makes (called again for each retry,
// so a signature is fresh). A request that ignores interrupts (cleanup) is
// never retried. Throws Error(Io) naming the endpoint and backend when no
// answer came.
http::Response perform_with_retries(http::Client &client, const StoreEndpoint &endpoint, int max_retries,
                                    bool ignore_interrupts, const std::function<http::Request()> &build);

// The Error(Io) for a transfer that got no answer.
[[noreturn]] void throw_unreachable(const StoreEndpoint &endpoint, const std::string &error);

}  // namespace so
