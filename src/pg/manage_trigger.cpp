// so_manage(): the trigger that binds files to rows, in the spirit of
// contrib/lo's lo_manage. AFTER UPDATE OR DELETE, FOR EACH ROW, with the
// managed columns (stored_object or stored_object[], or domains over
// them) as arguments. On DELETE the row's objects are scheduled for
// deletion after commit; on UPDATE, those of the old value that the new
// value no longer holds (by identity). An object that another row still
// references, in any managed column of the database, is left alone.
//
// This file is plain C in C++ clothing: PostgreSQL lists and palloc, no
// C++ containers, because nearly every call here can raise an error.
#include "core/error.hpp"
#include "pg/delete_queue.hpp"
#include "pg/extension_owner.hpp"
#include "pg/guard.hpp"
#include "pg/object_datum.hpp"
#include "pg/registry.hpp"
#include "pg/transaction.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_trigger.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace {

// A column some so_manage trigger manages, and the query that finds
// whether any of its rows references an object.
struct ManagedColumn {
    char *query;
};

// The managed columns, found once per transaction from pg_trigger; the
// list lives in TopTransactionContext and goes with the transaction.
LocalTransactionId managed_transaction = 0;
Oid managed_function = InvalidOid;
List *managed_columns = NIL;

enum class ColumnKind { NotOurs, Single, Array };

ColumnKind column_kind(Oid type) {
    Oid so_type = so::pg::stored_object_type_oid();
    Oid base = getBaseType(type);
    if (base == so_type) return ColumnKind::Single;
    Oid element = get_element_type(base);
    if (OidIsValid(element) && getBaseType(element) == so_type) return ColumnKind::Array;
    return ColumnKind::NotOurs;
}

// The query that finds a row of relid whose column attnum holds $1.
char *reference_query(Oid relid, AttrNumber attnum, ColumnKind kind) {
    char *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
    const char *column = quote_identifier(get_attname(relid, attnum, false));
    const char *schema = quote_identifier(get_namespace_name(so::pg::extension_schema_oid()));
    // "=" can use a btree or hash index on the column; "@>" a GIN index on an array column.
    if (kind == ColumnKind::Single) return psprintf("SELECT 1 FROM %s WHERE %s = $1 LIMIT 1", table, column);
    return psprintf("SELECT 1 FROM %s WHERE %s::%s.stored_object[] @> ARRAY[$1] LIMIT 1", table, column, schema);
}

// Reads every so_manage trigger's arguments from pg_trigger.
void load_managed_columns(Oid trigger_function) {
    MemoryContext old_context = MemoryContextSwitchTo(TopTransactionContext);
    managed_columns = NIL;
    Relation rel = table_open(TriggerRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != nullptr) {
        auto *trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
        if (trigger->tgfoid != trigger_function || trigger->tgnargs == 0) continue;
        bool isnull;
        Datum args = heap_getattr(tuple, Anum_pg_trigger_tgargs, RelationGetDescr(rel), &isnull);
        if (isnull) continue;
        bytea *bytes = DatumGetByteaPP(args);
        const char *p = VARDATA_ANY(bytes);
        for (int i = 0; i < trigger->tgnargs; ++i) {
            AttrNumber attnum = get_attnum(trigger->tgrelid, p);
            if (attnum != InvalidAttrNumber) {
                ColumnKind kind = column_kind(get_atttype(trigger->tgrelid, attnum));
                if (kind != ColumnKind::NotOurs) {
                    auto *column = static_cast<ManagedColumn *>(palloc(sizeof(ManagedColumn)));
                    column->query = reference_query(trigger->tgrelid, attnum, kind);
                    managed_columns = lappend(managed_columns, column);
                }
            }
            p += strlen(p) + 1;
        }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    MemoryContextSwitchTo(old_context);
    managed_transaction = MyProc->lxid;
    managed_function = trigger_function;
}

// Whether any row of a managed column still references object.
bool still_referenced(Datum object) {
    bool found = false;
    so::pg::as_extension_owner([&] {
        SPI_connect();
        Oid argtypes[1] = {so::pg::stored_object_type_oid()};
        ListCell *cell;
        foreach (cell, managed_columns) {
            auto *column = static_cast<ManagedColumn *>(lfirst(cell));
            Datum values[1] = {object};
            // Not read-only: a new snapshot, which sees this statement's own
            // change (the deleted row gone, the updated row's new value).
            if (SPI_execute_with_args(column->query, 1, argtypes, values, nullptr, false, 1) != SPI_OK_SELECT)
                elog(ERROR, "could not look for references to a stored object");
            if (SPI_processed > 0) {
                found = true;
                break;
            }
        }
        SPI_finish();
    });
    return found;
}

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

// Queues the delete, and remembers it for right after commit.
void schedule_delete(Datum object) {
    so::PackedView view = so::pg::object_view(object);
    int64 queue_id = so::pg::queue_delete(object, so::pg::stored_object_type_oid());
    so::pg::guard([&] {
        std::shared_ptr<so::Store> store;
        try {
            store = so::pg::lookup_store(std::string(view.backend));
        } catch (const so::Error &e) {
            if (e.kind() != so::ErrorKind::UndefinedObject) throw;
            return 0;  // no such backend (now): the queue keeps it for so_process_pending()
        }
        so::pg::remember_delete(store, so::to_object_meta(view), queue_id);
        return 0;
    });
}

[[noreturn]] void misuse(const char *message) {
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("%s", message),
                    errhint("CREATE TRIGGER ... AFTER UPDATE OR DELETE ON table FOR EACH ROW "
                            "EXECUTE FUNCTION so_manage('column', ...), or call so_manage_column(table, column).")));
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
    if (!is_delete && !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
        misuse("so_manage() must be fired by UPDATE or DELETE");
    Trigger *trigger = trigdata->tg_trigger;
    if (trigger->tgnargs < 1) misuse("so_manage() needs the names of the columns it manages as arguments");
    PreventCommandIfReadOnly("so_manage()");

    Relation rel = trigdata->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    so::pg::registry_ensure_loaded();
    if (managed_transaction != MyProc->lxid || managed_function != fcinfo->flinfo->fn_oid)
        load_managed_columns(fcinfo->flinfo->fn_oid);

    List *candidates = NIL;
    for (int i = 0; i < trigger->tgnargs; ++i) {
        const char *name = trigger->tgargs[i];
        int attnum = SPI_fnumber(desc, name);
        if (attnum <= 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column \"%s\" of relation \"%s\" does not exist", name, RelationGetRelationName(rel)),
                            errdetail("It is an argument of trigger \"%s\".", trigger->tgname)));
        ColumnKind kind = column_kind(TupleDescAttr(desc, attnum - 1)->atttypid);
        if (kind == ColumnKind::NotOurs)
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("column \"%s\" of relation \"%s\" is not of type stored_object or stored_object[]",
                                   name, RelationGetRelationName(rel)),
                            errdetail("It is an argument of trigger \"%s\".", trigger->tgname)));
        bool old_null, new_null = true;
        Datum old_value = heap_getattr(trigdata->tg_trigtuple, attnum, desc, &old_null);
        if (old_null) continue;
        List *old_objects = append_objects(NIL, old_value, kind), *new_objects = NIL;
        if (!is_delete) {
            Datum new_value = heap_getattr(trigdata->tg_newtuple, attnum, desc, &new_null);
            if (!new_null) new_objects = append_objects(NIL, new_value, kind);
        }
        ListCell *cell;
        foreach (cell, old_objects) {
            so::PackedView view = so::pg::object_view(PointerGetDatum(lfirst(cell)));
            if (!contains_identity(new_objects, view) && !contains_identity(candidates, view))
                candidates = lappend(candidates, lfirst(cell));
        }
    }
    ListCell *cell;
    foreach (cell, candidates) {
        Datum object = PointerGetDatum(lfirst(cell));
        if (!still_referenced(object)) schedule_delete(object);
    }
    return PointerGetDatum(nullptr);
}

// so_column_kind(regtype): 'single', 'array' or NULL, by the same rules the
// trigger and the sweeper use.
PG_FUNCTION_INFO_V1(so_column_kind);
Datum so_column_kind(PG_FUNCTION_ARGS) {
    so::pg::registry_ensure_loaded();
    switch (column_kind(PG_GETARG_OID(0))) {
        case ColumnKind::Single: PG_RETURN_TEXT_P(cstring_to_text("single"));
        case ColumnKind::Array: PG_RETURN_TEXT_P(cstring_to_text("array"));
        case ColumnKind::NotOurs: break;
    }
    PG_RETURN_NULL();
}

}  // extern "C"
