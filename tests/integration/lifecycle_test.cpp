// Rows and files after crashes, outages and concurrent work: a killed
// backend leaves an orphan that the sweeper removes; a committed delete
// that could not run stays queued until the store is back; a concurrent
// workload of managed rows leaves every committed row's file intact and,
// after so_process_pending and so_gc, no unreferenced file.
#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "session.hpp"

namespace fs = std::filesystem;
using so_test::Session;

namespace {

std::string object(const std::string &backend, const std::string &key) {
    return "'{\"backend\": \"" + backend + "\", \"filename\": \"" + key + "\"}'::stored_object";
}

void wait_for_server();
// Waits until the killed backend is gone, which is when the postmaster
// starts its crash restart (a connection made before that would be cut by
// the restart), then until the server accepts connections again.
void wait_for_restart(int killed_pid) {
    for (int i = 0; i < 600 && ::kill(killed_pid, 0) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    wait_for_server();
}

// Waits until the server accepts connections again.
void wait_for_server() {
    for (int i = 0; i < 600; ++i) {
        try {
            Session probe;
            probe.exec("SELECT 1");
            return;
        } catch (const std::exception &) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    FAIL() << "the server did not come back after the crash";
}

// POSTs a fault rule to the S3 fixture's control endpoint.
void fixture_faults(const std::string &json) {
    CURL *curl = curl_easy_init();
    std::string url = so_test::env("S3_ENDPOINT") + "/__fixture/faults";
    curl_slist *headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (json.empty()) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, +[](char *, size_t s, size_t n, void *) { return s * n; });
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    ASSERT_EQ(code, CURLE_OK);
    ASSERT_LT(status, 300) << json;
}

std::string register_s3_backend(Session &admin, const std::string &key) {
    admin.exec("SELECT so_unregister_backend(key) FROM so_backends WHERE key = " + admin.quote(key));
    admin.exec("DELETE FROM so_pending_deletes WHERE so_backend(object) = " + admin.quote(key));
    admin.exec("SELECT so_register_backend(" + admin.quote(key) + ", 's3://test-bucket/it-" + key +
               "', jsonb_build_object('endpoint', " + admin.quote(so_test::env("S3_ENDPOINT")) +
               ", 'allow_http', true, 'access_key_id', " + admin.quote(so_test::env("S3_ACCESS_KEY_ID")) +
               ", 'secret_access_key', " + admin.quote(so_test::env("S3_SECRET_ACCESS_KEY")) +
               ", 'max_retries', 0, 'connect_timeout_ms', 1000, 'request_timeout_ms', 3000))");
    return key;
}

}  // namespace

TEST(Lifecycle, KilledBackendLeavesAnOrphanThatGcRemoves) {
    std::string backend, key = "crash/uncommitted.bin";
    int victim_pid = 0;
    {
        Session admin;
        backend = so_test::register_local_backend(admin);
        admin.exec("DROP TABLE IF EXISTS crash_rows");
        admin.exec("CREATE TABLE crash_rows (id int PRIMARY KEY, file stored_object)");
        admin.exec("INSERT INTO crash_rows VALUES (1, so_put('" + backend + "', 'crash/committed.bin', 'kept'))");
        Session victim;
        victim.exec("BEGIN");
        victim.exec("INSERT INTO crash_rows VALUES (2, so_put('" + backend + "', '" + key + "', 'lost'))");
        ASSERT_TRUE(fs::exists(so_test::backend_root(backend) + "/" + key));
        // kill -9 between so_put and COMMIT: the server restarts, the
        // transaction never committed, its abort callbacks never ran.
        victim_pid = victim.backend_pid();
        ASSERT_EQ(::kill(victim_pid, SIGKILL), 0);
    }
    wait_for_restart(victim_pid);
    Session admin;
    EXPECT_EQ(admin.value("SELECT count(*) FROM crash_rows"), "1");
    EXPECT_EQ(admin.value("SELECT string_agg(so_filename(o), ',') FROM so_orphans('" + backend + "', '', '0 seconds') o"),
              key);
    // Young objects are left alone: they may belong to an upload in flight.
    EXPECT_EQ(admin.value("SELECT count(*) FROM so_orphans('" + backend + "')"), "0");
    EXPECT_EQ(admin.value("SELECT string_agg(action, ',') FROM so_gc('" + backend + "', '0 seconds', dry_run => false)"),
              "deleted");
    EXPECT_FALSE(fs::exists(so_test::backend_root(backend) + "/" + key));
    EXPECT_EQ(admin.value("SELECT convert_from(so_get(file), 'UTF8') FROM crash_rows WHERE id = 1"), "kept");
    admin.exec("DROP TABLE crash_rows");
}

TEST(Lifecycle, CommittedDeleteWhileTheStoreIsDownStaysQueued) {
    Session admin;
    std::string backend = register_s3_backend(admin, "Lifecycle_store_down");
    // A key of this run's own: the bucket outlives a failed run.
    std::string key = "down/doc-" + std::to_string(::getpid()) + ".txt";
    admin.exec("SELECT so_put('" + backend + "', '" + key + "', 'x')");
    admin.exec("BEGIN");
    admin.exec("SELECT so_delete(so_stat('" + backend + "', '" + key + "'))");
    fixture_faults(R"({"mode": "drop", "count": -1})");  // every S3 request fails until cleared
    admin.exec("COMMIT");  // the commit succeeds at once: the worker deletes, later
    so_test::wait_for_worker(admin);
    EXPECT_EQ(admin.value("SELECT attempts || ' ' || (last_error LIKE '%could not reach the S3 endpoint%') FROM "
                          "so_pending_deletes WHERE so_backend(object) = '" + backend + "'"),
              "1 true");
    fixture_faults("");  // the store is back
    EXPECT_EQ(admin.value("SELECT so_exists(" + object(backend, key) + ")"), "t");
    admin.exec("SELECT so_process_pending()");  // by hand, not waiting for the retry time
    EXPECT_EQ(admin.value("SELECT so_exists(" + object(backend, key) + ")"), "f");
    EXPECT_EQ(admin.value("SELECT count(*) FROM so_pending_deletes WHERE so_backend(object) = '" + backend + "'"), "0");
}

TEST(Lifecycle, QueuedDeleteCompletesWhenWritableAgain) {
    Session admin;
    std::string backend = so_test::register_local_backend(admin);
    fs::path root = so_test::backend_root(backend);
    std::string row = "FROM so_pending_deletes WHERE so_backend(object) = '" + backend + "'";
    admin.exec("SELECT so_put('" + backend + "', 'locked/doc.txt', 'x')");
    admin.exec("BEGIN");
    admin.exec("SELECT so_delete(so_stat('" + backend + "', 'locked/doc.txt'))");
    ASSERT_EQ(chmod((root / "locked").c_str(), 0500), 0);
    admin.exec("COMMIT");
    so_test::wait_for_worker(admin);
    EXPECT_EQ(admin.value("SELECT attempts " + row), "1");
    // Still locked: a retry by hand fails too and says why; the row stays.
    admin.exec("SELECT so_process_pending()");
    EXPECT_EQ(admin.value("SELECT attempts " + row), "2");
    EXPECT_NE(admin.value("SELECT last_error " + row).find("Permission denied"), std::string::npos);
    ASSERT_EQ(chmod((root / "locked").c_str(), 0700), 0);
    admin.exec("SELECT so_process_pending()");
    EXPECT_EQ(admin.value("SELECT count(*) " + row), "0");
    EXPECT_FALSE(fs::exists(root / "locked/doc.txt"));
}

TEST(Lifecycle, ConcurrentWorkloadLeavesEveryCommittedFileAndNoOrphan) {
    Session admin;
    std::string backend = so_test::register_local_backend(admin);
    admin.exec("DROP TABLE IF EXISTS workload");
    admin.exec("CREATE TABLE workload (id int PRIMARY KEY, file stored_object, extra stored_object[])");
    admin.exec("CREATE INDEX ON workload (file)");
    admin.exec("SELECT so_manage_column('workload', 'file'), so_manage_column('workload', 'extra')");

    constexpr int kWorkers = 4;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    std::atomic<int> operations{0}, conflicts{0}, errors{0};
    std::mutex first_error_mutex;
    std::string first_error;
    auto worker = [&](int id) {
        Session s;
        std::mt19937 rng(id);
        int serial = 0;
        auto new_object = [&] {
            std::string key = "w" + std::to_string(id) + "/" + std::to_string(++serial) + ".bin";
            return "so_put('" + backend + "', '" + key + "', convert_to(md5('" + key + "'), 'UTF8'))";
        };
        while (std::chrono::steady_clock::now() < deadline) {
            int row = 1 + static_cast<int>(rng() % 40);
            std::string r = std::to_string(row);
            s.exec("BEGIN");
            std::string state;
            switch (rng() % 5) {
                case 0:
                case 1:
                    state = s.sqlstate("INSERT INTO workload VALUES (" + r + ", " + new_object() + ", ARRAY[" +
                                       new_object() + "]) ON CONFLICT (id) DO UPDATE SET file = EXCLUDED.file");
                    break;
                case 2:
                    state = s.sqlstate("UPDATE workload SET extra = extra || " + new_object() + " WHERE id = " + r);
                    break;
                case 3:
                    state = s.sqlstate("DELETE FROM workload WHERE id = " + r);
                    break;
                case 4:
                    // Copy a value to another row: both rows now share one object.
                    state = s.sqlstate("UPDATE workload SET file = (SELECT file FROM workload WHERE id = " +
                                       std::to_string(1 + rng() % 40) + ") WHERE id = " + r +
                                       " AND EXISTS (SELECT 1 FROM workload WHERE id = " + r + ")");
                    break;
            }
            bool rollback = !state.empty() || rng() % 6 == 0;
            // 55000: the value being copied lost its last other reference to
            // a concurrent commit, which deletes it: a conflict to retry.
            if (state == "40001" || state == "40P01" || state == "23505" || state == "55000") ++conflicts;
            else if (!state.empty()) {
                ++errors;
                std::lock_guard<std::mutex> lock(first_error_mutex);
                if (first_error.empty()) first_error = state + " " + s.last_error();
            }
            // COMMIT runs the reference check under locks: two transactions
            // that each store an object the other releases deadlock there,
            // and PostgreSQL aborts one (40P01), as for any lock cycle.
            std::string ended = s.sqlstate(rollback ? "ROLLBACK" : "COMMIT");
            if (ended == "40P01" || ended == "40001") ++conflicts;
            else if (!ended.empty()) {
                ++errors;
                std::lock_guard<std::mutex> lock(first_error_mutex);
                if (first_error.empty()) first_error = "at commit: " + ended + " " + s.last_error();
            }
            ++operations;
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kWorkers; ++i) threads.emplace_back(worker, i + 1);
    for (auto &t : threads) t.join();
    EXPECT_GT(operations, 100);
    EXPECT_EQ(errors, 0) << first_error;

    // Every committed row's objects exist and read back intact.
    EXPECT_EQ(admin.value("SELECT count(*) FROM workload, LATERAL unnest(array_prepend(file, extra)) o "
                          "WHERE o IS NOT NULL AND (NOT so_exists(o) OR encode(sha256(so_get(o)), 'hex') <> so_checksum(o))"),
              "0");
    // After the worker and the sweeper, no unreferenced file is left.
    so_test::wait_for_worker(admin);
    admin.exec("SELECT count(*) FROM so_gc('" + backend + "', '0 seconds', dry_run => false)");
    EXPECT_EQ(admin.value("SELECT count(*) FROM so_orphans('" + backend + "', '', '0 seconds')"), "0");
    std::set<std::string> on_disk, referenced;
    for (const auto &entry : fs::recursive_directory_iterator(so_test::backend_root(backend)))
        if (entry.is_regular_file()) on_disk.insert(fs::relative(entry.path(), so_test::backend_root(backend)).string());
    for (const auto &row : admin.exec("SELECT DISTINCT so_filename(o) FROM workload, "
                                      "LATERAL unnest(array_prepend(file, extra)) o WHERE o IS NOT NULL"))
        referenced.insert(row[0].c_str());
    EXPECT_EQ(on_disk, referenced);
    admin.exec("DROP TABLE workload");
}

// Two transactions that each store the object the other releases: each
// holds a share lock on what it stores and needs the exclusive lock on
// what it released at COMMIT. PostgreSQL's deadlock detector aborts one
// (40P01); the other commits, and both objects survive (each is still
// referenced by a row).
TEST(Lifecycle, SwappingObjectsBetweenRowsDeadlocksOneCommit) {
    Session admin;
    std::string backend = so_test::register_local_backend(admin);
    admin.exec("DROP TABLE IF EXISTS swap");
    admin.exec("CREATE TABLE swap (id int PRIMARY KEY, file stored_object)");
    admin.exec("SELECT so_manage_column('swap', 'file')");
    admin.exec("INSERT INTO swap VALUES (1, so_put('" + backend + "', 'swap/a.txt', 'a')), "
               "(2, so_put('" + backend + "', 'swap/b.txt', 'b'))");
    Session one, two;
    one.exec("BEGIN");
    two.exec("BEGIN");
    one.exec("UPDATE swap SET file = (SELECT file FROM swap WHERE id = 2) WHERE id = 1");
    two.exec("UPDATE swap SET file = (SELECT file FROM swap WHERE id = 1) WHERE id = 2");
    std::string first, second;
    std::thread committer([&] { first = one.sqlstate("COMMIT"); });
    // one waits for two's share lock; two's COMMIT closes the cycle.
    second = two.sqlstate("COMMIT");  // never throws: the thread is joined
    committer.join();
    std::set<std::string> outcomes{first, second};
    EXPECT_EQ(outcomes, (std::set<std::string>{"", "40P01"})) << one.last_error() << two.last_error();
    const std::string &message = first.empty() ? two.last_error() : one.last_error();
    EXPECT_NE(message.find("deadlock detected"), std::string::npos) << message;
    so_test::wait_for_worker(admin);
    EXPECT_EQ(admin.value("SELECT count(*) FROM swap WHERE so_exists(file)"), "2");
    admin.exec("DROP TABLE swap");
}
