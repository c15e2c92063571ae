// The extension's settings (GUCs), defined in _PG_init.
#pragma once

#include <cstdint>

namespace so::pg {

// stored_object.connect_timeout and stored_object.request_timeout, in
// milliseconds: defaults for S3 backends whose options set none.
extern int connect_timeout_ms;
extern int request_timeout_ms;

#ifdef SO_TEST_HOOKS
// stored_object.test_pause_after_promote (test builds only): an advisory
// lock key a committing transaction takes, shared, right after promoting
// its overwrites, so a test can hold it there (and kill it).
extern int64_t test_pause_after_promote_key;
// stored_object.test_pad_wal_to_page_start (test builds only): before
// flushing the WAL for the delete queue, fill the WAL page so that the next
// record starts a new page (see wal.cpp).
extern bool test_pad_wal_to_page_start;
#endif

void settings_init();

}  // namespace so::pg
