// Who may do what with stored objects.
//
// Backend privileges, kept in so_backends.acl with PostgreSQL's aclitem
// machinery (as large objects keep theirs): read (shown as r, SELECT),
// write (w, UPDATE) and delete (d, DELETE). A backend's owner, the
// database's storage administrators (roles holding UPDATE on so_backends)
// and superusers hold all of them; role membership counts, as everywhere
// in PostgreSQL.
//
// Row-level access, "what a role may see, it may use": a managed column
// whose so_manage trigger checks every write passes its table owner's
// privileges on to the roles that may read (or update and delete) its rows,
// the way a view passes on its owner's rights. The check is a query run as
// the calling user, so the table's GRANTs and row-level security policies
// decide. Values enter such a column only when the writing role may use
// them (see so_manage), so a hand-typed value cannot be laundered through
// a table; a table owner who bypasses the trigger gains nothing, since
// the owner's own privileges are the ceiling.
#pragma once

#include <string_view>

#include "core/packed_meta.hpp"
#include "pg/postgres.hpp"
#include "pg/registry.hpp"

namespace so::pg {

constexpr AclMode kReadPrivilege = ACL_SELECT;
constexpr AclMode kWritePrivilege = ACL_UPDATE;
constexpr AclMode kDeletePrivilege = ACL_DELETE;
constexpr AclMode kAllPrivileges = kReadPrivilege | kWritePrivilege | kDeletePrivilege;

// Registers the role-membership invalidation callbacks; from _PG_init.
void access_init();

// "read", "write" or "delete".
const char *privilege_name(AclMode privilege);

// The privileges role holds on a backend. C++ side (PostgreSQL calls
// wrapped); cached per backend, role and role-membership generation.
AclMode backend_privileges(const BackendRef &backend, Oid role);

// Throws Error(PermissionDenied) naming the backend and the privilege
// unless the current user holds it. C++ side.
void require_backend_privilege(const BackendRef &backend, AclMode privilege);

// Whether role administers this database's storage: a superuser, or a
// holder of UPDATE on so_backends. C side.
bool is_storage_admin(Oid role);
// ereports 42501 unless the current user is a storage administrator.
void require_storage_admin(const char *what);

// Whether the current user may read the object: the backend's read
// privilege, or a row it may select in a managed column that guards
// writes and whose table owner holds read on the backend. C side (runs
// SPI); the registry must be loaded.
bool may_read_object(Datum object, const PackedView &view);

// ereports 42501 (naming the backend and "read") unless may_read_object.
// what: the verb for the message ("read", "sign", "copy").
void require_object_read(Datum object, const PackedView &view);

// Whether a managed row other than the ones this statement writes
// references the object and the current user may select it, in a column
// whose table owner holds privilege on the backend. C side.
bool visible_through_rows(Datum object, const PackedView &view, AclMode privilege);

}  // namespace so::pg
