#include "pg/log_filter.hpp"

#include "pg/postgres.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
}

namespace so::pg {

namespace {

emit_log_hook_type previous_hook = nullptr;
LocalTransactionId registry_written_in = InvalidLocalTransactionId;
constexpr const char *kHidden = "[statement hidden: it writes the storage backend registry]";
constexpr const char *kDetailsHidden = "Details hidden: the statement writes the storage backend registry.";

bool names_registry(const char *query) {
    if (!query) return false;
    static const char *const kNames[] = {"so_backends", "so_register_backend", "so_alter_backend"};
    for (const char *name : kNames) {
        size_t len = strlen(name);
        for (const char *p = query; *p; ++p)
            if (pg_strncasecmp(p, name, len) == 0) return true;
    }
    return false;
}

// The message with every copy of query in it replaced. Called from within
// error reporting: plain palloc in ErrorContext, no ereport of our own.
char *without_statement(const char *message, const char *query) {
    size_t qlen = strlen(query);
    if (qlen == 0 || !strstr(message, query)) return nullptr;
    StringInfoData out;
    initStringInfo(&out);
    for (const char *p = message;;) {
        const char *hit = strstr(p, query);
        if (!hit) {
            appendStringInfoString(&out, p);
            break;
        }
        appendBinaryStringInfo(&out, p, static_cast<int>(hit - p));
        appendStringInfoString(&out, kHidden);
        p = hit + qlen;
    }
    return out.data;
}

void filter(ErrorData *edata) {
    bool registry = (MyProc && registry_written_in != InvalidLocalTransactionId &&
                     registry_written_in == MyProc->lxid) ||
                    names_registry(debug_query_string);
    // PostgreSQL's own errors in such a statement (a jsonb literal that
    // does not parse, a NOT NULL violation's "Failing row contains") quote
    // the options in their detail and context: the client does not get
    // those either, as its logs are often kept less carefully than the
    // server's. The extension's own messages (from .cpp files) never hold
    // a secret and keep theirs.
    size_t name_len = edata->filename ? strlen(edata->filename) : 0;
    bool ours = name_len > 4 && strcmp(edata->filename + name_len - 4, ".cpp") == 0;
    if (registry && !ours && edata->output_to_client) {
        if (edata->detail) edata->detail = pstrdup(kDetailsHidden);
        edata->context = nullptr;
    }
    if (registry && edata->output_to_server) {
        edata->hide_stmt = true;
        edata->hide_ctx = true;
        if (edata->detail) edata->detail_log = pstrdup(kDetailsHidden);
        if (edata->message && debug_query_string) {
            if (char *message = without_statement(edata->message, debug_query_string)) edata->message = message;
        }
    }
    if (previous_hook) previous_hook(edata);
}

}  // namespace

void log_filter_init() {
    previous_hook = emit_log_hook;
    emit_log_hook = filter;
}

void note_registry_write() {
    if (MyProc) registry_written_in = MyProc->lxid;
}

}  // namespace so::pg
