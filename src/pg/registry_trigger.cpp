// so_backends_trigger(): every write to the registry table goes through
// here, whatever the path (the so_*_backend functions, plain DML, a
// restore). It checks who may write the row, validates it completely,
// generates a signing secret where one is missing, and tells every
// session's registry cache to reload.
//
// All validation happens before the table's own constraints, whose
// messages would print the failing row (and with it, secrets).
#include "core/backend_config.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace {

struct RowText {
    char *key = nullptr, *url = nullptr, *options = nullptr;
};

// C side: reads the row's text columns.
RowText read_row(HeapTuple tuple, TupleDesc desc) {
    RowText row;
    bool isnull;
    Datum d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "key"), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION), errmsg("storage backend key must not be null")));
    row.key = TextDatumGetCString(d);
    d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "url"), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                        errmsg("URL of storage backend \"%s\" must not be null", row.key)));
    row.url = TextDatumGetCString(d);
    d = SPI_getbinval(tuple, desc, SPI_fnumber(desc, "options"), &isnull);
    row.options = isnull ? pstrdup("{}")
                         : JsonbToCString(nullptr, &DatumGetJsonbP(d)->root, VARSIZE_ANY(DatumGetPointer(d)));
    return row;
}

// C side: a file system backend may only be touched by a superuser, since
// it reads and writes server files as the server's OS user.
void check_privilege(const RowText &row, const char *action) {
    bool file_access = so::url_grants_file_access(row.url);
    if (file_access && !superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to %s storage backend \"%s\"", action, row.key),
                        errdetail("Only superusers may register, alter or unregister file system "
                                  "backends: they read and write the server's files.")));
}

// Validates the row and returns its completed options (canonical JSON).
char *validated_options(const RowText &row) {
    return so::pg::guard([&] {
        std::string options = so::complete_backend_options(row.url, row.options);
        so::parse_backend_config(row.key, row.url, options, DataDir);
        char *out = static_cast<char *>(so::pg::alloc(options.size() + 1));
        memcpy(out, options.c_str(), options.size() + 1);
        return out;
    });
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

    if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)) return PointerGetDatum(nullptr);  // TRUNCATE

    if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)) {
        check_privilege(read_row(trigdata->tg_trigtuple, desc), "unregister");
        return PointerGetDatum(trigdata->tg_trigtuple);
    }

    bool is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
    HeapTuple tuple = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
    if (is_update) check_privilege(read_row(trigdata->tg_trigtuple, desc), "alter");
    RowText row = read_row(tuple, desc);
    check_privilege(row, is_update ? "alter" : "register");
    char *options = validated_options(row);

    int columns[2] = {SPI_fnumber(desc, "options"), SPI_fnumber(desc, "updated_at")};
    Datum values[2] = {DirectFunctionCall1(jsonb_in, CStringGetDatum(options)),
                       TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
    bool nulls[2] = {false, false};
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, is_update ? 2 : 1, columns, values, nulls));
}

}  // extern "C"
