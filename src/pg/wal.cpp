#include "pg/wal.hpp"

#include "pg/postgres.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "replication/message.h"
}

namespace so::pg {

namespace {

// GetXLogInsertRecPtr() names where the next record will start: at a page
// boundary that is past the next page's header, which nobody has written
// yet. The header's length then, else 0.
uint32 unwritten_header_before(XLogRecPtr next) {
    if (XLogSegmentOffset(next, wal_segment_size) == SizeOfXLogLongPHD) return SizeOfXLogLongPHD;
    if (next % XLOG_BLCKSZ == SizeOfXLogShortPHD) return SizeOfXLogShortPHD;
    return 0;
}

// Where the WAL inserted so far ends. XLogFlush() to the next record's
// start fails at a page boundary ("xlog flush request ... is not
// satisfied"): the end is the page's start then.
XLogRecPtr inserted_wal_end() {
    XLogRecPtr next = GetXLogInsertRecPtr();
    return next - unwritten_header_before(next);
}

#ifdef SO_TEST_HOOKS
// stored_object.test_pad_wal_to_page_start: fills the current WAL page with
// logical messages so that the next record starts a page, then says so.
// Another backend's record may land in between: a few tries.
void pad_wal_to_page_start() {
    constexpr char prefix[] = "stored_object.test";
    static char filler[XLOG_BLCKSZ];
    XLogRecPtr next = GetXLogInsertRecPtr();
    for (int tries = 0; tries < 20 && unwritten_header_before(next) == 0; ++tries) {
        // Measure what a message's record takes besides its content (256
        // bytes or more: the long data header), then fill the page's rest.
        XLogRecPtr before = GetXLogInsertRecPtr();
        LogLogicalMessage(prefix, filler, 256, false);
        next = GetXLogInsertRecPtr();
        if (before / XLOG_BLCKSZ != next / XLOG_BLCKSZ) continue;  // crossed a page: measure again
        uint64 overhead = next - before - 256;
        uint64 gap = XLOG_BLCKSZ - next % XLOG_BLCKSZ;
        // Too little room for a long-header message: into the next page, then again.
        LogLogicalMessage(prefix, filler, gap < overhead + 256 ? gap : gap - overhead, false);
        next = GetXLogInsertRecPtr();
    }
    if (unwritten_header_before(next) != 0) ereport(NOTICE, (errmsg("test hook: the next WAL record starts a page")));
}
#endif

}  // namespace

void flush_inserted_wal() {
    if (RecoveryInProgress()) return;
#ifdef SO_TEST_HOOKS
    if (test_pad_wal_to_page_start) pad_wal_to_page_start();
#endif
    XLogFlush(inserted_wal_end());
}

}  // namespace so::pg
