#include "service/http.h"

#include <httplib.h>

#include <thread>

#include "common/host_port.h"

namespace tailor {

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
};

std::unique_ptr<HttpServer> HttpServer::Start(const std::string& address, Handlers h,
                                              std::string* err) {
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port)) {
    *err = "service.http: expected host:port, e.g. 127.0.0.1:9464, got '" + address + "'";
    return nullptr;
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>();
  httplib::Server& svr = s->impl_->server;
  // A scrape or a probe at a time is the norm: two threads bound the cost.
  svr.new_task_queue = [] { return new httplib::ThreadPool(2); };
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_payload_max_length(1024);  // read-only: no request needs a body
  svr.Get("/metrics", [m = h.metrics](const httplib::Request&, httplib::Response& res) {
    res.set_content(m(), "text/plain; version=0.0.4; charset=utf-8");
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  svr.Get("/readyz", [r = h.not_ready](const httplib::Request&, httplib::Response& res) {
    std::vector<std::string> why = r();
    if (why.empty()) {
      res.set_content("ready\n", "text/plain");
      return;
    }
    std::string body = "not ready\n";
    for (const std::string& w : why) body += w + "\n";
    res.status = 503;
    res.set_content(body, "text/plain");
  });
  const int bound =
      port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    *err = "service.http: cannot listen on " + address;
    return nullptr;
  }
  s->address_ = host + ":" + std::to_string(bound);
  s->impl_->thread = std::thread([&svr] { svr.listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace tailor
