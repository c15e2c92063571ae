// When the SDKs fetch temporary credentials or tokens again: five minutes
// before they expire, or when a quarter of their lifetime is left if they
// live less than 20 minutes.
#pragma once

#include <algorithm>
#include <cstdint>

namespace so {

inline bool due_for_refresh(int64_t now, int64_t fetched_at, int64_t expires_at) {
    int64_t margin = std::min<int64_t>(300, std::max<int64_t>(1, (expires_at - fetched_at) / 4));
    return now >= expires_at - margin;
}

}  // namespace so
