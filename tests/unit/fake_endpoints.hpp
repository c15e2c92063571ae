// The loopback fake of cloud credential endpoints
// (tests/fakes/credential_endpoints.py) as a child process of a unit test:
// started on a free port, spoken to through its control endpoint, stopped
// at the end.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/http_client.hpp"
#include "core/json.hpp"

namespace so::testing {

class FakeEndpoints {
public:
    // Starts the fake, with config (JSON) if not empty; dir holds its files.
    bool start(const std::string &dir, const std::string &config = "") {
        std::string port_file = dir + "/port", config_file = dir + "/fake-config.json";
        if (!config.empty()) std::ofstream(config_file) << config;
        pid_ = fork();
        if (pid_ == 0) {
            std::string script = std::string(SO_SOURCE_DIR) + "/tests/fakes/credential_endpoints.py";
            if (config.empty())
                execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", "--port-file", port_file.c_str(),
                      static_cast<char *>(nullptr));
            else
                execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", "--port-file", port_file.c_str(),
                      "--config", config_file.c_str(), static_cast<char *>(nullptr));
            _exit(127);
        }
        for (int i = 0; i < 300; ++i) {  // the port file is written once it listens
            std::ifstream in(port_file);
            int port = 0;
            if (in >> port && port > 0) {
                url_ = "http://127.0.0.1:" + std::to_string(port);
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

    void stop() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

    const std::string &url() const { return url_; }

    http::Response control(const std::string &method, const std::string &path, const std::string &body) const {
        http::Client client(http::Timeouts{2000, 10000});
        http::Request req;
        req.method = method;
        req.url = url_ + path;
        if (!body.empty()) {
            req.headers = {{"Content-Type", "application/json"}};
            req.body = body.data();
            req.body_size = body.size();
        }
        http::Outcome outcome = client.perform(req);
        EXPECT_TRUE(outcome.transport_ok) << outcome.error;
        return outcome.response;
    }

    // "service METHOD" of each request the fake saw, in order.
    std::vector<std::string> services_seen() const {
        json::Value log = json::parse(control("GET", "/__fake/requests", "").body);
        std::vector<std::string> out;
        for (const auto &entry : log.items)
            if (const auto *s = entry.find("service"); s && s->kind == json::Value::Kind::String)
                out.push_back(s->text + " " + entry.find("method")->text);
        return out;
    }

    // Settings back to the start's, no faults, an empty log.
    void reset() const {
        control("PUT", "/__fake/config", "{}");
        control("DELETE", "/__fake/faults", "");
        control("DELETE", "/__fake/requests", "");
    }

private:
    pid_t pid_ = -1;
    std::string url_;
};

}  // namespace so::testing
