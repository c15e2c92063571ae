// Running SQL as the extension's owner.
#pragma once

#include "pg/postgres.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "miscadmin.h"
}

namespace so::pg {

// Runs body as the owner of the extension's tables, in a restricted
// security context: the roles that call so_delete or fire so_manage may
// neither write the delete queue nor read every table that references an
// object. C side; an error inside is cleaned up by the (sub)transaction
// abort, which restores the user.
template <typename F>
void as_extension_owner(F &&body) {
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(extension_owner_oid(),
                           saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    body();
    SetUserIdAndSecContext(saved_user, saved_context);
}

}  // namespace so::pg
