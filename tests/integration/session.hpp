// Helpers for integration tests against the live cluster that
// scripts/test.sh starts: SO_TEST_DSN names a database with the extension,
// SO_TEST_TMPDIR a directory the server's OS user owns.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace so_test {

inline std::string env(const char *name) {
    const char *value = std::getenv(name);
    if (!value || !*value) throw std::runtime_error(std::string(name) + " is not set; run scripts/test.sh");
    return value;
}

// One connection with its own explicit transaction control (BEGIN,
// SAVEPOINT, ... are plain statements), its notices, and errors as
// SQLSTATEs.
class Session {
public:
    explicit Session(const std::string &user = "postgres")
        : conn_(env("SO_TEST_DSN") + " user=" + user), notices_(std::make_unique<Notices>(conn_)),
          tx_(std::make_unique<pqxx::nontransaction>(conn_)) {
        // Verbose messages start with the SQLSTATE, which libpqxx 6.4 does
        // not always pass on (insufficient_privilege, for one).
        conn_.set_verbosity(pqxx::connection_base::verbose);
    }

    pqxx::result exec(const std::string &sql) { return tx_->exec(sql); }

    // First column of the first row; "NULL" for SQL NULL.
    std::string value(const std::string &sql) {
        pqxx::result r = exec(sql);
        if (r.empty() || r[0][0].is_null()) return "NULL";
        return r[0][0].c_str();
    }

    // Runs sql; returns "" on success, the SQLSTATE of its error otherwise.
    std::string sqlstate(const std::string &sql) {
        try {
            exec(sql);
            return "";
        } catch (const pqxx::sql_error &e) {
            last_error_ = e.what();
            if (!e.sqlstate().empty()) return e.sqlstate();
            // "ERROR:  42501: message ..."
            size_t colon = last_error_.find(":  ");
            if (colon != std::string::npos && last_error_.size() >= colon + 8 && last_error_[colon + 8] == ':')
                return last_error_.substr(colon + 3, 5);
            return "unknown error";
        } catch (const pqxx::transaction_rollback &e) {
            // libpqxx 6 raises rollbacks (deadlocks, serialization failures)
            // as their own classes, outside sql_error.
            last_error_ = e.what();
            if (dynamic_cast<const pqxx::deadlock_detected *>(&e)) return "40P01";
            if (dynamic_cast<const pqxx::serialization_failure *>(&e)) return "40001";
            return "40000";
        }
    }

    const std::string &last_error() const { return last_error_; }
    std::vector<std::string> notices() const { return notices_->all(); }
    int backend_pid() { return std::stoi(value("SELECT pg_backend_pid()")); }
    std::string quote(const std::string &s) { return tx_->quote(s); }

private:
    class Notices : public pqxx::errorhandler {
    public:
        explicit Notices(pqxx::connection_base &c) : pqxx::errorhandler(c) {}
        bool operator()(const char msg[]) noexcept override {
            std::lock_guard<std::mutex> lock(mutex_);
            messages_.emplace_back(msg);
            return false;
        }
        std::vector<std::string> all() const {
            std::lock_guard<std::mutex> lock(mutex_);
            return messages_;
        }

    private:
        mutable std::mutex mutex_;
        std::vector<std::string> messages_;
    };

    pqxx::connection conn_;
    std::unique_ptr<Notices> notices_;
    std::unique_ptr<pqxx::nontransaction> tx_;
    std::string last_error_;
};

// Waits until the background worker has carried out what committed
// transactions left it (deletes, undos), as so_wait_for_worker() tells.
inline void wait_for_worker(Session &s) { ASSERT_EQ(s.value("SELECT so_wait_for_worker('1 minute')"), "t"); }

// A directory under SO_TEST_TMPDIR for one test's backend.
inline std::string backend_root(const std::string &name) { return env("SO_TEST_TMPDIR") + "/it-" + name; }

// Registers a local backend named after the running test; returns its key.
inline std::string register_local_backend(Session &admin, const std::string &options = "{}") {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string key = std::string(info->test_suite_name()) + "_" + info->name();
    // Start from nothing, so a test can be run again on the same cluster.
    admin.exec("SELECT so_unregister_backend(key) FROM so_backends WHERE key = " + admin.quote(key));
    admin.exec("DELETE FROM so_pending_deletes WHERE so_backend(object) = " + admin.quote(key));
    std::filesystem::remove_all(backend_root(key));
    admin.exec("SELECT so_register_backend(" + admin.quote(key) + ", " + admin.quote("file://" + backend_root(key)) +
               ", " + admin.quote(options) + ")");
    return key;
}

}  // namespace so_test
