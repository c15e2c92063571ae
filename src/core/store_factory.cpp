#include "core/store_factory.hpp"

#include "core/error.hpp"
#include "core/local_store.hpp"

namespace so {

std::shared_ptr<Store> make_store(const BackendConfig &config) {
    switch (config.kind) {
        case BackendKind::Local: return std::make_shared<LocalStore>(config.key, config.local);
        case BackendKind::S3:
            throw Error(ErrorKind::NotSupported,
                        "storage backend " + quoted(config.key) + " is an S3 backend, which this build cannot use yet");
    }
    throw Error(ErrorKind::Internal, "unknown backend kind");
}

}  // namespace so
