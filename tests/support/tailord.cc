#include "support/tailord.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/temp_dir.h"

namespace tailor::testing {

std::string TailorBin() { return std::string(TAILOR_BIN_DIR) + "/tailor"; }
std::string TailordBin() { return std::string(TAILOR_BIN_DIR) + "/tailord"; }

int Shell(const std::string& cmd, const std::string& log) {
  const int rc = std::system((cmd + " >" + log + " 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

std::string ShippedPluginYaml(const std::string& name, const std::string& extra) {
  return "  - name: " + name + "\n    path: " + TAILOR_PLUGIN_DIR + "/tailor_" + name + ".so\n" +
         extra;
}
std::string FixturePluginYaml(const std::string& name, const std::string& extra) {
  return "  - name: " + name + "\n    path: " + TAILOR_FIXTURE_DIR + "/" + name + ".so\n" + extra;
}

std::string SmallConfig(const std::string& dir, const std::string& plugins,
                        const std::string& extra) {
  WriteFile(dir + "/offers.yaml", "offers:\n  - {id: o1, promotes: {category: phones}}\n");
  const std::string path = dir + "/tailor.yaml";
  WriteFile(path, extra + "plugins:\n" + plugins +
                      "placements:\n  home: {kind: offers}\noffers: offers.yaml\n");
  return path;
}

Tailord::Tailord(Options o) {
  if (o.config.empty()) o.config = std::string(TAILOR_SOURCE_DIR) + "/config/tailor.yaml";
  dir_ = std::filesystem::path(o.store).parent_path().string();
  std::string ready = o.store + ".ready.json";
  log_path_ = o.store + ".log";
  std::filesystem::remove(ready);
  std::vector<std::string> args = {o.binary.empty() ? TailordBin() : o.binary,
                                   "--config",
                                   o.config,
                                   "--store",
                                   o.store,
                                   "--requests",
                                   "tcp://127.0.0.1:*",
                                   "--events",
                                   "tcp://127.0.0.1:*",
                                   "--outbound",
                                   "tcp://127.0.0.1:*",
                                   "--ready-file",
                                   ready};
  if (o.binary.empty()) args.insert(args.end(), {"--plugin-dir", TAILOR_PLUGIN_DIR});
  if (o.wait_for_training) args.push_back("--ready-after-training");
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = freopen(log_path_.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Ready once every plugin has trained (--ready-after-training).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "tailord exited during start-up:\n" << Log();
      return;
    }
    std::ifstream in(ready);
    if (in.good()) {
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object()) {
        requests_ = j.value("requests", "");
        events_ = j.value("events", "");
        outbound_ = j.value("outbound", "");
        http_ = j.value("http", "");
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "tailord did not become ready in 120 s:\n" << Log();
}

Tailord::~Tailord() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

int Tailord::Terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string Tailord::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Client::Client(const std::string& endpoint, int timeout_ms) : sock_(ctx_, zmq::socket_type::req) {
  sock_.set(zmq::sockopt::rcvtimeo, timeout_ms);
  sock_.set(zmq::sockopt::linger, 0);
  sock_.connect(endpoint);
}

Subscriber::Subscriber(const std::string& endpoint, int timeout_ms)
    : sock_(ctx_, zmq::socket_type::sub) {
  sock_.set(zmq::sockopt::subscribe, "");
  sock_.set(zmq::sockopt::rcvtimeo, timeout_ms);
  sock_.set(zmq::sockopt::linger, 0);
  sock_.connect(endpoint);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

std::optional<std::string> Subscriber::Next() {
  zmq::message_t m;
  if (!sock_.recv(m)) return std::nullopt;
  return m.to_string();
}

std::string Client::CallRaw(const std::string& body) {
  sock_.send(zmq::buffer(body), zmq::send_flags::none);
  zmq::message_t reply;
  auto got = sock_.recv(reply);
  if (!got) {
    ADD_FAILURE() << "no reply to " << body.substr(0, 200);
    return "";
  }
  return reply.to_string();
}

nlohmann::json Client::Call(const nlohmann::json& request) {
  std::string r = CallRaw(request.dump());
  return nlohmann::json::parse(r, nullptr, false);
}

}  // namespace tailor::testing
