#include "service/ingest.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <zmq_addon.hpp>

#include "common/log.h"
#include "common/thread_priority.h"
#include "common/time.h"
#include "decision/engine.h"
#include "service/gate.h"
#include "service/protocol.h"
#include "service/zmq_poll.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

constexpr const char* kJobs = "inproc://tailor-ingest-jobs";
// Jobs queued per submitting thread (each up to kMaxBatchEvents events), on
// either side of the inproc pipe.
constexpr int kJobsHwm = 32;
// Events stored by one group commit at most; more wait for the next.
constexpr size_t kMaxGroup = 4096;
constexpr size_t kMaxPullPerRound = 1024;
// Below the workers: CFS gives a thread at nice 10 about a ninth of a core
// that a worker also wants, and all of an idle one.
constexpr int kNice = 10;
constexpr int64_t kQuietMs = 200;
constexpr int64_t kDrainCapMs = 5000;

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The reply to one acknowledged request, from its events' statuses.
std::string JobReply(const IngestLane::Job& job, const Status* st, Metrics& m) {
  const size_t n = job.n;
  size_t failed = 0, first = n;
  for (size_t i = 0; i < n; ++i)
    if (!st[i].ok()) {
      ++failed;
      first = std::min(first, i);
    }
  if (failed) {
    m.counters.Add(std::string("errors.") + TAILOR_ERR_INTERNAL);
    if (!job.batch)
      return ErrorReply(job.id, {TAILOR_ERR_INTERNAL, "", "event not stored: " + st[0].message()});
    // The client resends the batch.
    const std::string at = "events[" + std::to_string(first) + "]";
    return ErrorReply(job.id, {TAILOR_ERR_INTERNAL, at,
                               std::to_string(failed) + " of " + std::to_string(n) +
                                   " events not stored; first " + at + ": " + st[first].message()});
  }
  nlohmann::json ok = {{"v", TAILOR_SCHEMA_VERSION}, {"id", job.id}, {"ok", true}};
  if (job.batch) ok["stored"] = n;
  return Dump(ok);
}

}  // namespace

IngestLane::Submitter::Submitter(IngestLane* lane) : sock_(*lane->ctx_, zmq::socket_type::push) {
  sock_.set(zmq::sockopt::sndhwm, kJobsHwm);
  sock_.set(zmq::sockopt::linger, 0);
  sock_.connect(kJobs);
}

bool IngestLane::Submitter::Submit(std::unique_ptr<Job> job) {
  Job* raw = job.get();
  // The pointer travels; the lane's thread takes ownership on receipt.
  if (!sock_.send(zmq::buffer(&raw, sizeof raw), zmq::send_flags::dontwait)) return false;
  job.release();
  return true;
}

IngestLane::IngestLane(Engine* engine, zmq::context_t* ctx, zmq::socket_t* pull,
                       const Gatekeeper* gate, size_t max_message_bytes)
    : engine_(engine),
      ctx_(ctx),
      pull_(pull),
      gate_(gate),
      max_message_bytes_(max_message_bytes),
      jobs_(*ctx, zmq::socket_type::pull),
      replies_(*ctx, zmq::socket_type::push) {
  jobs_.set(zmq::sockopt::rcvhwm, kJobsHwm);
  jobs_.set(zmq::sockopt::linger, 0);
  jobs_.bind(kJobs);
  replies_.set(zmq::sockopt::linger, 0);
  replies_.connect(kReplies);
}

IngestLane::~IngestLane() {
  if (thread_.joinable()) DrainAndJoin();
  // Jobs never taken (only after the drain cap): free them.
  zmq::message_t msg;
  while (jobs_.recv(msg, zmq::recv_flags::dontwait))
    if (msg.size() == sizeof(Job*)) {
      Job* raw;
      std::memcpy(&raw, msg.data(), sizeof raw);
      delete raw;
    }
}

std::string IngestLane::StoreNow(Engine* engine, Job job) {
  job.n = job.events.size();
  std::vector<Status> st = engine->IngestEvents(std::move(job.events));
  engine->metrics().event_us.Record((mono_ns() - job.t0_ns) / 1000);
  return JobReply(job, st.data(), engine->metrics());
}

void IngestLane::Start() {
  last_pull_ms_ = now_ms();
  thread_ = std::thread([this] { Loop(); });
}

void IngestLane::DrainAndJoin() {
  drain_ = true;
  if (thread_.joinable()) thread_.join();
}

// Fire-and-forget events: parsed here; a bad one is counted and logged, as
// there is no way to answer it.
void IngestLane::TakePull(std::vector<Event>* into, size_t max) {
  Metrics& m = engine_->metrics();
  for (size_t taken = 0; taken < kMaxPullPerRound && into->size() < max; ++taken) {
    zmq::message_t msg;
    if (!pull_->recv(msg, zmq::recv_flags::dontwait)) break;
    last_pull_ms_ = now_ms();
    m.counters.Add("requests.event_push");
    std::string_view body(static_cast<const char*>(msg.data()), msg.size());
    std::string id;
    ApiError err;
    auto parsed = ParseRequest(body, max_message_bytes_, &id);
    if (auto* e = std::get_if<ApiError>(&parsed)) {
      err = *e;
    } else if (auto refused = gate_->Admit(std::get<Request>(parsed), gate_->RolesOf(msg))) {
      err = *refused;
    } else if (Request& req = std::get<Request>(parsed); req.type == Request::Type::kEvent) {
      into->push_back(std::move(req.event));
      continue;
    } else if (req.type == Request::Type::kEvents) {
      for (Event& ev : req.events) into->push_back(std::move(ev));
      continue;
    } else {
      err = {TAILOR_ERR_BAD_REQUEST, "type",
             "only event and events messages are accepted on this socket"};
    }
    m.counters.Add("errors." + err.code);
    log::Warn("events", "rejected event" + (id.empty() ? "" : " '" + id + "'") + ": " + err.field +
                            ": " + err.message);
  }
}

std::vector<std::unique_ptr<IngestLane::Job>> IngestLane::TakeJobs(std::vector<Event>* into,
                                                                   size_t max) {
  std::vector<std::unique_ptr<Job>> jobs;
  while (into->size() < max) {
    zmq::message_t msg;
    if (!jobs_.recv(msg, zmq::recv_flags::dontwait)) break;
    if (msg.size() != sizeof(Job*)) continue;
    Job* raw;
    std::memcpy(&raw, msg.data(), sizeof raw);
    std::unique_ptr<Job>& job = jobs.emplace_back(raw);
    job->n = job->events.size();
    into->insert(into->end(), std::make_move_iterator(job->events.begin()),
                 std::make_move_iterator(job->events.end()));
    job->events.clear();
  }
  return jobs;
}

void IngestLane::Answer(std::vector<std::unique_ptr<Job>> jobs, const std::vector<Status>& st) {
  Metrics& m = engine_->metrics();
  size_t at = 0;
  for (auto& job : jobs) {
    std::string reply = JobReply(*job, st.data() + at, m);
    at += job->n;
    m.event_us.Record((mono_ns() - job->t0_ns) / 1000);
    job->envelope.emplace_back(reply.data(), reply.size());
    zmq::send_multipart(replies_, job->envelope);
  }
}

// One group is committed by the store's writer while the group before it is
// applied here (caches, journeys, plugins) and answered: the two halves of
// ingesting overlap on two cores.
void IngestLane::Loop() {
  LowerThisThreadsPriority(kNice, "events");
  zmq::pollitem_t items[] = {{pull_->handle(), 0, ZMQ_POLLIN, 0},
                             {jobs_.handle(), 0, ZMQ_POLLIN, 0}};
  struct Group {
    std::unique_ptr<Engine::QueuedEvents> queued;
    std::vector<std::unique_ptr<Job>> jobs;
  };
  Group applying;  // empty while queued is null
  int64_t drain_started = 0;
  std::vector<Event> events;
  for (;;) {
    // With a group waiting to be applied, only look for more to overlap it.
    PollQuietly(items, 2, std::chrono::milliseconds(applying.queued ? 0 : 50));
    events.clear();
    // Acknowledged jobs first (a client waits on each), then the PULL
    // socket's events fill the same commit.
    Group next;
    next.jobs = TakeJobs(&events, kMaxGroup);
    TakePull(&events, kMaxGroup);
    // (A job always holds events; should one not, it is still answered.)
    if (!events.empty() || !next.jobs.empty())
      next.queued = engine_->QueueEvents(std::move(events));
    if (applying.queued)
      Answer(std::move(applying.jobs), engine_->ApplyEvents(std::move(applying.queued)));
    applying = std::move(next);
    if (drain_.load() && !applying.queued) {
      const int64_t now = now_ms();
      if (!drain_started) drain_started = now;
      const bool quiet = now - last_pull_ms_.load() >= kQuietMs && !(items[1].revents & ZMQ_POLLIN);
      if (quiet || now - drain_started >= kDrainCapMs) return;
    }
  }
}

}  // namespace tailor
