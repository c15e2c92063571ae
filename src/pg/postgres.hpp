// PostgreSQL headers for the glue layer, with C linkage. Only src/pg/
// includes this; src/core/ never sees PostgreSQL.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}
