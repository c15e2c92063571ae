#include "pg/settings.hpp"

#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace so::pg {

int connect_timeout_ms = 10000;
int request_timeout_ms = 300000;

void settings_init() {
    DefineCustomIntVariable("stored_object.connect_timeout",
                            "Time allowed to connect to an S3 endpoint, when the backend sets none.", nullptr,
                            &connect_timeout_ms, 10000, 1, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("stored_object.request_timeout",
                            "Time allowed for one S3 request (retries included), when the backend sets none.",
                            nullptr, &request_timeout_ms, 300000, 1, 24 * 3600 * 1000, PGC_USERSET, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("stored_object");
}

}  // namespace so::pg
