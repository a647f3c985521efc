// Service counters and a lock-free latency histogram. Everything here is safe
// to update from any thread; reads are approximate while writers run.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace tailor {

// Log-linear histogram of microseconds: 8 sub-buckets per power of two, so a
// reported percentile is within ~9% of the true value. Covers 0 .. ~2^30 us.
class LatencyHistogram {
 public:
  static constexpr int kSub = 8;
  static constexpr int kBuckets = 31 * kSub;

  void Record(int64_t micros);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // q in [0, 1]; 0 when empty. Returns the bucket's upper bound.
  double Percentile(double q) const;
  double Mean() const;
  uint64_t sum_micros() const { return sum_.load(std::memory_order_relaxed); }
  // Recorded values certainly below micros: the buckets whose upper bound is
  // at most micros (a Prometheus bucket's cumulative count, rounded down).
  uint64_t CountBelow(double micros) const;

 private:
  static int Bucket(uint64_t us);
  static double UpperBound(int bucket);
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
};

// Named monotonically increasing counters ("requests.decide", "errors.bad_request").
class Counters {
 public:
  void Add(const std::string& name, uint64_t n = 1);
  uint64_t Get(const std::string& name) const;
  std::map<std::string, uint64_t> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> counters_;
};

// The stages of a decision (decision/stages.h), each timed on every decide:
// stats.latency_us.stages names where a decision's time goes.
enum class DecideStage {
  kProfile,     // experiment assignment, profile and consent
  kCandidates,  // collect candidates
  kScore,       // plugin scores and facts
  kRespond,     // P, the learned probability of response
  kJudge,       // sensitive gate, suppression, journeys, rules
  kArbitrate,   // priority and ranking
  kFinish,      // diversity, finalize hooks, the policy, explain, price
  kRecord,      // trace record, impressions, the decision log (queued)
  kCount
};
const char* DecideStageName(DecideStage stage);

struct Metrics {
  Counters counters;
  LatencyHistogram decide_us;  // server-side time from receipt to reply
  LatencyHistogram event_us;   // event receipt to durable
  std::array<LatencyHistogram, static_cast<size_t>(DecideStage::kCount)> stage_us;
};

// Marks the end of each stage of one decision, recording its time.
class StageClock {
 public:
  explicit StageClock(Metrics* m);
  void Done(DecideStage stage);

 private:
  Metrics* m_;
  int64_t t_;
};

}  // namespace tailor
