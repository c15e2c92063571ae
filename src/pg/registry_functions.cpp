// SQL functions about the registry that need the C++ core.
#include "core/backend_config.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

extern "C" {

PG_FUNCTION_INFO_V1(so_secret_options);
Datum so_secret_options(PG_FUNCTION_ARGS) {
    const auto &names = so::secret_option_names();  // static: nothing to destroy
    int n = static_cast<int>(names.size());
    Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * n));
    for (int i = 0; i < n; ++i) elems[i] = CStringGetTextDatum(names[i].c_str());
    PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

}  // extern "C"
