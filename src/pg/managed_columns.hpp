// The managed columns of the database: every stored_object or
// stored_object[] column (or domain over them) named by an so_manage
// trigger. Found here once, for the trigger (is an object still
// referenced?), the row-level access check (may this role use it?) and
// so_manage_column.
//
// C side: everything here may ereport.
#pragma once

#include "pg/postgres.hpp"

extern "C" {
#include "executor/spi.h"
}

namespace so::pg {

enum class ColumnKind { NotOurs, Single, Array };

// Whether a column of this type holds stored objects, and how.
ColumnKind column_kind(Oid type);

struct ManagedColumn {
    Oid relid;
    AttrNumber attnum;
    ColumnKind kind;
    Oid table_owner;
    // Its so_manage trigger checks every write: AFTER INSERT OR UPDATE OR
    // DELETE, FOR EACH ROW, enabled, no WHEN and no column list. Only such
    // a column's values pass their table owner's privileges on to the
    // roles that may read its rows (see access.hpp).
    bool guards_writes;
    // SELECT 1 FROM the table WHERE the column holds $1 (a stored_object)
    // LIMIT 1, every name and operator schema-qualified.
    const char *reference_sql;
    SPIPlanPtr plan;  // reference_sql prepared on first use (SPI_keepplan)
    // A btree index whose first key is the column, found on first use:
    // lets a reader's check skip the query where nothing but a row's
    // existence decides (see column_visible_by_index).
    enum class Probe : char { Unknown, Index, Query } probe;
    Oid probe_index;
    FmgrInfo probe_equal;  // the index's equality function
};

// The managed columns, read once per transaction from pg_trigger. The
// array lives until the next transaction that asks for it. Partitions are
// represented by their partitioned table.
ManagedColumn *managed_columns(int *count);

// Runs column's reference query with object as $1 inside an SPI
// connection of the caller's: with the given snapshot (nullptr: the
// active one, read-only). True when a row was found.
bool column_references(ManagedColumn &column, Datum object, Snapshot snapshot);

// For a role that may SELECT the column: whether a row holding object is
// visible to it, through a btree index on the column and the active
// snapshot, without planning or running a query. Only for plain tables
// without row-level security (then a row's existence is all the query
// could tell) and scalar columns; *answered is false where it cannot tell
// and the caller runs the reference query as the user instead.
bool column_visible_by_index(ManagedColumn &column, Datum object, bool *answered);

// OID of the so_manage() trigger function. C side.
Oid manage_function_oid();

}  // namespace so::pg
