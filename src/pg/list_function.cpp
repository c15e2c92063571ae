// so_list(backend, prefix, recursive): the objects of a backend, as
// stored_object values, for roles holding the read privilege on it.
//
// Rows go into the function's tuplestore as each listing page arrives, so
// memory is one page plus what the tuplestore keeps before it spills to
// disk (work_mem). The extension's own files (names with a ".so-" segment)
// are never listed.
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "pg/access.hpp"
#include "pg/guard.hpp"
#include "pg/operation_stats.hpp"
#include "pg/object_datum.hpp"
#include "pg/registry.hpp"

extern "C" {
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

namespace {

// Whether key names one of our temporary, staged, backup or journal files.
bool reserved(const std::string &key) {
    if (key.compare(0, 4, ".so-") == 0) return true;
    return key.find("/.so-") != std::string::npos;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(so_list);
Datum so_list(PG_FUNCTION_ARGS) {
    char *backend = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char *prefix = text_to_cstring(PG_GETARG_TEXT_PP(1));
    bool recursive = PG_GETARG_BOOL(2);
    so::pg::guard([&] {
        so::pg::require_backend_privilege(so::pg::lookup_backend(backend), so::pg::kReadPrivilege);
        return 0;
    });
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    int skipped = 0;
    so::pg::guard([&] {
        return so::pg::tracked(so::pg::Operation::List, backend, [&](so::pg::OperationSample &) {
            auto store = so::pg::lookup_store(backend);
            std::string start(prefix);
            store->list(start, [&](const so::ListedObject &object) {
                if (reserved(object.key)) return;
                // Not recursive: the objects directly under prefix only.
                if (!recursive && object.key.find('/', start.size()) != std::string::npos) return;
                Datum value;
                try {
                    value = so::pg::listed_object_datum(backend, object);
                } catch (const so::Error &e) {
                    if (e.kind() != so::ErrorKind::Io) throw;
                    ++skipped;  // a name no stored_object can hold
                    return;
                }
                so::pg::pg_call([&] {
                    bool isnull = false;
                    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
                    pfree(DatumGetPointer(value));
                });
            });
            return 0;
        });
    });
    if (skipped > 0)
        ereport(WARNING, (errcode(ERRCODE_IO_ERROR),
                          errmsg("skipped %d objects of backend \"%s\" whose names are not valid UTF-8 or contain "
                                 "control characters",
                                 skipped, backend)));
    return static_cast<Datum>(0);
}

}  // extern "C"
