#include "pg/guard.hpp"

#include <cstring>

extern "C" {
#include "miscadmin.h"
}

namespace so::pg {

char *copy_text_no_raise(const char *s) noexcept {
    if (!s || !*s) return nullptr;
    size_t len = std::strlen(s);
    char *out = static_cast<char *>(MemoryContextAllocExtended(CurrentMemoryContext, len + 1,
                                                               MCXT_ALLOC_NO_OOM));
    if (out) std::memcpy(out, s, len + 1);
    return out;
}

int sqlstate_for(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::InvalidTextRepresentation: return ERRCODE_INVALID_TEXT_REPRESENTATION;
        case ErrorKind::InvalidParameter: return ERRCODE_INVALID_PARAMETER_VALUE;
        case ErrorKind::UndefinedObject: return ERRCODE_UNDEFINED_OBJECT;
        case ErrorKind::DuplicateObject: return ERRCODE_DUPLICATE_OBJECT;
        case ErrorKind::NotFound: return ERRCODE_UNDEFINED_FILE;
        case ErrorKind::AlreadyExists: return ERRCODE_DUPLICATE_FILE;
        case ErrorKind::PermissionDenied: return ERRCODE_INSUFFICIENT_PRIVILEGE;
        case ErrorKind::NotSupported: return ERRCODE_FEATURE_NOT_SUPPORTED;
        case ErrorKind::NotConfigured: return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
        case ErrorKind::LimitExceeded: return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
        case ErrorKind::Canceled: return ERRCODE_QUERY_CANCELED;
        case ErrorKind::Io: return ERRCODE_IO_ERROR;
        case ErrorKind::Internal: return ERRCODE_INTERNAL_ERROR;
    }
    return ERRCODE_INTERNAL_ERROR;
}

void PendingError::capture_current_exception() noexcept {
    try {
        throw;
    } catch (const PgError &e) {
        pg_error = e.data();
    } catch (const Error &e) {
        kind = e.kind();
        message = copy_text_no_raise(e.what());
        detail = copy_text_no_raise(e.detail().c_str());
        hint = copy_text_no_raise(e.hint().c_str());
    } catch (const std::bad_alloc &) {
        out_of_memory = true;
    } catch (const std::exception &e) {
        kind = ErrorKind::Internal;
        message = copy_text_no_raise(e.what());
    } catch (...) {
        kind = ErrorKind::Internal;
    }
}

void PendingError::raise() const {
    if (pg_error) ReThrowError(pg_error);
    // An interrupted operation reports the interrupt itself (cancel,
    // statement_timeout, terminate) with PostgreSQL's own message and code.
    if (kind == ErrorKind::Canceled) CHECK_FOR_INTERRUPTS();
    if (out_of_memory)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
    ereport(ERROR, (errcode(sqlstate_for(kind)),
                    errmsg_internal("%s", message ? message : "stored_object: internal error"),
                    detail ? errdetail_internal("%s", detail) : 0, hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

void *alloc(size_t size) {
    void *p = MemoryContextAllocExtended(CurrentMemoryContext, size,
                                         MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace so::pg
