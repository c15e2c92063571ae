// so_backends_trigger(): every write to the registry table goes through
// here, whatever the path (the so_*_backend functions, so_grant, plain
// DML, a restore). It checks who may write the row, validates it
// completely, records the owner and generates a signing secret where they
// are missing, and tells every session's registry cache to reload.
//
// Who may write what: a storage administrator (table privileges decide,
// before we run) may register, alter and unregister S3 backends. Only a
// superuser may touch a file system backend, configure the server's own
// credentials or an internal endpoint (unless allowed by
// stored_object.allowed_internal_networks), or change a backend a
// superuser owns (whose settings those may be).
//
// All validation happens before the table's own constraints, whose
// messages would print the failing row (and with it, secrets).
#include "core/backend_config.hpp"
#include "core/error.hpp"
#include "pg/guard.hpp"
#include "pg/log_filter.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace {

struct RowText {
    char *key = nullptr, *url = nullptr, *options = nullptr;
    char shown_key[160] = "";  // the key, safe for a message
    Oid owner = InvalidOid;    // InvalidOid: not set (or no such column before 0.3.0)
    Acl *acl = nullptr;
};

// C side: reads the row's columns.
RowText read_row(HeapTuple tuple, TupleDesc desc) {
    RowText row;
    bool isnull;
    Datum d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "key"), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION), errmsg("storage backend key must not be null")));
    row.key = TextDatumGetCString(d);
    so::message_text_into(row.shown_key, sizeof row.shown_key, row.key, 100);
    d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "url"), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                        errmsg("URL of storage backend \"%s\" must not be null", row.shown_key)));
    row.url = TextDatumGetCString(d);
    d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "options"), &isnull);
    row.options = isnull ? pstrdup("{}")
                         : JsonbToCString(nullptr, &DatumGetJsonbP(d)->root, VARSIZE_ANY(DatumGetPointer(d)));
    if (int owner = SPI_fnumber(desc, "owner"); owner > 0) {
        d = SPI_getbinval(tuple, desc, owner, &isnull);
        if (!isnull) row.owner = DatumGetObjectId(d);
    }
    if (int acl = SPI_fnumber(desc, "acl"); acl > 0) {
        d = SPI_getbinval(tuple, desc, acl, &isnull);
        if (!isnull) row.acl = DatumGetAclP(d);
    }
    return row;
}

[[noreturn]] void refuse(const RowText &row, const char *action, const char *detail) {
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied to %s storage backend \"%s\"", action, row.shown_key),
                    errdetail("%s", detail)));
}

// C side: what only a superuser may do to an existing row (alter,
// unregister) or with a new one (register, alter to).
void check_existing(const RowText &row, const char *action) {
    if (superuser()) return;
    bool file_access = so::pg::guard([&] { return so::url_grants_file_access(row.url); });
    if (file_access)
        refuse(row, action, "Only superusers may register, alter or unregister file system backends: they read and "
                            "write the server's files.");
    if (OidIsValid(row.owner) && superuser_arg(row.owner))
        refuse(row, action, "The backend belongs to a superuser; only superusers may change it.");
}

// Validates the row; returns its completed options (canonical JSON) and
// sets *superuser_only to what only a superuser may configure, if any.
char *validated_options(const RowText &row, char *superuser_only, size_t capacity) {
    return so::pg::guard([&] {
        std::string options = so::complete_backend_options(row.url, row.options);
        so::BackendConfig config = so::parse_backend_config(row.key, row.url, options, DataDir);
        so::message_text_into(superuser_only, capacity, so::superuser_only_setting(config), 200);
        char *out = static_cast<char *>(so::pg::alloc(options.size() + 1));
        memcpy(out, options.c_str(), options.size() + 1);
        return out;
    });
}

// Privileges of a backend are read, write and delete, granted by its owner.
void check_acl(const RowText &row) {
    if (!row.acl) return;
    const AclItem *items = ACL_DAT(row.acl);
    for (int i = 0; i < ACL_NUM(row.acl); ++i)
        if ((ACLITEM_GET_RIGHTS(items[i]) & ~static_cast<AclMode>(ACL_SELECT | ACL_UPDATE | ACL_DELETE)) != 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_GRANT_OPERATION),
                            errmsg("invalid privileges for storage backend \"%s\"", row.shown_key),
                            errdetail("A backend's privileges are read (r), write (w) and delete (d), without "
                                      "grant options.")));
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_backends_trigger);
Datum so_backends_trigger(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("so_backends_trigger() must be called as a trigger")));
    auto *trigdata = reinterpret_cast<TriggerData *>(fcinfo->context);
    Relation rel = trigdata->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);

    // Sent at commit; every session drops its cached registry.
    CacheInvalidateRelcache(rel);
    so::pg::note_registry_write();

    if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)) return PointerGetDatum(nullptr);  // TRUNCATE

    if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)) {
        check_existing(read_row(trigdata->tg_trigtuple, desc), "unregister");
        return PointerGetDatum(trigdata->tg_trigtuple);
    }

    bool is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
    const char *action = is_update ? "alter" : "register";
    HeapTuple tuple = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
    RowText old_row;
    if (is_update) {
        old_row = read_row(trigdata->tg_trigtuple, desc);
        check_existing(old_row, action);
    }
    RowText row = read_row(tuple, desc);
    check_existing(row, action);
    check_acl(row);
    char superuser_only[256] = "";
    char *options = validated_options(row, superuser_only, sizeof superuser_only);
    if (superuser_only[0] && !superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to %s storage backend \"%s\"", action, row.shown_key),
                        errdetail("Only superusers may configure %s.", superuser_only),
                        strstr(superuser_only, "internal address")
                            ? errhint("A superuser may allow internal networks with "
                                      "stored_object.allowed_internal_networks.")
                            : 0));

    Datum new_options = DirectFunctionCall1(jsonb_in, CStringGetDatum(options));
    bool nulls[2] = {false, false};
    if (is_update) {
        int columns[3] = {SPI_fnumber(desc, "options"), 0, 0};
        Datum values[3] = {new_options, 0, 0};
        bool nulls3[3] = {false, false, false};
        int count = 1;
        // updated_at tells when the configuration changed, not the grants.
        if (strcmp(old_row.url, row.url) != 0 || strcmp(old_row.options, row.options) != 0) {
            columns[count] = SPI_fnumber(desc, "updated_at");
            values[count++] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
        }
        // A new owner takes the old one's privileges and grants, as ALTER
        // ... OWNER TO does, unless the same statement sets the privileges.
        if (OidIsValid(old_row.owner) && OidIsValid(row.owner) && old_row.owner != row.owner && row.acl &&
            old_row.acl && aclequal(old_row.acl, row.acl)) {
            columns[count] = SPI_fnumber(desc, "acl");
            values[count++] = PointerGetDatum(aclnewowner(row.acl, old_row.owner, row.owner));
        }
        return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, count, columns, values, nulls3));
    }
    // A new backend belongs to whoever registers it, unless a restore says otherwise.
    int columns[2] = {SPI_fnumber(desc, "options"), SPI_fnumber(desc, "owner")};
    Datum values[2] = {new_options, ObjectIdGetDatum(GetUserId())};
    int count = columns[1] > 0 && !OidIsValid(row.owner) ? 2 : 1;
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, count, columns, values, nulls));
}

}  // extern "C"
