// A helper thread for pure computation (hashing) inside a database server
// process: it starts with every signal blocked, so the server's signal
// handlers only ever run in the server's own thread, and it is joined
// when it goes out of scope. The body must never call into PostgreSQL.
#pragma once

#include <signal.h>

#include <thread>
#include <utility>

namespace so {

class QuietThread {
public:
    template <typename F>
    explicit QuietThread(F &&body) {
        sigset_t all, previous;
        sigfillset(&all);
        // The new thread inherits the mask in force when it is created.
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        try {
            thread_ = std::thread(std::forward<F>(body));
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &previous, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }
    ~QuietThread() {
        if (thread_.joinable()) thread_.join();
    }
    QuietThread(const QuietThread &) = delete;
    QuietThread &operator=(const QuietThread &) = delete;

    void join() {
        if (thread_.joinable()) thread_.join();
    }

private:
    std::thread thread_;
};

}  // namespace so
