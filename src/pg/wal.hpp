// Durability of what the server has written to its WAL.
#pragma once

namespace so::pg {

// Flushes every WAL record inserted so far, by any backend: commits made
// with synchronous_commit = off are on disk when it returns. Not during
// recovery (nothing is inserted then).
void flush_inserted_wal();

}  // namespace so::pg
