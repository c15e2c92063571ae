// Running the SQL the extension issues through SPI, safely.
//
// Every statement runs under a fixed search_path (pg_catalog, the
// extension's schema, pg_temp last) and with row_security on, whatever the
// caller set; the SQL itself names every table, function and operator
// with its schema (OPERATOR(pg_catalog.=)). So nothing a role plants in a
// schema of its own, or in pg_temp, is ever resolved by our statements,
// and a query run as the extension's owner cannot be turned into code run
// as that owner (the CVE-2018-1058 class).
//
// C side: an error inside is cleaned up by the (sub)transaction abort,
// which restores the settings and the user.
#pragma once

#include "pg/postgres.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"
}

namespace so::pg {

// Runs body as the current user with the pinned settings. The registry
// must be loaded (registry_ensure_loaded) for the extension's schema.
template <typename F>
void with_pinned_search_path(F &&body) {
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", pinned_search_path(), PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    (void)set_config_option("row_security", "on", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    body();
    AtEOXact_GUC(true, nest);
}

// Runs body as the owner of the extension's tables, in a restricted
// security context, with the pinned settings: the roles that call
// so_delete or fire so_manage may neither write the delete queue nor read
// every table that references an object.
template <typename F>
void as_extension_owner(F &&body) {
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(extension_owner_oid(),
                           saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    with_pinned_search_path(body);
    SetUserIdAndSecContext(saved_user, saved_context);
}

}  // namespace so::pg
