// The local backend's transaction rules and safety, shown with several
// sessions against a live cluster, checked on disk.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "session.hpp"

namespace fs = std::filesystem;
using so_test::Session;

namespace {

std::string object(const std::string &backend, const std::string &key) {
    return "'{\"backend\": \"" + backend + "\", \"filename\": \"" + key + "\"}'::stored_object";
}

std::string read_file(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

class LocalBackend : public ::testing::Test {
protected:
    void SetUp() override {
        backend = so_test::register_local_backend(admin, R"({"base_url": "http://127.0.0.1:1/files"})");
        root = so_test::backend_root(backend);
    }
    std::string put(Session &s, const std::string &key, const std::string &content, bool overwrite = false) {
        return s.value("SELECT so_put('" + backend + "', " + s.quote(key) + ", convert_to(" + s.quote(content) +
                       ", 'UTF8'), overwrite => " + (overwrite ? "true" : "false") + ")");
    }
    std::string get(Session &s, const std::string &key) {
        return s.value("SELECT convert_from(so_get(" + object(backend, key) + "), 'UTF8')");
    }

    Session admin;
    std::string backend;
    fs::path root;
};

}  // namespace

TEST_F(LocalBackend, AbortRemovesUploadedFiles) {
    Session a, b;
    a.exec("BEGIN");
    put(a, "abort/one.txt", "1");
    put(a, "abort/two.txt", "2");
    EXPECT_TRUE(fs::exists(root / "abort/one.txt"));
    a.exec("ROLLBACK");
    EXPECT_FALSE(fs::exists(root / "abort/one.txt"));
    EXPECT_FALSE(fs::exists(root / "abort/two.txt"));
    EXPECT_EQ(b.value("SELECT so_exists(" + object(backend, "abort/one.txt") + ")"), "f");
    // An error aborts the same way, and leaves no temporary files behind.
    a.exec("BEGIN");
    put(a, "abort/three.txt", "3");
    EXPECT_EQ(a.sqlstate("SELECT 1/0"), "22012");
    a.exec("ROLLBACK");
    EXPECT_FALSE(fs::exists(root / "abort/three.txt"));
    for (const auto &entry : fs::recursive_directory_iterator(root))
        EXPECT_EQ(entry.path().filename().string().rfind(".so-", 0), std::string::npos) << entry.path();
}

TEST_F(LocalBackend, SavepointRollbackRemovesOnlyItsOwn) {
    Session a;
    a.exec("BEGIN");
    put(a, "sp/before.txt", "b");
    a.exec("SAVEPOINT s1");
    put(a, "sp/inner.txt", "i");
    a.exec("SAVEPOINT s2");
    put(a, "sp/innermost.txt", "ii");
    a.exec("RELEASE SAVEPOINT s2");
    a.exec("ROLLBACK TO SAVEPOINT s1");
    put(a, "sp/after.txt", "a");
    a.exec("COMMIT");
    EXPECT_TRUE(fs::exists(root / "sp/before.txt"));
    EXPECT_FALSE(fs::exists(root / "sp/inner.txt"));
    EXPECT_FALSE(fs::exists(root / "sp/innermost.txt"));  // released into s1, rolled back with it
    EXPECT_TRUE(fs::exists(root / "sp/after.txt"));
}

TEST_F(LocalBackend, DeleteInvisibleToOthersUntilCommit) {
    Session a, b;
    put(a, "del/doc.txt", "still here");
    a.exec("BEGIN");
    a.exec("SELECT so_delete(so_stat('" + backend + "', 'del/doc.txt'))");
    EXPECT_EQ(get(b, "del/doc.txt"), "still here");
    EXPECT_TRUE(fs::exists(root / "del/doc.txt"));
    a.exec("COMMIT");
    // The worker removes it after the commit, and drops the queue row.
    so_test::wait_for_worker(a);
    EXPECT_FALSE(fs::exists(root / "del/doc.txt"));
    EXPECT_EQ(b.sqlstate("SELECT so_get(" + object(backend, "del/doc.txt") + ")"), "58P01");
    EXPECT_EQ(admin.value("SELECT count(*) FROM so_pending_deletes WHERE so_backend(object) = '" + backend + "'"), "0");
}

TEST_F(LocalBackend, OverwriteInvisibleToOthersUntilCommit) {
    Session a, b;
    put(a, "ow/doc.txt", "old");
    a.exec("BEGIN");
    put(a, "ow/doc.txt", "new", true);
    EXPECT_EQ(get(a, "ow/doc.txt"), "new");  // its own write
    EXPECT_EQ(get(b, "ow/doc.txt"), "old");  // not yet anyone else's
    a.exec("COMMIT");
    EXPECT_EQ(get(b, "ow/doc.txt"), "new");
    EXPECT_EQ(read_file(root / "ow/doc.txt"), "new");
}

TEST_F(LocalBackend, ConcurrentCreateOnlyPutsExactlyOneSucceeds) {
    constexpr int kKeys = 40;
    std::atomic<int> successes{0}, conflicts{0}, others{0};
    auto worker = [&](int id) {
        Session s;
        for (int i = 0; i < kKeys; ++i) {
            s.exec("BEGIN");
            std::string state = s.sqlstate("SELECT so_put('" + backend + "', 'race/" + std::to_string(i) +
                                           ".txt', convert_to('writer " + std::to_string(id) + "', 'UTF8'))");
            if (state.empty()) ++successes;
            else if (state == "58P02") ++conflicts;
            else ++others;
            s.exec(state.empty() ? "COMMIT" : "ROLLBACK");
        }
    };
    std::thread t1(worker, 1), t2(worker, 2);
    t1.join();
    t2.join();
    EXPECT_EQ(successes, kKeys);
    EXPECT_EQ(conflicts, kKeys);
    EXPECT_EQ(others, 0);
    for (int i = 0; i < kKeys; ++i) {
        std::string content = read_file(root / ("race/" + std::to_string(i) + ".txt"));
        EXPECT_TRUE(content == "writer 1" || content == "writer 2") << content;
    }
}

TEST_F(LocalBackend, LoserOfARaceSeesTheWinnersAbortOnlyAfterwards) {
    Session a, b;
    a.exec("BEGIN");
    put(a, "race/aborted.txt", "a");
    b.exec("BEGIN");
    EXPECT_EQ(b.sqlstate("SELECT so_put('" + backend + "', 'race/aborted.txt', 'b')"), "58P02");
    EXPECT_NE(b.last_error().find("already exists in backend \"" + backend + "\""), std::string::npos);
    b.exec("ROLLBACK");
    a.exec("ROLLBACK");
    put(b, "race/aborted.txt", "b");
    EXPECT_EQ(read_file(root / "race/aborted.txt"), "b");
}

TEST_F(LocalBackend, PrepareTransactionRefused) {
    Session a;
    a.exec("BEGIN");
    put(a, "prepared/a.txt", "x");
    EXPECT_EQ(a.sqlstate("PREPARE TRANSACTION 'so_it_prepare'"), "0A000");
    EXPECT_FALSE(fs::exists(root / "prepared/a.txt"));
    EXPECT_EQ(a.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'so_it_prepare'"), "0");
    // A delete alone is refused the same way.
    put(a, "prepared/b.txt", "x");
    a.exec("BEGIN");
    a.exec("SELECT so_delete(" + object(backend, "prepared/b.txt") + ")");
    EXPECT_EQ(a.sqlstate("PREPARE TRANSACTION 'so_it_prepare'"), "0A000");
    EXPECT_TRUE(fs::exists(root / "prepared/b.txt"));
}

TEST_F(LocalBackend, TraversalRefused) {
    Session a;
    for (const char *key : {"../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", "a//b", "./a"}) {
        EXPECT_EQ(a.sqlstate("SELECT so_put('" + backend + "', " + a.quote(key) + ", 'x')"), "22023") << key;
        EXPECT_EQ(a.sqlstate("SELECT so_get(" + object(backend, key) + ")"), "22023") << key;
        EXPECT_EQ(a.sqlstate("SELECT so_delete(" + object(backend, key) + ")"), "22023") << key;
    }
    EXPECT_FALSE(fs::exists(root.parent_path() / "escape.txt"));
}

TEST_F(LocalBackend, SymlinkInsideRootCannotLeadOutside) {
    Session a;
    put(a, "inside.txt", "x");  // creates the root
    fs::path outside = so_test::env("SO_TEST_TMPDIR") + "/outside-" + backend;
    fs::create_directories(outside);
    { std::ofstream(outside / "secret.txt") << "secret"; }
    ASSERT_EQ(chown(outside.c_str(), getuid(), getgid()), 0);
    fs::create_directory_symlink(outside, root / "link");
    fs::create_symlink(outside / "secret.txt", root / "evil.txt");

    // A directory symlink on the way: refused, whatever the operation.
    EXPECT_EQ(a.sqlstate("SELECT so_put('" + backend + "', 'link/new.txt', 'x')"), "42501");
    EXPECT_NE(a.last_error().find("symbolic link"), std::string::npos) << a.last_error();
    EXPECT_EQ(a.sqlstate("SELECT so_get(" + object(backend, "link/secret.txt") + ")"), "42501");
    EXPECT_EQ(a.sqlstate("SELECT so_stat('" + backend + "', 'link/secret.txt')"), "42501");
    EXPECT_FALSE(fs::exists(outside / "new.txt"));
    // A delete through it is only a warning after commit, and removes nothing.
    a.exec("SELECT so_delete(" + object(backend, "link/secret.txt") + ")");
    EXPECT_TRUE(fs::exists(outside / "secret.txt"));

    // A symlink as the object itself is never followed: reading and
    // writing refuse (the overwrite fails at commit, when it is promoted)...
    EXPECT_EQ(a.sqlstate("SELECT so_get(" + object(backend, "evil.txt") + ")"), "42501");
    EXPECT_EQ(a.sqlstate("SELECT so_stat('" + backend + "', 'evil.txt')"), "42501");
    EXPECT_EQ(a.sqlstate("SELECT so_put('" + backend + "', 'evil.txt', 'x')"), "42501");
    a.exec("BEGIN");
    put(a, "evil.txt", "replaced", true);
    EXPECT_EQ(a.sqlstate("COMMIT"), "42501");
    EXPECT_EQ(read_file(outside / "secret.txt"), "secret");
    EXPECT_TRUE(fs::is_symlink(root / "evil.txt"));
    // ...and deleting a link removes the link only.
    a.exec("SELECT so_delete(" + object(backend, "evil.txt") + ")");
    so_test::wait_for_worker(a);
    EXPECT_FALSE(fs::exists(fs::symlink_status(root / "evil.txt")));
    EXPECT_EQ(read_file(outside / "secret.txt"), "secret");
}

TEST_F(LocalBackend, FailedDeleteAfterCommitStaysQueuedWithItsError) {
    Session a;
    put(a, "locked/doc.txt", "x");
    a.exec("BEGIN");
    a.exec("SELECT so_delete(so_stat('" + backend + "', 'locked/doc.txt'))");
    // The server's user may no longer change the directory.
    ASSERT_EQ(chmod((root / "locked").c_str(), 0500), 0);
    a.exec("COMMIT");  // the commit itself succeeds: the worker deletes, later
    so_test::wait_for_worker(a);
    ASSERT_EQ(chmod((root / "locked").c_str(), 0700), 0);
    EXPECT_TRUE(fs::exists(root / "locked/doc.txt"));
    EXPECT_EQ(admin.value("SELECT attempts || ' ' || (last_error LIKE '%could not remove \"locked/doc.txt\"%') || ' ' || "
                          "(next_attempt_at > now()) FROM so_pending_deletes WHERE so_backend(object) = '" + backend +
                          "' AND so_filename(object) = 'locked/doc.txt'"),
              "1 true true");
}
