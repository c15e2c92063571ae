// Operation statistics: session counters, the shared table they are added
// to at transaction end, and the SQL functions behind so_operation_stats.
#include "pg/operation_stats.hpp"

#include <time.h>

#include <cstdio>
#include <cstring>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "pg/access.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
}

namespace so::pg {

namespace {

constexpr int kOperations = 7;
const char *const kOperationNames[kOperations] = {"put", "get", "stat", "delete", "sign", "copy", "list"};

// The SQLSTATE classes storage operations raise; the rest count as "other".
constexpr int kClasses = 9;
const char *const kClassNames[kClasses] = {"0A", "22", "42", "53", "55", "57", "58", "XX", "other"};

constexpr size_t kBackendName = 64;  // backend keys have at most 63 characters
constexpr int kSessionEntries = 128;
constexpr int kSharedEntries = 4096;

struct Counters {
    uint64_t calls, errors[kClasses], bytes_read, bytes_written, retries, total_ns, max_ns;

    bool empty() const { return calls == 0; }
    void add(const Counters &o) {
        calls += o.calls;
        for (int i = 0; i < kClasses; ++i) errors[i] += o.errors[i];
        bytes_read += o.bytes_read;
        bytes_written += o.bytes_written;
        retries += o.retries;
        total_ns += o.total_ns;
        if (o.max_ns > max_ns) max_ns = o.max_ns;
    }
};

struct Key {
    Oid database;
    uint8_t op;
    char backend[kBackendName];

    bool same(Oid db, uint8_t o, std::string_view name) const {
        return database == db && op == o && std::strlen(backend) == name.size() &&
               std::memcmp(backend, name.data(), name.size()) == 0;
    }
};

struct SessionEntry {
    Key key;
    Counters pending;  // not yet added to the shared table
    Counters own;      // without shared memory: everything this session counted
};

struct SharedEntry {
    bool used;
    Key key;
    Counters counters;
};

struct SharedStats {
    LWLock *lock;
    int used;
    SharedEntry entries[kSharedEntries];
};

bool track = true;
SessionEntry session[kSessionEntries];
int session_count = 0;
int last_entry = -1;  // the entry the previous operation used: signing a column is one backend
bool session_pending = false;

// Timing: clock_gettime costs about 27 ns here, 5% of signing one URL, so
// where the kernel itself keeps time by the TSC, operations are timed in
// TSC ticks (a few ns to read), turned into nanoseconds at transaction end
// with the rate measured over the session so far.
enum class Clock { Unknown, Tsc, Monotonic };
Clock clock_kind = Clock::Unknown;
uint64_t base_ticks = 0, base_ns = 0;

uint64_t monotonic_now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

Clock choose_clock() {
#if defined(__x86_64__)
    char name[32] = "";
    if (FILE *f = std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r")) {
        if (!std::fgets(name, sizeof name, f)) name[0] = '\0';
        std::fclose(f);
    }
    if (std::strncmp(name, "tsc", 3) == 0) {
        base_ns = monotonic_now_ns();
        base_ticks = __rdtsc();
        return Clock::Tsc;
    }
#endif
    return Clock::Monotonic;
}

// Nanoseconds per tick, measured over the session so far.
double nanoseconds_per_tick() {
    if (clock_kind != Clock::Tsc) return 1.0;
#if defined(__x86_64__)
    uint64_t ticks = __rdtsc() - base_ticks, ns = monotonic_now_ns() - base_ns;
    return ticks > 0 ? static_cast<double>(ns) / static_cast<double>(ticks) : 1.0;
#else
    return 1.0;
#endif
}
SharedStats *shared = nullptr;
shmem_request_hook_type previous_request = nullptr;
shmem_startup_hook_type previous_startup = nullptr;

int class_index(int sqlstate) {
    char code[6];
    std::memcpy(code, unpack_sql_state(sqlstate), 6);
    for (int i = 0; i < kClasses - 1; ++i)
        if (code[0] == kClassNames[i][0] && code[1] == kClassNames[i][1]) return i;
    return kClasses - 1;
}

uint32_t hash_key(Oid db, uint8_t op, std::string_view name) {
    uint32_t h = 2166136261u ^ db ^ (static_cast<uint32_t>(op) << 24);
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h;
}

SessionEntry *session_entry(uint8_t op, std::string_view backend) {
    if (last_entry >= 0 && session[last_entry].key.same(MyDatabaseId, op, backend)) return &session[last_entry];
    for (int i = 0; i < session_count; ++i)
        if (session[i].key.same(MyDatabaseId, op, backend)) return &session[last_entry = i];
    if (session_count == kSessionEntries || backend.size() >= kBackendName) return nullptr;
    SessionEntry &e = session[session_count];
    std::memset(&e, 0, sizeof e);
    e.key.database = MyDatabaseId;
    e.key.op = op;
    std::memcpy(e.key.backend, backend.data(), backend.size());
    last_entry = session_count;
    return &session[session_count++];
}

// The shared entry for key, made if absent; nullptr when the table is
// full. Under the lock, exclusive.
SharedEntry *shared_entry(const Key &key) {
    std::string_view name(key.backend);
    uint32_t h = hash_key(key.database, key.op, name);
    for (int probe = 0; probe < kSharedEntries; ++probe) {
        SharedEntry &e = shared->entries[(h + probe) % kSharedEntries];
        if (!e.used) {
            if (shared->used >= kSharedEntries * 3 / 4) return nullptr;  // keep probes short
            std::memset(&e, 0, sizeof e);
            e.used = true;
            e.key = key;
            ++shared->used;
            return &e;
        }
        if (e.key.same(key.database, key.op, name)) return &e;
    }
    return nullptr;
}

// At the end of every transaction: what the session counted goes to the
// shared table (or to its own totals without one). Memory only, no I/O.
void flush(XactEvent event, void *) {
    if (!session_pending) return;
    if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_COMMIT &&
        event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
        return;
    session_pending = false;
    const double scale = nanoseconds_per_tick();
    if (shared) LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    for (int i = 0; i < session_count; ++i) {
        SessionEntry &e = session[i];
        if (e.pending.empty()) continue;
        e.pending.total_ns = static_cast<uint64_t>(static_cast<double>(e.pending.total_ns) * scale);
        e.pending.max_ns = static_cast<uint64_t>(static_cast<double>(e.pending.max_ns) * scale);
        if (!shared) {
            e.own.add(e.pending);
        } else if (SharedEntry *target = shared_entry(e.key)) {
            target->counters.add(e.pending);
        }
        std::memset(&e.pending, 0, sizeof e.pending);
    }
    if (shared) {
        LWLockRelease(shared->lock);
        // Entries live on in the shared table; the session's list restarts.
        session_count = 0;
        last_entry = -1;
    }
}

void request_shmem() {
    if (previous_request) previous_request();
    RequestAddinShmemSpace(MAXALIGN(sizeof(SharedStats)));
    RequestNamedLWLockTranche("stored_object_stats", 1);
}

void startup_shmem() {
    if (previous_startup) previous_startup();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = static_cast<SharedStats *>(ShmemInitStruct("stored_object stats", sizeof(SharedStats), &found));
    if (!found) {
        std::memset(shared, 0, sizeof(SharedStats));
        shared->lock = &GetNamedLWLockTranche("stored_object_stats")->lock;
    }
    LWLockRelease(AddinShmemInitLock);
}

// Who may see every database's statistics, and who only this one's.
enum class Reach { None, ThisDatabase, All };

Reach reach_of_current_user() {
    Oid role = GetUserId();
    if (superuser() || has_privs_of_role(role, ROLE_PG_READ_ALL_STATS)) return Reach::All;
    if (is_storage_admin(role)) return Reach::ThisDatabase;
    return Reach::None;
}

Datum errors_json(const Counters &c) {
    StringInfoData text;
    initStringInfo(&text);
    appendStringInfoChar(&text, '{');
    bool first = true;
    for (int i = 0; i < kClasses; ++i) {
        if (!c.errors[i]) continue;
        appendStringInfo(&text, "%s\"%s\": " UINT64_FORMAT, first ? "" : ", ", kClassNames[i], c.errors[i]);
        first = false;
    }
    appendStringInfoChar(&text, '}');
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(text.data));
}

void put_row(ReturnSetInfo *rsinfo, const Key &key, const Counters &c) {
    Datum values[11];
    bool nulls[11] = {};
    uint64_t errors = 0;
    for (uint64_t e : c.errors) errors += e;
    values[0] = ObjectIdGetDatum(key.database);
    values[1] = CStringGetTextDatum(key.backend);
    values[2] = CStringGetTextDatum(kOperationNames[key.op]);
    values[3] = Int64GetDatum(static_cast<int64>(c.calls));
    values[4] = Int64GetDatum(static_cast<int64>(errors));
    values[5] = errors_json(c);
    values[6] = Int64GetDatum(static_cast<int64>(c.bytes_read));
    values[7] = Int64GetDatum(static_cast<int64>(c.bytes_written));
    values[8] = Int64GetDatum(static_cast<int64>(c.retries));
    values[9] = Float8GetDatum(static_cast<double>(c.total_ns) / 1e6);
    values[10] = Float8GetDatum(static_cast<double>(c.max_ns) / 1e6);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

}  // namespace

bool tracking_operations() { return track; }

uint64_t clock_ticks() noexcept {
    if (clock_kind == Clock::Unknown) clock_kind = choose_clock();
#if defined(__x86_64__)
    if (clock_kind == Clock::Tsc) return __rdtsc();
#endif
    return monotonic_now_ns();
}

void record_operation(Operation op, std::string_view backend, uint64_t elapsed, int sqlstate,
                      const OperationSample &sample, uint64_t retries) noexcept {
    SessionEntry *e = session_entry(static_cast<uint8_t>(op), backend);
    session_pending = true;
    if (!e) return;  // more backends than the session table holds: see the README
    Counters &c = e->pending;
    ++c.calls;
    if (sqlstate) ++c.errors[class_index(sqlstate)];
    c.bytes_read += sample.bytes_read;
    c.bytes_written += sample.bytes_written;
    c.retries += retries;
    c.total_ns += elapsed;  // ticks until the transaction ends
    if (elapsed > c.max_ns) c.max_ns = elapsed;
}

void operation_stats_init() {
    DefineCustomBoolVariable("stored_object.track_operations",
                             "Counts storage operations per backend for the view so_operation_stats.", nullptr,
                             &track, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    RegisterXactCallback(flush, nullptr);
    if (!process_shared_preload_libraries_in_progress) return;
    previous_request = shmem_request_hook;
    shmem_request_hook = request_shmem;
    previous_startup = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

}  // namespace so::pg

extern "C" {

// so_operation_stats_rows(): the rows of the view so_operation_stats.
PG_FUNCTION_INFO_V1(so_operation_stats_rows);
Datum so_operation_stats_rows(PG_FUNCTION_ARGS) {
    using namespace so::pg;
    Reach reach = reach_of_current_user();
    if (reach == Reach::None)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to read storage operation statistics"),
                        errhint("Members of pg_read_all_stats see every database's; storage administrators their "
                                "own database's.")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    auto visible = [&](const Key &key) { return reach == Reach::All || key.database == MyDatabaseId; };
    if (shared) {
        LWLockAcquire(shared->lock, LW_SHARED);
        for (const SharedEntry &e : shared->entries)
            if (e.used && visible(e.key)) put_row(rsinfo, e.key, e.counters);
        LWLockRelease(shared->lock);
    } else {
        for (int i = 0; i < session_count; ++i)
            if (!session[i].own.empty()) put_row(rsinfo, session[i].key, session[i].own);
    }
    return (Datum)0;
}

// so_operation_stats_reset(): zeroes the statistics (every database's for
// a superuser, this database's for its storage administrators).
PG_FUNCTION_INFO_V1(so_operation_stats_reset);
Datum so_operation_stats_reset(PG_FUNCTION_ARGS) {
    using namespace so::pg;
    bool all = superuser();
    if (!all && !is_storage_admin(GetUserId()))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to reset storage operation statistics"),
                        errhint("Superusers reset every database's; storage administrators their own database's.")));
    if (shared) {
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        if (all) {
            // Everything goes, entries too: backends long dropped free their places.
            std::memset(shared->entries, 0, sizeof shared->entries);
            shared->used = 0;
        } else {
            // Entries stay, so probe chains stay intact; their counters start over.
            for (SharedEntry &e : shared->entries)
                if (e.used && e.key.database == MyDatabaseId) std::memset(&e.counters, 0, sizeof e.counters);
        }
        LWLockRelease(shared->lock);
    }
    for (int i = 0; i < session_count; ++i) std::memset(&session[i].own, 0, sizeof session[i].own);
    PG_RETURN_VOID();
}

}  // extern "C"
