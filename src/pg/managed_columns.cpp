#include "pg/managed_columns.hpp"

#include "pg/registry.hpp"

extern "C" {
#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "executor/tuptable.h"
#include "utils/fmgrtab.h"
#include "utils/relcache.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
}

namespace so::pg {

namespace {

LocalTransactionId loaded_for = InvalidLocalTransactionId;
ManagedColumn *columns = nullptr;  // in TopMemoryContext
int column_count = 0;

void free_columns() {
    for (int i = 0; i < column_count; ++i) {
        if (columns[i].plan) SPI_freeplan(columns[i].plan);
        pfree(const_cast<char *>(columns[i].reference_sql));
    }
    if (columns) pfree(columns);
    columns = nullptr;
    column_count = 0;
}

char *reference_sql(Oid relid, AttrNumber attnum, ColumnKind kind) {
    const char *schema = quote_identifier(get_namespace_name(extension_schema_oid()));
    char *table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
    const char *column = quote_identifier(get_attname(relid, attnum, false));
    // A partitioned table answers for its partitions; a plain table only
    // for itself (an inheritance child is not managed by its parent's trigger).
    const char *only = get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ";
    // "=" can use a btree or hash index on the column; "@>" a GIN index on an array column.
    if (kind == ColumnKind::Single)
        return psprintf("SELECT 1 FROM %s%s WHERE %s OPERATOR(%s.=) $1 LIMIT 1", only, table, column, schema);
    return psprintf("SELECT 1 FROM %s%s WHERE %s::%s.stored_object[] OPERATOR(pg_catalog.@>) ARRAY[$1] LIMIT 1", only,
                    table, column, schema);
}

Oid rel_owner(Oid relid) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for relation %u", relid);
    Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

bool guards_writes(Form_pg_trigger trigger, HeapTuple tuple, TupleDesc desc) {
    int16 type = trigger->tgtype;
    if (!TRIGGER_FOR_ROW(type) || !TRIGGER_FOR_AFTER(type) || !TRIGGER_FOR_INSERT(type) ||
        !TRIGGER_FOR_UPDATE(type) || !TRIGGER_FOR_DELETE(type))
        return false;
    if (trigger->tgenabled != TRIGGER_FIRES_ON_ORIGIN && trigger->tgenabled != TRIGGER_FIRES_ALWAYS) return false;
    if (trigger->tgattr.dim1 != 0) return false;  // UPDATE OF other columns
    bool isnull;
    heap_getattr(tuple, Anum_pg_trigger_tgqual, desc, &isnull);
    return isnull;  // a WHEN condition could skip a write
}

void load() {
    free_columns();
    Oid function = manage_function_oid();
    MemoryContext old_context = MemoryContextSwitchTo(TopMemoryContext);
    int capacity = 8;
    columns = static_cast<ManagedColumn *>(palloc(sizeof(ManagedColumn) * capacity));
    Relation rel = table_open(TriggerRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
    HeapTuple tuple;
    while ((tuple = systable_getnext(scan)) != nullptr) {
        auto *trigger = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
        if (trigger->tgfoid != function || trigger->tgnargs == 0 || OidIsValid(trigger->tgparentid)) continue;
        bool isnull;
        Datum args = heap_getattr(tuple, Anum_pg_trigger_tgargs, RelationGetDescr(rel), &isnull);
        if (isnull) continue;
        bool guarding = guards_writes(trigger, tuple, RelationGetDescr(rel));
        bytea *bytes = DatumGetByteaPP(args);
        const char *p = VARDATA_ANY(bytes);
        for (int i = 0; i < trigger->tgnargs; ++i, p += strlen(p) + 1) {
            AttrNumber attnum = get_attnum(trigger->tgrelid, p);
            if (attnum == InvalidAttrNumber) continue;
            ColumnKind kind = column_kind(get_atttype(trigger->tgrelid, attnum));
            if (kind == ColumnKind::NotOurs) continue;
            // Two triggers may name one column: keep one entry, guarding if either does.
            int found = -1;
            for (int k = 0; k < column_count; ++k)
                if (columns[k].relid == trigger->tgrelid && columns[k].attnum == attnum) found = k;
            if (found >= 0) {
                columns[found].guards_writes |= guarding;
                continue;
            }
            if (column_count == capacity) {
                capacity *= 2;
                columns = static_cast<ManagedColumn *>(repalloc(columns, sizeof(ManagedColumn) * capacity));
            }
            ManagedColumn &c = columns[column_count++];
            c.relid = trigger->tgrelid;
            c.attnum = attnum;
            c.kind = kind;
            c.table_owner = rel_owner(trigger->tgrelid);
            c.guards_writes = guarding;
            c.reference_sql = reference_sql(trigger->tgrelid, attnum, kind);
            c.plan = nullptr;
            c.probe = ManagedColumn::Probe::Unknown;
            c.probe_index = InvalidOid;
        }
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    MemoryContextSwitchTo(old_context);
    loaded_for = MyProc->lxid;
}

}  // namespace

ColumnKind column_kind(Oid type) {
    Oid so_type = stored_object_type_oid();
    Oid base = getBaseType(type);
    if (base == so_type) return ColumnKind::Single;
    Oid element = get_element_type(base);
    if (OidIsValid(element) && getBaseType(element) == so_type) return ColumnKind::Array;
    return ColumnKind::NotOurs;
}

Oid manage_function_oid() {
    static Oid cached = InvalidOid;
    static Oid cached_schema = InvalidOid;
    if (cached == InvalidOid || cached_schema != extension_schema_oid()) {
        List *name = list_make2(makeString(get_namespace_name(extension_schema_oid())), makeString(pstrdup("so_manage")));
        cached = LookupFuncName(name, 0, nullptr, true);
        cached_schema = extension_schema_oid();
    }
    return cached;
}

ManagedColumn *managed_columns(int *count) {
    registry_ensure_loaded();
    if (loaded_for != MyProc->lxid || loaded_for == InvalidLocalTransactionId) load();
    *count = column_count;
    return columns;
}

bool column_references(ManagedColumn &column, Datum object, Snapshot snapshot) {
    if (!column.plan) {
        Oid argtypes[1] = {stored_object_type_oid()};
        SPIPlanPtr plan = SPI_prepare(column.reference_sql, 1, argtypes);
        if (!plan) elog(ERROR, "could not prepare \"%s\": %s", column.reference_sql, SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        column.plan = plan;
    }
    Datum values[1] = {object};
    int rc = snapshot ? SPI_execute_snapshot(column.plan, values, nullptr, snapshot, InvalidSnapshot, false, false, 1)
                      : SPI_execute_plan(column.plan, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "could not look for references to a stored object");
    return SPI_processed > 0;
}

namespace {

// Finds the index column_visible_by_index may use, or decides there is none.
void choose_probe(ManagedColumn &column, Relation heap) {
    column.probe = ManagedColumn::Probe::Query;
    if (column.kind != ColumnKind::Single || heap->rd_rel->relkind != RELKIND_RELATION ||
        heap->rd_rel->relrowsecurity)
        return;
    List *indexes = RelationGetIndexList(heap);
    ListCell *cell;
    foreach (cell, indexes) {
        Relation index = index_open(lfirst_oid(cell), AccessShareLock);
        Form_pg_index form = index->rd_index;
        bool fits = form->indisvalid && form->indnkeyatts >= 1 && form->indkey.values[0] == column.attnum &&
                    index->rd_rel->relam == BTREE_AM_OID && RelationGetIndexPredicate(index) == NIL &&
                    index->rd_opcintype[0] == stored_object_type_oid();
        Oid equal = fits ? get_opfamily_member(index->rd_opfamily[0], index->rd_opcintype[0],
                                               index->rd_opcintype[0], BTEqualStrategyNumber)
                         : InvalidOid;
        if (OidIsValid(equal)) {
            fmgr_info_cxt(get_opcode(equal), &column.probe_equal, TopMemoryContext);
            column.probe_index = RelationGetRelid(index);
            column.probe = ManagedColumn::Probe::Index;
        }
        index_close(index, AccessShareLock);
        if (column.probe == ManagedColumn::Probe::Index) break;
    }
    list_free(indexes);
}

}  // namespace

bool column_visible_by_index(ManagedColumn &column, Datum object, bool *answered) {
    *answered = false;
    if (column.probe == ManagedColumn::Probe::Query) return false;
    Relation heap = table_open(column.relid, AccessShareLock);
    if (column.probe == ManagedColumn::Probe::Unknown) choose_probe(column, heap);
    bool found = false;
    // Row-level security switched on since the choice: the query decides.
    if (column.probe == ManagedColumn::Probe::Index && !heap->rd_rel->relrowsecurity) {
        Relation index = index_open(column.probe_index, AccessShareLock);
        ScanKeyData key;
        ScanKeyEntryInitializeWithInfo(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, InvalidOid,
                                       &column.probe_equal, object);
        IndexScanDesc scan = index_beginscan(heap, index, GetActiveSnapshot(), 1, 0);
        index_rescan(scan, &key, 1, nullptr, 0);
        TupleTableSlot *slot = table_slot_create(heap, nullptr);
        found = index_getnext_slot(scan, ForwardScanDirection, slot);
        ExecDropSingleTupleTableSlot(slot);
        index_endscan(scan);
        index_close(index, AccessShareLock);
        *answered = true;
    }
    table_close(heap, AccessShareLock);
    return found;
}

}  // namespace so::pg
