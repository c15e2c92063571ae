// An OAuth bearer token (Entra for Azure, Google for GCS) kept for one
// backend and fetched again before it expires, as the SDKs do
// (credential_refresh.hpp); a failed refresh keeps a token that is still
// valid.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/credential_refresh.hpp"

namespace so {

struct BearerToken {
    std::string token;
    int64_t expires_on = 0;  // seconds since the epoch
};

class BearerTokenCache {
public:
    explicit BearerTokenCache(std::function<BearerToken(int64_t now)> fetch) : fetch_(std::move(fetch)) {}

    const std::string &get(int64_t now) {
        if (!current_) {
            current_ = fetch_(now);
            fetched_at_ = now;
        } else if (due_for_refresh(now, fetched_at_, current_->expires_on)) {
            try {
                current_ = fetch_(now);
                fetched_at_ = now;
            } catch (...) {
                if (now >= current_->expires_on) throw;  // still valid: used until it expires
            }
        }
        return current_->token;
    }

private:
    std::function<BearerToken(int64_t now)> fetch_;
    std::optional<BearerToken> current_;
    int64_t fetched_at_ = 0;
};

}  // namespace so
