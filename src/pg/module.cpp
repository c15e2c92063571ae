// The loadable module: magic block and one-time initialisation.
#include "pg/postgres.hpp"
#include "pg/registry.hpp"

extern "C" {

PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void) { so::pg::registry_init(); }

}  // extern "C"
