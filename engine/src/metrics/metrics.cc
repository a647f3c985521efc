#include "metrics/metrics.h"

#include <bit>
#include <cmath>
#include <memory>

#include "common/time.h"

namespace tailor {

int LatencyHistogram::Bucket(uint64_t us) {
  if (us < kSub) return static_cast<int>(us);
  int exp = std::bit_width(us) - 1;  // us in [2^exp, 2^(exp+1))
  int sub = static_cast<int>((us >> (exp - 3)) & (kSub - 1));
  int b = (exp - 2) * kSub + sub;
  return b < kBuckets ? b : kBuckets - 1;
}

double LatencyHistogram::UpperBound(int b) {
  if (b < kSub) return b;
  int exp = b / kSub + 2;
  int sub = b % kSub;
  return std::ldexp(1.0, exp) * (1.0 + (sub + 1) / static_cast<double>(kSub));
}

void LatencyHistogram::Record(int64_t micros) {
  uint64_t us = micros < 0 ? 0 : static_cast<uint64_t>(micros);
  buckets_[Bucket(us)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(us, std::memory_order_relaxed);
}

double LatencyHistogram::Percentile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b].load(std::memory_order_relaxed);
    if (seen >= rank) return UpperBound(b);
  }
  return UpperBound(kBuckets - 1);
}

uint64_t LatencyHistogram::CountBelow(double micros) const {
  uint64_t n = 0;
  for (int b = 0; b < kBuckets && UpperBound(b) <= micros; ++b)
    n += buckets_[static_cast<size_t>(b)].load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::Mean() const {
  uint64_t n = count();
  return n ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n)
           : 0.0;
}

void Counters::Add(const std::string& name, uint64_t n) {
  std::lock_guard lock(mu_);
  auto& c = counters_[name];
  if (!c) c = std::make_unique<std::atomic<uint64_t>>(0);
  c->fetch_add(n, std::memory_order_relaxed);
}

uint64_t Counters::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = counters_.find(name);
  return it == counters_.end() ? 0 : it->second->load(std::memory_order_relaxed);
}

std::map<std::string, uint64_t> Counters::Snapshot() const {
  std::lock_guard lock(mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [k, v] : counters_) out[k] = v->load(std::memory_order_relaxed);
  return out;
}

const char* DecideStageName(DecideStage stage) {
  switch (stage) {
    case DecideStage::kProfile:
      return "profile";
    case DecideStage::kCandidates:
      return "candidates";
    case DecideStage::kScore:
      return "score";
    case DecideStage::kRespond:
      return "respond";
    case DecideStage::kJudge:
      return "judge";
    case DecideStage::kArbitrate:
      return "arbitrate";
    case DecideStage::kFinish:
      return "finish";
    case DecideStage::kRecord:
      return "record";
    case DecideStage::kCount:
      break;
  }
  return "unknown";
}

StageClock::StageClock(Metrics* m) : m_(m), t_(mono_ns()) {}

void StageClock::Done(DecideStage stage) {
  const int64_t now = mono_ns();
  m_->stage_us[static_cast<size_t>(stage)].Record((now - t_) / 1000);
  t_ = now;
}

}  // namespace tailor
