#include "service/server.h"

#include <chrono>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "common/log.h"
#include "common/time.h"
#include "decision/engine.h"
#include "service/protocol.h"
#include "service/reply.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using nlohmann::json;

constexpr const char* kBackend = "inproc://tailor-workers";
constexpr auto kPoll = std::chrono::milliseconds(50);
// Shutdown: stop once nothing arrived for this long, or after the cap.
constexpr int64_t kQuietMs = 200;
constexpr int64_t kDrainCapMs = 5000;

std::string Dump(const json& j) {
  // Plugin reasons are foreign bytes: replace invalid UTF-8 rather than throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* TypeName(Request::Type t) {
  switch (t) {
    case Request::Type::kDecide:
      return "decide";
    case Request::Type::kEvent:
      return "event";
    case Request::Type::kEvents:
      return "events";
    case Request::Type::kProfileGet:
      return "profile.get";
    case Request::Type::kHealth:
      return "health";
    case Request::Type::kStats:
      return "stats";
    case Request::Type::kExplain:
      return "explain";
    case Request::Type::kReload:
      return "rules.reload";
  }
  return "unknown";
}

// zmq::poll that treats a signal's interruption as "nothing ready".
void Poll(zmq::pollitem_t* items, size_t n) {
  try {
    zmq::poll(items, n, kPoll);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) throw;
    for (size_t i = 0; i < n; ++i) items[i].revents = 0;
  }
}

}  // namespace

struct Server::Impl {
  Engine* engine;
  ServiceConfig config;
  zmq::context_t ctx{1};
  zmq::socket_t frontend{ctx, zmq::socket_type::router};
  zmq::socket_t backend{ctx, zmq::socket_type::dealer};
  zmq::socket_t events{ctx, zmq::socket_type::pull};
  zmq::socket_t outbound{ctx, zmq::socket_type::pub};
  std::atomic<bool> workers_stop{false};
  std::atomic<bool> events_drain{false};

  Impl(Engine* e, ServiceConfig c) : engine(e), config(std::move(c)) {}

  // Reload offers, rules and journeys; the reply lists every error, and on
  // any error the old set keeps serving.
  std::string ReloadReply(const std::string& id) {
    std::vector<std::string> errors = engine->Reload();
    if (!errors.empty()) {
      engine->metrics().counters.Add(std::string("errors.") + TAILOR_ERR_RELOAD_FAILED);
      for (const auto& e : errors) log::Warn("reload", e);
      json j = {{"v", TAILOR_SCHEMA_VERSION},
                {"id", id.empty() ? json(nullptr) : json(id)},
                {"error",
                 {{"code", TAILOR_ERR_RELOAD_FAILED},
                  {"field", ""},
                  {"message", std::to_string(errors.size()) +
                                  " error(s); the previous offers, rules and journeys keep "
                                  "serving"},
                  {"errors", errors}}}};
      return Dump(j);
    }
    std::vector<std::string> models = engine->ReloadModels();
    auto snap = engine->snapshot();
    return Dump({{"v", TAILOR_SCHEMA_VERSION},
                 {"id", id},
                 {"reloaded", true},
                 {"snapshot", snap->version},
                 {"offers", snap->catalog->offers.size()},
                 {"rules", snap->rules ? snap->rules->rules().size() : 0},
                 {"models", models}});
  }

  // A batch is acknowledged once every event in it is stored (one group
  // commit). On a store failure the error names the first event not stored
  // and how many failed; the client resends the batch.
  std::string EventsReply(const std::string& id, std::vector<Event> events, int64_t t0) {
    Metrics& m = engine->metrics();
    const size_t n = events.size();
    std::vector<Status> st = engine->IngestEvents(std::move(events));
    m.event_us.Record((mono_ns() - t0) / 1000);
    size_t failed = 0, first = n;
    for (size_t i = 0; i < st.size(); ++i)
      if (!st[i].ok()) {
        ++failed;
        first = std::min(first, i);
      }
    if (failed) {
      m.counters.Add(std::string("errors.") + TAILOR_ERR_INTERNAL);
      const std::string at = "events[" + std::to_string(first) + "]";
      return ErrorReply(id, {TAILOR_ERR_INTERNAL, at,
                             std::to_string(failed) + " of " + std::to_string(n) +
                                 " events not stored; first " + at + ": " + st[first].message()});
    }
    return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"ok", true}, {"stored", n}});
  }

  // Handles one request body; never throws. With only_quick, a reload
  // (which may load models for seconds) is declined: nullopt, for a worker.
  std::optional<std::string> Handle(std::string_view body, bool only_quick = false) {
    Metrics& m = engine->metrics();
    int64_t t0 = mono_ns();
    std::string id;
    auto parsed = ParseRequest(body, config.max_message_bytes, &id);
    if (auto* err = std::get_if<ApiError>(&parsed)) {
      m.counters.Add("requests.invalid");
      m.counters.Add("errors." + err->code);
      return ErrorReply(id, *err);
    }
    Request& req = std::get<Request>(parsed);
    if (only_quick && req.type == Request::Type::kReload) return std::nullopt;
    m.counters.Add(std::string("requests.") + TypeName(req.type));
    try {
      switch (req.type) {
        case Request::Type::kDecide: {
          auto out = engine->Decide(req.decide);
          if (auto* err = std::get_if<ApiError>(&out)) {
            m.decide_us.Record((mono_ns() - t0) / 1000);
            m.counters.Add("errors." + err->code);
            return ErrorReply(id, *err);
          }
          std::string text = Dump(DecideReply(std::move(std::get<Decision>(out))));
          m.decide_us.Record((mono_ns() - t0) / 1000);
          return text;
        }
        case Request::Type::kEvent: {
          Status st = engine->IngestEvent(std::move(req.event));
          m.event_us.Record((mono_ns() - t0) / 1000);
          if (!st.ok()) {
            m.counters.Add(std::string("errors.") + TAILOR_ERR_INTERNAL);
            return ErrorReply(id, {TAILOR_ERR_INTERNAL, "", "event not stored: " + st.message()});
          }
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"ok", true}});
        }
        case Request::Type::kEvents:
          return EventsReply(id, std::move(req.events), t0);
        case Request::Type::kProfileGet:
          return Dump({{"v", TAILOR_SCHEMA_VERSION},
                       {"id", id},
                       {"profile", engine->ProfileJson(req.customer)}});
        case Request::Type::kHealth:
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"health", engine->Health()}});
        case Request::Type::kStats:
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"stats", engine->Stats()}});
        case Request::Type::kExplain: {
          auto out = engine->Explain(req.decision);
          if (auto* err = std::get_if<ApiError>(&out)) {
            m.counters.Add("errors." + err->code);
            return ErrorReply(id, *err);
          }
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"explain", std::get<json>(out)}});
        }
        case Request::Type::kReload:
          return ReloadReply(id);
      }
    } catch (const std::exception& e) {
      // A bug, not a client error: answer, count, log, keep serving.
      log::Error("service", std::string("request failed: ") + e.what());
    }
    m.counters.Add(std::string("errors.") + TAILOR_ERR_INTERNAL);
    return ErrorReply(id, {TAILOR_ERR_INTERNAL, "", "internal error; see the server log"});
  }

  void WorkerLoop() {
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(kBackend);
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
    while (!workers_stop.load()) {
      Poll(items, 1);
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      frames.clear();
      if (!zmq::recv_multipart(sock, std::back_inserter(frames))) continue;
      if (frames.size() < 2) continue;  // no routing envelope: nowhere to reply
      // Envelope = every frame but the last (identity, and "" from REQ clients).
      zmq::message_t& body = frames.back();
      std::string reply =
          *Handle(std::string_view(static_cast<const char*>(body.data()), body.size()));
      frames.back() = zmq::message_t(reply.data(), reply.size());
      zmq::send_multipart(sock, frames);
    }
  }

  void EventLoop() {
    zmq::pollitem_t items[] = {{events.handle(), 0, ZMQ_POLLIN, 0}};
    int64_t last_msg = now_ms();
    int64_t drain_started = 0;
    std::vector<Event> batch;
    for (;;) {
      Poll(items, 1);
      batch.clear();
      // Take what is queued (bounded) and store it as one batch.
      while (batch.size() < 512) {
        zmq::message_t msg;
        if (!events.recv(msg, zmq::recv_flags::dontwait)) break;
        last_msg = now_ms();
        Metrics& m = engine->metrics();
        m.counters.Add("requests.event_push");
        std::string_view body(static_cast<const char*>(msg.data()), msg.size());
        std::string id;
        ApiError err;
        bool ok = false;
        auto parsed = ParseRequest(body, config.max_message_bytes, &id);
        if (auto* e = std::get_if<ApiError>(&parsed)) {
          err = *e;
        } else if (std::get<Request>(parsed).type != Request::Type::kEvent) {
          err = {TAILOR_ERR_BAD_REQUEST, "type", "only event messages are accepted on this socket"};
        } else {
          batch.push_back(std::move(std::get<Request>(parsed).event));
          ok = true;
        }
        if (!ok) {
          // No return path on PUSH/PULL: count and log, the client sees stats.
          m.counters.Add("errors." + err.code);
          log::Warn("events", "rejected event" + (id.empty() ? "" : " '" + id + "'") + ": " +
                                  err.field + ": " + err.message);
        }
      }
      if (!batch.empty()) engine->IngestEvents(std::move(batch));
      if (events_drain.load()) {
        int64_t now = now_ms();
        if (!drain_started) drain_started = now;
        if (now - last_msg >= kQuietMs || now - drain_started >= kDrainCapMs) return;
      }
    }
  }
};

Server::Server(Engine* engine, ServiceConfig config)
    : impl_(std::make_unique<Impl>(engine, std::move(config))) {}

Server::~Server() = default;

Status Server::Bind() {
  Impl& s = *impl_;
  // Protects memory from a huge frame; frames between the soft limit and this
  // cap are received and answered with too_large.
  const int64_t hard_cap = static_cast<int64_t>(s.config.max_message_bytes) * 16;
  try {
    s.frontend.set(zmq::sockopt::maxmsgsize, hard_cap);
    s.frontend.set(zmq::sockopt::linger, 2000);
    s.frontend.set(zmq::sockopt::router_mandatory, 0);
    s.events.set(zmq::sockopt::maxmsgsize, hard_cap);
    s.outbound.set(zmq::sockopt::linger, 0);
    s.backend.set(zmq::sockopt::linger, 0);
    s.frontend.bind(s.config.requests);
    endpoints_.requests = s.frontend.get(zmq::sockopt::last_endpoint);
    s.events.bind(s.config.events);
    endpoints_.events = s.events.get(zmq::sockopt::last_endpoint);
    s.outbound.bind(s.config.outbound);
    endpoints_.outbound = s.outbound.get(zmq::sockopt::last_endpoint);
    s.backend.bind(kBackend);
  } catch (const zmq::error_t& e) {
    return Status::Error(std::string("cannot bind: ") + e.what());
  }
  return Status::Ok();
}

std::string Server::Handle(std::string_view body) { return *impl_->Handle(body); }

void Server::Run(const std::atomic<bool>* stop, std::atomic<bool>* reload) {
  Impl& s = *impl_;
  std::vector<std::thread> workers;
  for (int i = 0; i < s.config.workers; ++i) workers.emplace_back([&s] { s.WorkerLoop(); });
  std::thread event_thread([&s] { s.EventLoop(); });

  zmq::pollitem_t items[] = {{s.frontend.handle(), 0, ZMQ_POLLIN, 0},
                             {s.backend.handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> frames, next;
  int64_t in_flight = 0;
  int64_t last_request = now_ms();
  int64_t drain_started = 0;
  int64_t last_outbound = 0;
  for (;;) {
    Poll(items, 2);
    if (items[0].revents & ZMQ_POLLIN) {
      // Forward everything queued, without blocking on any one socket. A lone
      // request while no worker is busy is answered here instead: that saves
      // the two inproc wake-ups that dominate a light request's round trip.
      auto recv = [&](std::vector<zmq::message_t>* into) {
        into->clear();
        return zmq::recv_multipart(s.frontend, std::back_inserter(*into), zmq::recv_flags::dontwait)
            .has_value();
      };
      auto forward = [&](std::vector<zmq::message_t>* msg) {
        ++in_flight;
        s.engine->metrics().counters.Add("service.to_workers");
        zmq::send_multipart(s.backend, *msg);
      };
      if (recv(&frames)) {
        last_request = now_ms();
        std::optional<std::string> reply;
        if (!recv(&next) && s.config.inline_when_idle && in_flight == 0 && frames.size() >= 2)
          reply = s.Handle(std::string_view(static_cast<const char*>(frames.back().data()),
                                            frames.back().size()),
                           /*only_quick=*/true);
        if (reply) {
          frames.back() = zmq::message_t(reply->data(), reply->size());
          zmq::send_multipart(s.frontend, frames, zmq::send_flags::dontwait);
          s.engine->metrics().counters.Add("service.inline");
        } else {
          forward(&frames);
          if (!next.empty()) {
            forward(&next);
            for (int k = 0; k < 256 && recv(&next); ++k) forward(&next);
          }
        }
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (int k = 0; k < 256; ++k) {
        frames.clear();
        if (!zmq::recv_multipart(s.backend, std::back_inserter(frames), zmq::recv_flags::dontwait))
          break;
        --in_flight;
        zmq::send_multipart(s.frontend, frames, zmq::send_flags::dontwait);
      }
    }
    // Journey steps that are due go out on the PUB socket (this thread owns it).
    if (int64_t now = now_ms(); now - last_outbound >= 100) {
      last_outbound = now;
      for (const std::string& msg : s.engine->TakeDueOutbound(256)) {
        s.outbound.send(zmq::buffer(msg), zmq::send_flags::dontwait);
        s.engine->metrics().counters.Add("outbound.sent");
      }
    }
    if (reload && reload->exchange(false)) {
      // SIGHUP: same path as the rules.reload message, answered in the log.
      std::vector<std::string> errors = s.engine->Reload();
      for (const auto& e : errors) log::Warn("reload", e);
      if (!errors.empty())
        log::Error("reload",
                   std::to_string(errors.size()) + " error(s); the previous set keeps serving");
      else
        s.engine->ReloadModels();  // logs what it loaded
    }
    if (stop->load()) {
      int64_t now = now_ms();
      if (!drain_started) {
        drain_started = now;
        log::Info("service", "shutting down: answering requests in flight");
        s.events_drain = true;
      }
      bool quiet = now - last_request >= kQuietMs && in_flight == 0;
      if (quiet || now - drain_started >= kDrainCapMs) break;
    }
  }
  event_thread.join();
  s.workers_stop = true;
  for (auto& t : workers) t.join();
  log::Info("service", "stopped; " + std::to_string(in_flight) + " requests unanswered");
}

}  // namespace tailor
