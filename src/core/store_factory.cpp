#include "core/store_factory.hpp"

#include "core/azure_store.hpp"
#include "core/error.hpp"
#include "core/local_store.hpp"
#include "core/s3_store.hpp"

namespace so {

std::shared_ptr<Store> make_store(const BackendConfig &config) {
    switch (config.kind) {
        case BackendKind::Local: return std::make_shared<LocalStore>(config.key, config.local);
        case BackendKind::S3: return std::make_shared<S3Store>(config.key, config.s3);
        case BackendKind::Azure: return std::make_shared<AzureStore>(config.key, config.azure);
    }
    throw Error(ErrorKind::Internal, "unknown backend kind");
}

}  // namespace so
