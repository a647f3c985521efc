// tailord's optional HTTP listener (service.http): read-only endpoints for
// standard monitoring, on cpp-httplib with two threads of its own.
//   GET /metrics  the Prometheus text format (metrics/prometheus.h)
//   GET /healthz  liveness: 200 "ok" while the process serves
//   GET /readyz   readiness: 200 "ready", else 503 and why (not yet serving,
//                 a plugin failed or still warming, the store not writable)
// Nothing here names a customer: counters, latencies, plugin and rule names.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tailor {

class HttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;  // the /metrics body
    // Why not ready, one line each; empty when ready.
    std::function<std::vector<std::string>()> not_ready;
  };

  // Listens on "host:port" (port 0: any free port) and serves on its own
  // threads until destroyed. Null and *err on a bad address or a bind failure.
  static std::unique_ptr<HttpServer> Start(const std::string& address, Handlers handlers,
                                           std::string* err);
  ~HttpServer();

  // "host:port" as bound (the real port when 0 was asked).
  const std::string& address() const { return address_; }

 private:
  HttpServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace tailor
