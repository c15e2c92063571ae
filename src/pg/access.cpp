#include "pg/access.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "pg/guard.hpp"
#include "pg/managed_columns.hpp"
#include "pg/pinned_sql.hpp"

extern "C" {
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/rls.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "storage/proc.h"
#include "access/xact.h"
}

namespace so::pg {

namespace {

// Counts changes of roles and memberships: every cached decision about a
// role is stale when it moves.
uint64_t role_generation = 1;

void roles_changed(Datum, int, uint32) {
    ++role_generation;
    registry_invalidate();  // a backend owner may have become, or stopped being, a superuser
}

// C side: may ereport.
AclMode compute_privileges(const Backend &backend, Oid role) {
    if (is_storage_admin(role)) return kAllPrivileges;
    if (backend.default_acl) return has_privs_of_role(role, backend.owner) ? kAllPrivileges : 0;
    AclMode held = 0;
    for (const AclItem &item : backend.acl)
        if (item.ai_grantee == ACL_ID_PUBLIC || has_privs_of_role(role, item.ai_grantee))
            held |= ACLITEM_GET_PRIVS(item);
    return held & kAllPrivileges;
}

}  // namespace

void access_init() {
    CacheRegisterSyscacheCallback(AUTHOID, roles_changed, 0);
    CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, roles_changed, 0);
}

const char *privilege_name(AclMode privilege) {
    if (privilege == kReadPrivilege) return "read";
    if (privilege == kWritePrivilege) return "write";
    if (privilege == kDeletePrivilege) return "delete";
    return "all";
}

AclMode backend_privileges(const BackendRef &ref, Oid role) {
    const Backend &b = *ref.backend;
    for (const auto &c : b.checked)
        if (c.role == role && c.generation == role_generation) return c.privileges;
    AclMode held = 0;
    uint64_t generation = role_generation;
    pg_call([&] { held = compute_privileges(b, role); });
    Backend::Checked &slot = b.checked[b.next_checked++ % 4];
    slot.role = role;
    slot.generation = generation;
    slot.privileges = held;
    return held;
}

void require_backend_privilege(const BackendRef &ref, AclMode privilege) {
    if (backend_privileges(ref, GetUserId()) & privilege) return;
    const std::string &key = ref.backend->key;
    throw Error(ErrorKind::PermissionDenied,
                "permission denied for storage backend " + quoted(key) + ": the " + privilege_name(privilege) +
                    " privilege is required",
                {},
                "The backend's owner or a storage administrator grants it: SELECT so_grant('" + message_text(key, 63) +
                    "', '" + privilege_name(privilege) + "', 'role_name');");
}

bool is_storage_admin(Oid role) {
    static Oid cached_role = InvalidOid;
    static uint64_t cached_roles = 0, cached_registry = 0;
    static bool cached = false;
    registry_ensure_loaded();
    if (role == cached_role && cached_roles == role_generation && cached_registry == registry_generation())
        return cached;
    uint64_t roles = role_generation, registry = registry_generation();
    Oid table = registry_relid();  // before lookups that may process invalidations
    bool admin = superuser_arg(role) || pg_class_aclcheck(table, role, ACL_UPDATE) == ACLCHECK_OK;
    cached_role = role;
    cached_roles = roles;
    cached_registry = registry;
    cached = admin;
    return admin;
}

void require_storage_admin(const char *what) {
    if (is_storage_admin(GetUserId())) return;
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied to %s", what),
                    errdetail("Only superusers and this database's storage administrators (holders of UPDATE on "
                              "so_backends) may do this."),
                    errhint("A storage administrator with the grant option, such as the database owner, grants it: "
                            "SELECT so_grant_admin('role_name');")));
}

namespace {

// Which managed columns may pass privilege on backend to the current user:
// guarded, owned by a role that holds it, and readable by the user. The
// same for every row of a statement, so kept for the statement (a sign or
// read over many rows asks once per row).
struct UsableColumns {
    Oid user = InvalidOid;
    LocalTransactionId lxid = InvalidLocalTransactionId;
    TimestampTz statement = 0;
    uint64_t roles = 0, registry = 0;
    AclMode privilege = 0;
    char backend[64] = "";  // keys have at most 63 characters
    int count = 0;
    bool *usable = nullptr;  // TopMemoryContext
    bool any = false;
};
UsableColumns usable_cache;

const UsableColumns &usable_columns(ManagedColumn *columns, int count, std::string_view backend, AclMode privilege) {
    UsableColumns &c = usable_cache;
    Oid user = GetUserId();
    TimestampTz statement = GetCurrentStatementStartTimestamp();
    if (c.usable && c.user == user && c.lxid == MyProc->lxid && c.statement == statement &&
        c.roles == role_generation && c.registry == registry_generation() && c.privilege == privilege &&
        c.count == count && backend == c.backend)
        return c;
    c.user = InvalidOid;  // not valid until filled
    if (c.usable) pfree(c.usable);
    c.usable = static_cast<bool *>(MemoryContextAllocZero(TopMemoryContext, sizeof(bool) * std::max(count, 1)));
    c.count = count;
    c.any = false;
    guard([&] {
        const BackendRef &ref = lookup_backend(backend);
        for (int i = 0; i < count; ++i)
            c.usable[i] = columns[i].guards_writes && (backend_privileges(ref, columns[i].table_owner) & privilege);
        return 0;
    });
    for (int i = 0; i < count; ++i) {
        // A role without SELECT on the column cannot see its rows; the query would fail.
        if (c.usable[i] && pg_attribute_aclcheck(columns[i].relid, columns[i].attnum, user, ACL_SELECT) != ACLCHECK_OK &&
            pg_class_aclcheck(columns[i].relid, user, ACL_SELECT) != ACLCHECK_OK)
            c.usable[i] = false;
        c.any |= c.usable[i];
    }
    size_t n = std::min(backend.size(), sizeof c.backend - 1);
    memcpy(c.backend, backend.data(), n);
    c.backend[n] = '\0';
    if (n < backend.size()) return c;  // not a valid key: never matched again
    c.lxid = MyProc->lxid;
    c.statement = statement;
    c.roles = role_generation;
    c.registry = registry_generation();
    c.privilege = privilege;
    c.user = user;
    return c;
}

}  // namespace

bool visible_through_rows(Datum object, const PackedView &view, AclMode privilege) {
    int count = 0;
    ManagedColumn *columns = managed_columns(&count);
    if (count == 0) return false;
    const UsableColumns &usable = usable_columns(columns, count, view.backend, privilege);
    if (!usable.any) return false;
    // Plain tables without row-level security: an index probe answers.
    bool *query = static_cast<bool *>(palloc0(sizeof(bool) * count));
    bool query_needed = false;
    for (int i = 0; i < count; ++i) {
        if (!usable.usable[i]) continue;
        bool answered = false;
        if (column_visible_by_index(columns[i], object, &answered)) {
            pfree(query);
            return true;
        }
        query[i] = !answered;
        query_needed |= query[i];
    }
    // The others: the reference query, as the user, under its policies.
    bool found = false;
    if (query_needed) {
        auto run = [&] {
            for (int i = 0; i < count && !found; ++i)
                if (query[i]) found = column_references(columns[i], object, nullptr);
        };
        SPI_connect();
        // The reference queries name every table, type and operator with its
        // schema and run with the user's rights: the search_path cannot
        // change them. Only row_security must be on (off, a query under a
        // policy fails instead of applying it); pinning costs a GUC nest
        // level per row, so only when needed.
        if (row_security) run();
        else with_pinned_search_path(run);
        SPI_finish();
    }
    pfree(query);
    return found;
}

bool may_read_object(Datum object, const PackedView &view) {
    bool held = guard([&] {
        return (backend_privileges(lookup_backend(view.backend), GetUserId()) & kReadPrivilege) != 0;
    });
    return held || visible_through_rows(object, view, kReadPrivilege);
}

void require_object_read(Datum object, const PackedView &view) {
    if (may_read_object(object, view)) return;
    std::string_view backend = view.backend;
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied for storage backend \"%.*s\": the read privilege is required",
                           static_cast<int>(backend.size()), backend.data()),
                    errdetail("The role holds no read privilege on the backend, and no row it may read in a "
                              "managed column references the object.")));
}

}  // namespace so::pg
