// Builds the Store for a registered backend.
#pragma once

#include <memory>

#include "core/backend_config.hpp"
#include "core/store.hpp"

namespace so {

std::shared_ptr<Store> make_store(const BackendConfig &config);

}  // namespace so
