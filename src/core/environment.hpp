// The database server's environment, where the cloud SDKs' credential
// providers look (the postmaster's, inherited by every backend).
#pragma once

#include <cstdlib>
#include <string>

namespace so {

// The value of an environment variable; empty when unset.
inline std::string environment(const char *name) {
    const char *v = std::getenv(name);
    return v ? v : "";
}

}  // namespace so
