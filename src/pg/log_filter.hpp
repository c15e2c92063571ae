// Keeps secrets out of the server log.
//
// Registering or altering a backend carries secrets in the statement
// (option values). When anything in such a statement is logged (an error
// of ours, PostgreSQL's own: a malformed jsonb literal, a constraint's
// "Failing row contains" detail, a COPY's context line), an emit_log_hook
// hides the statement, the context and the detail from the log, and
// replaces the statement's text where a message quotes it
// (log_statement). A statement counts when its text names the registry
// (so_backends, so_register_backend, so_alter_backend) or when the
// registry's trigger ran in the same transaction.
#pragma once

namespace so::pg {

// Installs the hook; from _PG_init.
void log_filter_init();

// The registry's trigger calls this: the transaction writes the registry.
// C side, no allocation.
void note_registry_write();

}  // namespace so::pg
