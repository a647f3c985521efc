// The ZeroMQ front of tailord:
//   requests  ROUTER  decide, event/events (acked), profile.get, health, stats
//   events    PULL    fire-and-forget event/events
//   outbound  PUB     offers emitted by journeys
// Requests are handed to worker threads over an inproc DEALER, so REQ and
// DEALER clients, concurrent and pipelined, are all served. Events, from
// either socket, are stored by the ingest lane (service/ingest.h), which
// answers acknowledged ones once durable: no worker waits on the disk.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"

namespace tailor {

class Engine;

class Server {
 public:
  struct Endpoints {
    std::string requests, events, outbound;  // as bound, with real ports
  };

  Server(Engine* engine, ServiceConfig config);
  ~Server();

  // Binds all sockets; "tcp://127.0.0.1:*" picks a free port.
  Status Bind();
  const Endpoints& endpoints() const { return endpoints_; }
  // Who may connect, for the start-up log (service/gate.h).
  std::string SecuritySummary() const;

  // Serves until *stop becomes true, then drains: answers every request
  // already received or still arriving within a short quiet period, stores
  // every queued event, and returns.
  // *reload (optional) set to true asks for a reload (SIGHUP).
  void Run(const std::atomic<bool>* stop, std::atomic<bool>* reload = nullptr);

  // Answers one request body on the calling thread, as a worker does (parse,
  // handle, reply text); never throws. For benchmarks and tools.
  std::string Handle(std::string_view body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Endpoints endpoints_;
};

}  // namespace tailor
