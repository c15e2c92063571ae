#include "pg/settings.hpp"

#include "core/error.hpp"
#include "core/network_policy.hpp"
#include "pg/postgres.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace so::pg {

int connect_timeout_ms = 10000;
int request_timeout_ms = 300000;
#ifdef SO_TEST_HOOKS
int64_t test_pause_after_promote_key = 0;
bool test_pad_wal_to_page_start = false;
#endif

namespace {

char *allowed_internal_networks = nullptr;

// The list must parse; its message names the bad entry.
bool check_networks(char **value, void **extra, GucSource) {
    char message[512] = "";
    try {
        so::net::parse_networks(*value ? *value : "");
    } catch (const std::exception &e) {
        so::message_text_into(message, sizeof message, e.what(), 400);
    } catch (...) {
        snprintf(message, sizeof message, "out of memory");
    }
    if (!message[0]) return true;
    GUC_check_errdetail("%s", message);
    return false;
}

void assign_networks(const char *value, void *) {
    try {
        so::net::set_allowed_internal_networks(so::net::parse_networks(value ? value : ""));
    } catch (...) {
        so::net::set_allowed_internal_networks({});  // checked before; out of memory: allow nothing
    }
}

}  // namespace

void settings_init() {
    DefineCustomIntVariable("stored_object.connect_timeout",
                            "Time allowed to connect to an S3 endpoint, when the backend sets none.", nullptr,
                            &connect_timeout_ms, 10000, 1, 3600 * 1000, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("stored_object.request_timeout",
                            "Time allowed for one S3 request (retries included), when the backend sets none.",
                            nullptr, &request_timeout_ms, 300000, 1, 24 * 3600 * 1000, PGC_USERSET, GUC_UNIT_MS,
                            nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "stored_object.allowed_internal_networks",
        "Internal networks (loopback, private, link-local) that backends not registered by a superuser may reach.",
        "A comma-separated list such as 10.20.0.0/16, fd00::/8. Empty: none.", &allowed_internal_networks, "",
        PGC_SUSET, 0, check_networks, assign_networks, nullptr);
#ifdef SO_TEST_HOOKS
    static int pause_key = 0;
    DefineCustomIntVariable("stored_object.test_pause_after_promote", "Test builds only.", nullptr, &pause_key, 0, 0,
                            INT32_MAX, PGC_USERSET, 0, nullptr,
                            [](int value, void *) { test_pause_after_promote_key = value; }, nullptr);
    DefineCustomBoolVariable("stored_object.test_pad_wal_to_page_start", "Test builds only.", nullptr,
                             &test_pad_wal_to_page_start, false, PGC_USERSET, 0, nullptr, nullptr, nullptr);
#endif
    MarkGUCPrefixReserved("stored_object");
}

}  // namespace so::pg
