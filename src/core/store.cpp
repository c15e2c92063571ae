#include "core/store.hpp"

#include "core/error.hpp"

namespace so {

void throw_not_found(const std::string &backend, const std::string &key) {
    throw Error(ErrorKind::NotFound, "stored object " + quoted(key) + " does not exist in backend " + quoted(backend));
}

void throw_already_exists(const std::string &backend, const std::string &key) {
    throw Error(ErrorKind::AlreadyExists,
                "stored object " + quoted(key) + " already exists in backend " + quoted(backend), {},
                "Pass overwrite => true to replace it.");
}

}  // namespace so
