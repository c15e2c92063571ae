// SQL functions about the registry that need the C++ core or C: the names
// of secret options, and granting and revoking backend privileges.
#include <cctype>

#include "core/backend_config.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/pinned_sql.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace {

// "read, write" → the privilege bits; "all" for every one. C side.
AclMode parse_privileges(const char *text) {
    AclMode mask = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',') ++p;
        const char *start = p;
        while (*p && *p != ' ' && *p != ',') ++p;
        if (p == start) break;
        int n = static_cast<int>(p - start);
        if (n == 4 && pg_strncasecmp(start, "read", 4) == 0) mask |= so::pg::kReadPrivilege;
        else if (n == 5 && pg_strncasecmp(start, "write", 5) == 0) mask |= so::pg::kWritePrivilege;
        else if (n == 6 && pg_strncasecmp(start, "delete", 6) == 0) mask |= so::pg::kDeletePrivilege;
        else if (n == 3 && pg_strncasecmp(start, "all", 3) == 0) mask |= so::pg::kAllPrivileges;
        else
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("unrecognized storage backend privilege \"%.*s\"", std::min(n, 40), start),
                            errhint("Backend privileges are read, write, delete and all.")));
    }
    if (mask == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("no storage backend privilege given"),
                        errhint("Backend privileges are read, write, delete and all.")));
    return mask;
}

// Grants (or revokes) privileges on a backend, as its owner would. C side.
void change_privileges(FunctionCallInfo fcinfo, bool grant) {
    for (int i = 0; i < 3; ++i)
        if (PG_ARGISNULL(i))
            ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("backend, privileges and role must not be null")));
    text *backend = PG_GETARG_TEXT_PP(0);
    AclMode privileges = parse_privileges(text_to_cstring(PG_GETARG_TEXT_PP(1)));
    char *role = text_to_cstring(PG_GETARG_TEXT_PP(2));
    Oid grantee = pg_strcasecmp(role, "public") == 0 ? ACL_ID_PUBLIC : get_role_oid(role, false);
    PreventCommandIfReadOnly(grant ? "so_grant()" : "so_revoke()");
    Oid caller = GetUserId();
    so::pg::registry_ensure_loaded();
    bool admin = so::pg::is_storage_admin(caller);

    so::pg::as_extension_owner([&] {
        SPI_connect();
        const char *schema = quote_identifier(get_namespace_name(so::pg::extension_schema_oid()));
        Oid key_type[1] = {TEXTOID};
        Datum key_arg[1] = {PointerGetDatum(backend)};
        char *select = psprintf("SELECT owner, acl FROM %s.so_backends WHERE key OPERATOR(pg_catalog.=) $1 FOR UPDATE",
                                schema);
        if (SPI_execute_with_args(select, 1, key_type, key_arg, nullptr, false, 1) != SPI_OK_SELECT)
            elog(ERROR, "could not read the storage backend registry");
        char shown[160];
        so::message_text_into(shown, sizeof shown, text_to_cstring(backend), 100);
        if (SPI_processed == 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("storage backend \"%s\" does not exist", shown),
                            errhint("Registered backends are listed in so_backend_info.")));
        bool isnull;
        Oid owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        Datum acl_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
        if (!admin && !has_privs_of_role(caller, owner))
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("permission denied to %s privileges on storage backend \"%s\"",
                                   grant ? "grant" : "revoke", shown),
                            errdetail("Only the backend's owner and storage administrators may.")));
        Acl *acl;
        if (isnull) {  // the default: all privileges to the owner
            AclItem owner_item;
            owner_item.ai_grantee = owner;
            owner_item.ai_grantor = owner;
            ACLITEM_SET_PRIVS_GOPTIONS(owner_item, so::pg::kAllPrivileges, ACL_NO_RIGHTS);
            acl = aclupdate(make_empty_acl(), &owner_item, ACL_MODECHG_ADD, owner, DROP_RESTRICT);
        } else {
            acl = DatumGetAclPCopy(acl_datum);
        }
        AclItem change;
        change.ai_grantee = grantee;
        change.ai_grantor = owner;
        ACLITEM_SET_PRIVS_GOPTIONS(change, privileges, ACL_NO_RIGHTS);
        acl = aclupdate(acl, &change, grant ? ACL_MODECHG_ADD : ACL_MODECHG_DEL, owner, DROP_RESTRICT);
        Oid update_types[2] = {TEXTOID, ACLITEMARRAYOID};
        Datum update_args[2] = {PointerGetDatum(backend), PointerGetDatum(acl)};
        char *update = psprintf("UPDATE %s.so_backends SET acl = $2 WHERE key OPERATOR(pg_catalog.=) $1", schema);
        if (SPI_execute_with_args(update, 2, update_types, update_args, nullptr, false, 0) != SPI_OK_UPDATE)
            elog(ERROR, "could not update the storage backend registry");
        SPI_finish();
    });
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_secret_options);
Datum so_secret_options(PG_FUNCTION_ARGS) {
    struct Names {
        Datum *elems;
        int count;
    };
    Names names = so::pg::guard([] {
        const auto &list = so::secret_option_names();
        Names out{static_cast<Datum *>(so::pg::alloc(sizeof(Datum) * list.size())), 0};
        for (const auto &name : list) {
            size_t len = name.size();
            auto *t = static_cast<text *>(so::pg::alloc(VARHDRSZ + len));
            SET_VARSIZE(t, VARHDRSZ + len);
            memcpy(VARDATA(t), name.data(), len);
            out.elems[out.count++] = PointerGetDatum(t);
        }
        return out;
    });
    PG_RETURN_ARRAYTYPE_P(construct_array(names.elems, names.count, TEXTOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(so_grant);
Datum so_grant(PG_FUNCTION_ARGS) {
    change_privileges(fcinfo, true);
    PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(so_revoke);
Datum so_revoke(PG_FUNCTION_ARGS) {
    change_privileges(fcinfo, false);
    PG_RETURN_VOID();
}

}  // extern "C"
