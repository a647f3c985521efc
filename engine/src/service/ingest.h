// The ingest lane: one thread stores every event tailord receives, the
// acknowledged ones (`event`, `events` on the request socket, handed over by
// whichever thread parsed them) and the fire-and-forget ones (PULL socket).
// Whatever is queued is stored as one group commit, so a commit's fsync is
// shared by every client that sent events meanwhile, and no decision worker
// waits on the disk: decisions never queue behind events.
//
// The lane runs at a lower CPU priority than the workers: on a busy machine
// decisions are answered first and events wait in the bounded queue; a full
// queue answers `unavailable` (retry) instead of growing.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"
#include "model/types.h"

namespace tailor {

class Engine;
class Gatekeeper;

class IngestLane {
 public:
  // Where the lane sends each acknowledged job's reply (envelope + body);
  // the server's I/O thread binds a PULL socket here.
  static constexpr const char* kReplies = "inproc://tailor-ingest-replies";

  // Events from one request: the ROUTER envelope to answer on, the request's
  // id and whether it was an `events` batch (the reply says "stored").
  struct Job {
    std::vector<zmq::message_t> envelope;
    std::string id;
    bool batch = false;
    std::vector<Event> events;  // moved into the group commit; n says how many
    size_t n = 0;
    int64_t t0_ns = 0;  // when the request arrived, for the event latency
  };

  // Hands jobs to the lane from one thread (a ZeroMQ socket per thread).
  class Submitter {
   public:
    explicit Submitter(IngestLane* lane);
    // False when the lane's queue is full: the caller answers `unavailable`.
    bool Submit(std::unique_ptr<Job> job);

   private:
    zmq::socket_t sock_;
  };

  // `pull` is the bound fire-and-forget socket; the lane's thread owns it
  // from Start on. `gate` admits (or not) each message it receives.
  IngestLane(Engine* engine, zmq::context_t* ctx, zmq::socket_t* pull, const Gatekeeper* gate,
             size_t max_message_bytes);
  ~IngestLane();

  // Stores one job's events on the calling thread and returns its reply
  // (for Server::Handle: tools and benchmarks without sockets).
  static std::string StoreNow(Engine* engine, Job job);

  void Start();
  // Stores everything queued, returns once the PULL socket has been quiet for
  // a moment (or after a cap), and joins the thread.
  void DrainAndJoin();

 private:
  void Loop();
  void TakePull(std::vector<Event>* into, size_t max);
  std::vector<std::unique_ptr<Job>> TakeJobs(std::vector<Event>* into, size_t max);
  void Answer(std::vector<std::unique_ptr<Job>> jobs, const std::vector<Status>& st);

  Engine* engine_;
  zmq::context_t* ctx_;
  zmq::socket_t* pull_;
  const Gatekeeper* gate_;
  size_t max_message_bytes_;
  zmq::socket_t jobs_;     // PULL, bound inproc: the lane's thread reads it
  zmq::socket_t replies_;  // PUSH to kReplies
  std::atomic<bool> drain_{false};
  std::atomic<int64_t> last_pull_ms_{0};
  std::thread thread_;
};

}  // namespace tailor
