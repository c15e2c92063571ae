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

// Where the WAL inserted so far ends. GetXLogInsertRecPtr() names where the
// next record will start: at a page boundary that is past the next page's
// header, which nobody has written yet, and XLogFlush() to it fails ("xlog
// flush request ... is not satisfied"). The end is the page's start then.
XLogRecPtr inserted_wal_end() {
    XLogRecPtr next = GetXLogInsertRecPtr();
    if (XLogSegmentOffset(next, wal_segment_size) == SizeOfXLogLongPHD) return next - SizeOfXLogLongPHD;
    if (next % XLOG_BLCKSZ == SizeOfXLogShortPHD) return next - SizeOfXLogShortPHD;
    return next;
}

#ifdef SO_TEST_HOOKS
bool at_page_start(XLogRecPtr next) {
    return XLogSegmentOffset(next, wal_segment_size) == SizeOfXLogLongPHD || next % XLOG_BLCKSZ == SizeOfXLogShortPHD;
}

// stored_object.test_pad_wal_to_page_start: fills the current WAL page with
// logical messages so that the next record starts a page, then says so.
// Another backend's record may land in between: a few tries.
void pad_wal_to_page_start() {
    constexpr char prefix[] = "stored_object.test";
    static char filler[XLOG_BLCKSZ];
    // What a message's record takes besides its content (MAXALIGNed; a
    // content of 256 bytes or more has the long data header).
    XLogRecPtr after = GetXLogInsertRecPtr();
    for (int tries = 0; tries < 20 && !at_page_start(after); ++tries) {
        XLogRecPtr before = GetXLogInsertRecPtr();
        LogLogicalMessage(prefix, filler, 256, false);
        after = GetXLogInsertRecPtr();
        if (before / XLOG_BLCKSZ != after / XLOG_BLCKSZ) continue;  // crossed a page: measure again
        uint64 overhead = after - before - 256;
        uint64 gap = XLOG_BLCKSZ - after % XLOG_BLCKSZ;
        if (gap < overhead + 256) {
            LogLogicalMessage(prefix, filler, gap, false);  // into the next page, then again
        } else {
            LogLogicalMessage(prefix, filler, gap - overhead, false);
        }
        after = GetXLogInsertRecPtr();
    }
    if (at_page_start(after)) ereport(NOTICE, (errmsg("test hook: the next WAL record starts a page")));
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
