#include "tailord_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "runtime.h"

namespace tailor::cli {

namespace fs = std::filesystem;
using nlohmann::json;

std::string SelfDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

TailordProcess::TailordProcess(const TailordOptions& o) {
  const std::string bin = o.bin.empty() ? SelfDir() + "/tailord" : o.bin;
  const std::string ready = o.work_dir + "/tailord.ready.json";
  log_ = o.work_dir + "/tailord.log";
  fs::remove(ready);
  std::vector<std::string> args = {bin,
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
                                   ready,
                                   "--log-level",
                                   "warn"};
  if (o.ready_after_training) args.push_back("--ready-after-training");
  if (!o.plugin_dir.empty()) {
    args.push_back("--plugin-dir");
    args.push_back(o.plugin_dir);
  }
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  const auto start = std::chrono::steady_clock::now();
  pid_ = fork();
  if (pid_ == 0) {
    FILE* f = freopen(log_.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Plugins may train at start-up: give them time.
  auto deadline = start + std::chrono::seconds(o.start_timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive()) Fail(o.who + ": tailord (" + bin + ") exited during start-up:\n" + LogTail());
    std::ifstream in(ready);
    if (in.good()) {
      json j = json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("requests")) {
        requests_ = j.value("requests", "");
        events_ = j.value("events", "");
        ready_seconds_ =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Fail(o.who + ": tailord did not become ready in " + std::to_string(o.start_timeout_s) + " s:\n" +
       LogTail());
}

TailordProcess::~TailordProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 300; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

bool TailordProcess::Alive() {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int TailordProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string TailordProcess::LogTail() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 4000 ? "..." + s.substr(s.size() - 4000) : s;
}

struct Wire::Impl {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
};

Wire::Wire(const std::string& endpoint) : impl_(std::make_unique<Impl>()) {
  impl_->sock.set(zmq::sockopt::linger, 0);
  impl_->sock.connect(endpoint);
}

Wire::~Wire() = default;

void Wire::Send(const json& msg) { SendRaw(msg.dump()); }

void Wire::SendRaw(const std::string& body) {
  // An empty delimiter frame first, as a REQ socket sends it.
  impl_->sock.send(zmq::message_t(), zmq::send_flags::sndmore);
  impl_->sock.send(zmq::buffer(body), zmq::send_flags::none);
}

std::optional<std::string> Wire::RecvRaw(int timeout_ms) {
  zmq::pollitem_t items[] = {{impl_->sock.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(timeout_ms));
  if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> frames;
  if (!zmq::recv_multipart(impl_->sock, std::back_inserter(frames)) || frames.empty())
    return std::nullopt;
  return frames.back().to_string();
}

std::optional<json> Wire::Recv(int timeout_ms) {
  auto raw = RecvRaw(timeout_ms);
  if (!raw) return std::nullopt;
  return json::parse(*raw, nullptr, false);
}

}  // namespace tailor::cli
