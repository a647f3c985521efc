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
#include "service/gate.h"
#include "service/ingest.h"
#include "service/protocol.h"
#include "service/reply.h"
#include "service/zmq_poll.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using nlohmann::json;

constexpr const char* kBackend = "inproc://tailor-workers";
constexpr auto kPoll = std::chrono::milliseconds(50);
// Shutdown: stop once nothing arrived for this long, or after the cap.
constexpr int64_t kQuietMs = 200;
constexpr int64_t kDrainCapMs = 5000;
// A request is the ROUTER's identity frame, REQ's empty delimiter and the
// body; anything longer is dropped unread.
constexpr size_t kMaxFrames = 3;

std::string Dump(const json& j) {
  // Plugin reasons are foreign bytes: replace invalid UTF-8 rather than throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void Poll(zmq::pollitem_t* items, size_t n) { PollQuietly(items, n, kPoll); }

}  // namespace

struct Server::Impl {
  Engine* engine;
  ServiceConfig config;
  zmq::context_t ctx{1};
  Gatekeeper gate;  // after ctx: its ZAP socket closes before ctx terminates
  zmq::socket_t frontend{ctx, zmq::socket_type::router};
  zmq::socket_t backend{ctx, zmq::socket_type::dealer};
  zmq::socket_t events{ctx, zmq::socket_type::pull};
  zmq::socket_t outbound{ctx, zmq::socket_type::pub};
  zmq::socket_t ingest_replies{ctx, zmq::socket_type::pull};
  std::unique_ptr<IngestLane> lane;
  std::atomic<bool> workers_stop{false};
  std::atomic<bool> outbound_stop{false};

  Impl(Engine* e, ServiceConfig c) : engine(e), config(std::move(c)), gate(config.security) {}

  // Offers, rules, journeys and the client keys; then models. Every error is
  // returned, and on any error the old set keeps serving.
  std::vector<std::string> ReloadAll(std::vector<std::string>* models) {
    std::vector<std::string> errors = engine->Reload();
    for (std::string& e : gate.Reload()) errors.push_back(std::move(e));
    if (errors.empty()) *models = engine->ReloadModels();
    return errors;
  }

  // Reload offers, rules and journeys; the reply lists every error, and on
  // any error the old set keeps serving.
  std::string ReloadReply(const std::string& id) {
    std::vector<std::string> models;
    std::vector<std::string> errors = ReloadAll(&models);
    if (!errors.empty()) {
      engine->metrics().counters.Add(std::string("errors.") + TAILOR_ERR_RELOAD_FAILED);
      for (const auto& e : errors) log::Warn("reload", e);
      json j = {{"v", TAILOR_SCHEMA_VERSION},
                {"id", id.empty() ? json(nullptr) : json(id)},
                {"error",
                 {{"code", TAILOR_ERR_RELOAD_FAILED},
                  {"field", ""},
                  {"message", std::to_string(errors.size()) +
                                  " error(s); the previous offers, rules, journeys and client "
                                  "keys keep serving"},
                  {"errors", errors}}}};
      return Dump(j);
    }
    auto snap = engine->snapshot();
    return Dump({{"v", TAILOR_SCHEMA_VERSION},
                 {"id", id},
                 {"reloaded", true},
                 {"snapshot", snap->version},
                 {"offers", snap->catalog->offers.size()},
                 {"rules", snap->rules ? snap->rules->rules().size() : 0},
                 {"models", models}});
  }

  // Where a request came from, for its events: the ROUTER frames to answer on
  // and this thread's way into the ingest lane. Without them (Server::Handle)
  // events are stored on the calling thread.
  struct Origin {
    std::vector<zmq::message_t>* frames = nullptr;
    IngestLane::Submitter* lane = nullptr;
    uint8_t roles = kAllRoles;  // of the client key it came from (service/gate.h)
    bool queued = false;        // out: handed to the lane, which answers it
  };

  // Events go to the ingest lane, which answers once they are stored; a full
  // lane is answered here, at once.
  std::optional<std::string> Queue(std::unique_ptr<IngestLane::Job> job, Origin* from) {
    for (size_t i = 0; i + 1 < from->frames->size(); ++i)
      job->envelope.emplace_back().copy((*from->frames)[i]);
    std::string id = job->id;
    if (from->lane->Submit(std::move(job))) {
      from->queued = true;
      return std::nullopt;
    }
    engine->metrics().counters.Add(std::string("errors.") + TAILOR_ERR_UNAVAILABLE);
    return ErrorReply(id, {TAILOR_ERR_UNAVAILABLE, "", "the event queue is full; retry shortly"});
  }

  // {"v":1,"id":..,key:result}, or the error, counted.
  std::string Answer(const std::string& id, const char* key, std::variant<json, ApiError> out) {
    if (auto* err = std::get_if<ApiError>(&out)) {
      engine->metrics().counters.Add("errors." + err->code);
      return ErrorReply(id, *err);
    }
    return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {key, std::move(std::get<json>(out))}});
  }

  // Handles one request body; never throws. nullopt: with only_quick, a
  // reload (which may load models for seconds) is declined, for a worker;
  // or its events went to the ingest lane (from->queued).
  std::optional<std::string> Handle(std::string_view body, bool only_quick = false,
                                    Origin* from = nullptr) {
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
    if (auto refused = gate.Admit(req, from ? from->roles : kAllRoles)) {
      m.counters.Add("errors." + refused->code);
      return ErrorReply(id, *refused);
    }
    // Slow ones (models load, erasure checkpoints the store) go to a worker.
    if (only_quick &&
        (req.type == Request::Type::kReload || req.type == Request::Type::kProfileDelete))
      return std::nullopt;
    m.counters.Add(std::string("requests.") + RequestTypeName(req.type));
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
        case Request::Type::kEvent:
        case Request::Type::kEvents: {
          auto job = std::make_unique<IngestLane::Job>();
          job->id = id;
          job->batch = req.type == Request::Type::kEvents;
          job->t0_ns = t0;
          if (job->batch)
            job->events = std::move(req.events);
          else
            job->events.push_back(std::move(req.event));
          if (!from || !from->lane) return IngestLane::StoreNow(engine, std::move(*job));
          return Queue(std::move(job), from);
        }
        case Request::Type::kProfileGet:
          return Dump({{"v", TAILOR_SCHEMA_VERSION},
                       {"id", id},
                       {"profile", engine->ProfileJson(req.customer)}});
        case Request::Type::kProfileDelete:
          return Answer(id, "erased", engine->ForgetCustomer(req.customer));
        case Request::Type::kHealth:
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"health", engine->Health()}});
        case Request::Type::kStats:
          return Dump({{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"stats", engine->Stats()}});
        case Request::Type::kExplain:
          return Answer(id, "explain", engine->Explain(req.decision));
        case Request::Type::kReload:
          return ReloadReply(id);
        case Request::Type::kOutboundAck: {
          Status st = engine->AckOutbound(req.outbound_ids);
          if (!st.ok()) {
            log::Error("outbound", "acks not stored: " + st.message());
            break;  // answered internal below
          }
          return Dump(
              {{"v", TAILOR_SCHEMA_VERSION}, {"id", id}, {"acked", req.outbound_ids.size()}});
        }
        case Request::Type::kOutboundPending:
          return Answer(id, "outbound",
                        engine->PendingOutbound(req.outbound_after, req.outbound_limit));
      }
    } catch (const std::exception& e) {
      // A bug, not a client error: answer, count, log, keep serving.
      log::Error("service", std::string("request failed: ") + e.what());
    }
    m.counters.Add(std::string("errors.") + TAILOR_ERR_INTERNAL);
    return ErrorReply(id, {TAILOR_ERR_INTERNAL, "", "internal error; see the server log"});
  }

  // Journey steps that fall due, and outbox messages due again, go out on the
  // PUB socket every 100 ms.
  void OutboundLoop() {
    while (!outbound_stop.load()) {
      for (const std::string& msg : engine->TakeDueOutbound(256)) {
        outbound.send(zmq::buffer(msg), zmq::send_flags::dontwait);
        engine->metrics().counters.Add("outbound.sent");
      }
      for (const std::string& msg : engine->RedeliverDue(256))
        outbound.send(zmq::buffer(msg), zmq::send_flags::dontwait);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void WorkerLoop() {
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(kBackend);
    IngestLane::Submitter lane_in(lane.get());
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
    while (!workers_stop.load()) {
      Poll(items, 1);
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      frames.clear();
      if (!zmq::recv_multipart(sock, std::back_inserter(frames))) continue;
      if (frames.size() < 3) continue;  // roles, envelope, body
      // The I/O thread put the sender's roles first; the envelope is every
      // other frame but the last (identity, and "" from REQ clients).
      const uint8_t roles = *static_cast<const uint8_t*>(frames.front().data());
      frames.erase(frames.begin());
      zmq::message_t& body = frames.back();
      Origin from{&frames, &lane_in, roles};
      std::optional<std::string> reply = Handle(
          std::string_view(static_cast<const char*>(body.data()), body.size()), false, &from);
      // An empty body tells the I/O thread the lane answers this one.
      frames.back() = reply ? zmq::message_t(reply->data(), reply->size()) : zmq::message_t();
      zmq::send_multipart(sock, frames);
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
  if (Status st = s.gate.Start(&s.ctx, {s.config.requests, s.config.events, s.config.outbound});
      !st.ok())
    return st;
  try {
    s.gate.Secure(&s.frontend, "requests");
    s.gate.Secure(&s.events, "events");
    s.gate.Secure(&s.outbound, "outbound");
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
    s.ingest_replies.set(zmq::sockopt::linger, 0);
    s.ingest_replies.bind(IngestLane::kReplies);
    s.lane = std::make_unique<IngestLane>(s.engine, &s.ctx, &s.events, &s.gate,
                                          s.config.max_message_bytes);
  } catch (const zmq::error_t& e) {
    return Status::Error(std::string("cannot bind: ") + e.what());
  }
  return Status::Ok();
}

std::string Server::SecuritySummary() const { return impl_->gate.Describe(); }

std::string Server::Handle(std::string_view body) { return *impl_->Handle(body); }

void Server::Run(const std::atomic<bool>* stop, std::atomic<bool>* reload) {
  Impl& s = *impl_;
  std::vector<std::thread> workers;
  for (int i = 0; i < s.config.workers; ++i) workers.emplace_back([&s] { s.WorkerLoop(); });
  s.lane->Start();
  // The outbound socket belongs to this thread from here on: taking due
  // steps waits for the store, which the I/O thread must never do.
  std::thread outbound([&s] { s.OutboundLoop(); });
  IngestLane::Submitter lane_in(s.lane.get());

  zmq::pollitem_t items[] = {{s.frontend.handle(), 0, ZMQ_POLLIN, 0},
                             {s.backend.handle(), 0, ZMQ_POLLIN, 0},
                             {s.ingest_replies.handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> frames, next;
  // Requests at the workers, and acknowledged events at the ingest lane
  // (those do not keep a decision from being answered inline).
  int64_t in_flight = 0, at_lane = 0;
  const int64_t max_in_flight = s.config.max_in_flight;
  int64_t last_request = now_ms();
  int64_t drain_started = 0;
  std::thread reloader;
  std::atomic<bool> reloading{false};
  for (;;) {
    Poll(items, 3);
    if (items[0].revents & ZMQ_POLLIN) {
      // Forward everything queued, without blocking on any one socket. A lone
      // request while no worker is busy is answered here instead: that saves
      // the two inproc wake-ups that dominate a light request's round trip.
      auto recv = [&](std::vector<zmq::message_t>* into) {
        for (;;) {
          into->clear();
          if (!zmq::recv_multipart(s.frontend, std::back_inserter(*into),
                                   zmq::recv_flags::dontwait))
            return false;
          if (into->size() <= kMaxFrames) return true;
          // No client of ours sends this; there is no sure way to answer it.
          s.engine->metrics().counters.Add("requests.too_many_frames");
        }
      };
      auto forward = [&](std::vector<zmq::message_t>* msg) {
        if (msg->size() < 2) return;  // no envelope: nowhere to reply
        if (in_flight >= max_in_flight) {
          // Every worker has a backlog already: say so at once rather than
          // let this one wait behind it (the client retries or sheds load).
          s.engine->metrics().counters.Add(std::string("errors.") + TAILOR_ERR_OVERLOADED);
          const std::string body = ErrorReply(
              "",
              {TAILOR_ERR_OVERLOADED, "",
               std::to_string(in_flight) + " requests are waiting for a worker; retry shortly"});
          msg->back() = zmq::message_t(body.data(), body.size());
          zmq::send_multipart(s.frontend, *msg, zmq::send_flags::dontwait);
          return;
        }
        ++in_flight;
        const uint8_t roles = s.gate.RolesOf(msg->back());
        msg->insert(msg->begin(), zmq::message_t(&roles, 1));
        s.engine->metrics().counters.Add("service.to_workers");
        zmq::send_multipart(s.backend, *msg);
      };
      if (recv(&frames)) {
        last_request = now_ms();
        std::optional<std::string> reply;
        Impl::Origin from{&frames, &lane_in, s.gate.RolesOf(frames.back())};
        if (!recv(&next) && s.config.inline_when_idle && in_flight == 0 && frames.size() >= 2)
          reply = s.Handle(std::string_view(static_cast<const char*>(frames.back().data()),
                                            frames.back().size()),
                           /*only_quick=*/true, &from);
        if (from.queued) {
          ++at_lane;
        } else if (reply) {
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
        if (frames.back().size() == 0)
          ++at_lane;  // a worker handed events to the lane
        else
          zmq::send_multipart(s.frontend, frames, zmq::send_flags::dontwait);
      }
    }
    if (items[2].revents & ZMQ_POLLIN) {
      for (int k = 0; k < 256; ++k) {
        frames.clear();
        if (!zmq::recv_multipart(s.ingest_replies, std::back_inserter(frames),
                                 zmq::recv_flags::dontwait))
          break;
        --at_lane;
        zmq::send_multipart(s.frontend, frames, zmq::send_flags::dontwait);
      }
    }
    // SIGHUP: same path as the rules.reload message, answered in the log, on
    // a thread of its own (models may load for seconds; this thread only
    // forwards). A SIGHUP during a reload waits for it, then runs.
    if (reload && !reloading.load() && reload->exchange(false)) {
      if (reloader.joinable()) reloader.join();
      reloading = true;
      reloader = std::thread([&s, &reloading] {
        std::vector<std::string> models;  // ReloadModels logs what it loaded
        std::vector<std::string> errors = s.ReloadAll(&models);
        for (const auto& e : errors) log::Warn("reload", e);
        if (!errors.empty())
          log::Error("reload",
                     std::to_string(errors.size()) + " error(s); the previous set keeps serving");
        reloading = false;
      });
    }
    if (stop->load()) {
      int64_t now = now_ms();
      if (!drain_started) {
        drain_started = now;
        log::Info("service", "shutting down: answering requests in flight");
      }
      bool quiet = now - last_request >= kQuietMs && in_flight == 0 && at_lane == 0;
      if (quiet || now - drain_started >= kDrainCapMs) break;
    }
  }
  if (reloader.joinable()) reloader.join();
  s.lane->DrainAndJoin();  // stores what the PULL socket still has
  s.workers_stop = true;
  s.outbound_stop = true;
  for (auto& t : workers) t.join();
  outbound.join();
  log::Info("service", "stopped; " + std::to_string(in_flight + at_lane) + " requests unanswered");
}

}  // namespace tailor
