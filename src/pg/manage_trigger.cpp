// so_manage(): the trigger that binds files to rows, in the spirit of
// contrib/lo's lo_manage. AFTER INSERT OR UPDATE OR DELETE, FOR EACH ROW,
// with the managed columns (stored_object or stored_object[], or domains
// over them) as arguments.
//
//   INSERT, UPDATE  a value entering the column must be one the writing
//                   role may use (see access.hpp): written or released by
//                   this transaction, on a backend it may write, or
//                   referenced by another row it may read. So no role
//                   launders a hand-typed value through a managed table.
//   UPDATE, DELETE  the objects that leave the row are released: at commit
//                   (when every statement of the transaction has run) each
//                   one no managed row references any more is queued for
//                   deletion. Removing a file through a row needs the delete
//                   privilege of the writing role or of the table's owner.
//
// so_manage_column(table, column) attaches it to one column.
//
// This file is plain C in C++ clothing: PostgreSQL lists and palloc, no
// C++ containers, because nearly every call here can raise an error.
#include "core/error.hpp"
#include "pg/access.hpp"
#include "pg/delete_queue.hpp"
#include "pg/guard.hpp"
#include "pg/managed_columns.hpp"
#include "pg/object_locks.hpp"
#include "pg/object_datum.hpp"
#include "pg/pinned_sql.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace {

using so::pg::ColumnKind;

// Appends the objects in a column's value: the value itself, or an
// array's non-null elements.
List *append_objects(List *list, Datum value, ColumnKind kind) {
    if (kind == ColumnKind::Single) return lappend(list, DatumGetPointer(value));
    ArrayType *array = DatumGetArrayTypeP(value);
    Datum *elements;
    bool *nulls;
    int n;
    deconstruct_array(array, ARR_ELEMTYPE(array), -1, false, TYPALIGN_INT, &elements, &nulls, &n);
    for (int i = 0; i < n; ++i)
        if (!nulls[i]) list = lappend(list, DatumGetPointer(elements[i]));
    return list;
}

bool contains_identity(List *objects, const so::PackedView &wanted) {
    ListCell *cell;
    foreach (cell, objects)
        if (so::compare_identity(so::pg::object_view(PointerGetDatum(lfirst(cell))), wanted) == 0) return true;
    return false;
}

// Privileges of the writing role and of the table's owner on the object's backend.
struct Rights {
    AclMode user, owner;
};

Rights rights_on(const so::PackedView &view, Oid table_owner) {
    return so::pg::guard([&] {
        const so::pg::BackendRef &ref = so::pg::lookup_backend(view.backend);
        return Rights{so::pg::backend_privileges(ref, GetUserId()), so::pg::backend_privileges(ref, table_owner)};
    });
}

// A value entering a managed column: may the writing role use it? And, for
// an object that exists already, is it not being deleted? The reference
// lock makes a concurrent commit that finds the object unreferenced wait
// for this transaction (and then see its row), or this transaction wait
// for that commit (and then see its queued delete).
void admit(Datum object, Relation rel, const char *column) {
    so::PackedView view = so::pg::object_view(object);
    if (so::pg::written_or_released_here(view.backend, view.filename)) return;
    bool allowed = (rights_on(view, rel->rd_rel->relowner).user & so::pg::kWritePrivilege) ||
                   so::pg::visible_through_rows(object, view, so::pg::kReadPrivilege);
    if (allowed) {
        so::pg::lock_reference(view.backend, view.filename, view.version_id, view.has_version_id, ShareLock, true);
        if (so::pg::delete_queued_for(object))
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("a value of storage backend \"%.*s\" in column \"%s\" of relation \"%s\" names an "
                                   "object a committed transaction deletes",
                                   static_cast<int>(view.backend.size()), view.backend.data(), column,
                                   RelationGetRelationName(rel)),
                            errdetail("Its last reference was removed and committed while this transaction was "
                                      "storing it.")));
        return;
    }
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("permission denied to store a value of storage backend \"%.*s\" in column \"%s\" of "
                           "relation \"%s\"",
                           static_cast<int>(view.backend.size()), view.backend.data(), column,
                           RelationGetRelationName(rel)),
                    errdetail("A managed column takes objects the role wrote in this transaction, objects of a "
                              "backend it holds the write privilege on, or objects a row it may read references.")));
}

// A value leaving the row: remembered, to be deleted at commit if no
// managed row references it then.
void release(Datum object, Relation rel, const char *column) {
    so::PackedView view = so::pg::object_view(object);
    Rights rights = rights_on(view, rel->rd_rel->relowner);
    if (!((rights.user | rights.owner) & so::pg::kDeletePrivilege))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to delete objects of storage backend \"%.*s\" through column "
                               "\"%s\" of relation \"%s\"",
                               static_cast<int>(view.backend.size()), view.backend.data(), column,
                               RelationGetRelationName(rel)),
                        errdetail("Neither the role nor the table's owner holds the delete privilege on the backend.")));
    struct varlena *packed = PG_DETOAST_DATUM_PACKED(object);
    so::pg::guard([&] {
        so::pg::remember_released(view.backend, view.filename,
                                  std::string_view(VARDATA_ANY(packed), VARSIZE_ANY_EXHDR(packed)));
        return 0;
    });
}

[[noreturn]] void misuse(const char *message) {
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("%s", message),
                    errhint("CREATE TRIGGER ... AFTER INSERT OR UPDATE OR DELETE ON table FOR EACH ROW "
                            "EXECUTE FUNCTION so_manage('column', ...), or call so_manage_column(table, column).")));
}

// The trigger's name for a column: so_manage_COLUMN, and when that does
// not fit in a name, a cut at a character boundary plus a hash of the
// whole column name, so two long names never share a trigger.
char *trigger_name(const char *column) {
    char *name = psprintf("so_manage_%s", column);
    if (strlen(name) < NAMEDATALEN) return name;
    int keep = pg_mbcliplen(name, static_cast<int>(strlen(name)), NAMEDATALEN - 1 - 9);
    uint32 hash = hash_bytes(reinterpret_cast<const unsigned char *>(column), static_cast<int>(strlen(column)));
    return psprintf("%.*s_%08x", keep, name, hash);
}

// Whether the table has a trigger of this name, and if so whether it is
// so_manage on exactly this column.
bool existing_trigger(Oid relid, const char *name, const char *column, bool *ours) {
    bool found = false;
    *ours = false;
    Relation rel = table_open(TriggerRelationId, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    ScanKeyInit(&keys[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ, CStringGetDatum(name));
    SysScanDesc scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, nullptr, 2, keys);
    if (HeapTuple tuple = systable_getnext(scan)) {
        found = true;
        auto *trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
        if (trigger->tgfoid == so::pg::manage_function_oid() && trigger->tgnargs == 1) {
            bool isnull;
            Datum args = heap_getattr(tuple, Anum_pg_trigger_tgargs, RelationGetDescr(rel), &isnull);
            *ours = !isnull && strcmp(VARDATA_ANY(DatumGetByteaPP(args)), column) == 0;
        }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return found;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_manage);
Datum so_manage(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) misuse("so_manage() must be called as a trigger");
    auto *trigdata = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)) misuse("so_manage() must be fired FOR EACH ROW");
    if (!TRIGGER_FIRED_AFTER(trigdata->tg_event)) misuse("so_manage() must be fired AFTER the change");
    bool is_delete = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event);
    bool is_insert = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
    Trigger *trigger = trigdata->tg_trigger;
    if (trigger->tgnargs < 1) misuse("so_manage() needs the names of the columns it manages as arguments");

    Relation rel = trigdata->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    so::pg::registry_ensure_loaded();
    HeapTuple old_row = is_insert ? nullptr : trigdata->tg_trigtuple;
    HeapTuple new_row = is_delete ? nullptr : is_insert ? trigdata->tg_trigtuple : trigdata->tg_newtuple;

    for (int i = 0; i < trigger->tgnargs; ++i) {
        const char *name = trigger->tgargs[i];
        int attnum = SPI_fnumber(desc, name);
        if (attnum <= 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column \"%s\" of relation \"%s\" does not exist", name, RelationGetRelationName(rel)),
                            errdetail("It is an argument of trigger \"%s\".", trigger->tgname)));
        ColumnKind kind = so::pg::column_kind(TupleDescAttr(desc, attnum - 1)->atttypid);
        if (kind == ColumnKind::NotOurs)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("column \"%s\" of relation \"%s\" is not of type stored_object or stored_object[]",
                                   name, RelationGetRelationName(rel)),
                            errdetail("It is an argument of trigger \"%s\".", trigger->tgname)));
        bool isnull;
        List *old_objects = NIL, *new_objects = NIL;
        if (old_row) {
            Datum value = heap_getattr(old_row, attnum, desc, &isnull);
            if (!isnull) old_objects = append_objects(NIL, value, kind);
        }
        if (new_row) {
            Datum value = heap_getattr(new_row, attnum, desc, &isnull);
            if (!isnull) new_objects = append_objects(NIL, value, kind);
        }
        ListCell *cell;
        foreach (cell, new_objects) {
            Datum object = PointerGetDatum(lfirst(cell));
            if (!contains_identity(old_objects, so::pg::object_view(object))) admit(object, rel, name);
        }
        if (old_objects != NIL) PreventCommandIfReadOnly("so_manage()");
        foreach (cell, old_objects) {
            Datum object = PointerGetDatum(lfirst(cell));
            if (!contains_identity(new_objects, so::pg::object_view(object))) release(object, rel, name);
        }
    }
    return PointerGetDatum(nullptr);
}

// so_column_kind(regtype): 'single', 'array' or NULL, by the same rules the
// trigger and the sweeper use.
PG_FUNCTION_INFO_V1(so_column_kind);
Datum so_column_kind(PG_FUNCTION_ARGS) {
    so::pg::registry_ensure_loaded();
    switch (so::pg::column_kind(PG_GETARG_OID(0))) {
        case ColumnKind::Single: PG_RETURN_TEXT_P(cstring_to_text("single"));
        case ColumnKind::Array: PG_RETURN_TEXT_P(cstring_to_text("array"));
        case ColumnKind::NotOurs: break;
    }
    PG_RETURN_NULL();
}

// so_manage_column(tbl regclass, col name): attaches so_manage to one
// column, as the calling role (who must be allowed to create triggers on
// the table).
PG_FUNCTION_INFO_V1(so_manage_column);
Datum so_manage_column(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("tbl and col must not be null")));
    Oid relid = PG_GETARG_OID(0);
    const char *column = NameStr(*PG_GETARG_NAME(1));
    so::pg::registry_ensure_loaded();
    char *table = get_rel_name(relid);
    if (!table) ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", relid)));
    AttrNumber attnum = get_attnum(relid, column);
    if (attnum <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("column \"%s\" of relation \"%s\" does not exist", column, table)));
    if (so::pg::column_kind(get_atttype(relid, attnum)) == ColumnKind::NotOurs)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("column \"%s\" of relation \"%s\" is not of type stored_object or stored_object[]",
                               column, table)));
    char *name = trigger_name(column);
    bool ours;
    if (existing_trigger(relid, name, column, &ours) && !ours)
        ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
                        errmsg("trigger \"%s\" for relation \"%s\" already exists and does not manage column \"%s\"",
                               name, table, column)));
    char *sql = psprintf("CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW "
                         "EXECUTE FUNCTION %s.so_manage(%s)",
                         quote_identifier(name),
                         quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), table),
                         quote_identifier(get_namespace_name(so::pg::extension_schema_oid())),
                         quote_literal_cstr(column));
    SPI_connect();
    so::pg::with_pinned_search_path([&] {
        if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY) elog(ERROR, "could not create trigger \"%s\"", name);
    });
    SPI_finish();
    PG_RETURN_VOID();
}

}  // extern "C"
