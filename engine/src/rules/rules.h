// Marketer rules in sandboxed Lua 5.4.
//
// A rule file declares rules:
//
//   rule {
//     name = "no_repeat_purchase",
//     description = "never offer what the customer just bought",
//     eligible = function(offer, customer, ctx) ... return false, "bought 2 days ago" end,
//     score    = function(offer, p, customer, ctx) return 1.3, "night owl" end,  -- lever L
//     finalize = function(offers, customer, ctx) return offers end,           -- reorder/trim
//   }
//
// RuleSet: the checked sources of one reloadable snapshot; immutable and shared.
// RuleRuntime: one Lua state per worker thread built from a RuleSet and a
// catalog; offer tables are built once per state, the customer and context
// tables once per request, so the per-candidate cost is one function call.
//
// Sandbox (sandbox.h, libs.h, pattern.h): only base (minus load, loadfile,
// dofile, require, collectgarbage, print, raw*, get/setmetatable, _G), string
// (minus dump), table, math, utf8, history, all read-only; a per-file
// environment where reading or writing an undeclared global is an error; text
// chunks only; an instruction budget and a deadline per call enforced by a
// count hook that keeps firing until the rule is out (so pcall cannot swallow
// it) and charged by every library function for its work in C (pattern
// matching step by step); a memory cap per call and per state in a custom
// allocator; a time budget per request; every entry into Lua protected.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"

struct lua_State;

namespace tailor {

struct Catalog;
struct Profile;

struct RuleLimits {
  int64_t instructions = 1'000'000;  // per hook call
  int64_t time_us = 5'000;           // per hook call
  size_t call_memory = 4 << 20;      // growth allowed during one call
  size_t state_memory = 64 << 20;    // the whole state
  // Rule time of one whole request (every hook over every candidate, and
  // finalize); past it the remaining hooks are skipped for that request.
  int64_t request_time_us = 20'000;
};

struct RuleCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> vetoes{0};
  std::atomic<uint64_t> levers{0};    // score hooks that changed L
  std::atomic<uint64_t> errors{0};    // runtime errors and bad return values
  std::atomic<uint64_t> timeouts{0};  // instruction budget or deadline
  std::atomic<uint64_t> memory{0};    // memory cap hit
};

// Per rule set, not per rule: requests whose rules could not all run.
struct RuleRequestCounters {
  std::atomic<uint64_t> deadlines{0};     // request rule time spent, hooks skipped
  std::atomic<uint64_t> build_errors{0};  // customer/ctx tables not built: no rules ran
};

struct RuleInfo {
  std::string name;
  std::string description;
  std::string file;
  int line = 0;
  bool eligible = false, score = false, finalize = false;
};

class RuleSet {
 public:
  // Loads every *.lua in dir (sorted by name), compiles and declares each in a
  // throwaway sandbox. Errors read "file:line: message". Returns null on error.
  static std::shared_ptr<const RuleSet> Load(const std::string& dir, const RuleLimits& limits,
                                             std::vector<std::string>* errors);
  // From in-memory sources (tests): {file name, text}.
  static std::shared_ptr<const RuleSet> FromSources(
      const std::vector<std::pair<std::string, std::string>>& sources, const RuleLimits& limits,
      std::vector<std::string>* errors);

  const std::vector<RuleInfo>& rules() const { return rules_; }
  const RuleLimits& limits() const { return limits_; }
  RuleCounters& counters(size_t rule) const { return counters_[rule]; }
  RuleRequestCounters& request_counters() const { return *request_counters_; }
  const std::vector<std::pair<std::string, std::string>>& sources() const { return sources_; }

 private:
  std::vector<std::pair<std::string, std::string>> sources_;
  std::vector<RuleInfo> rules_;
  RuleLimits limits_;
  std::unique_ptr<RuleCounters[]> counters_;
  std::unique_ptr<RuleRequestCounters> request_counters_ = std::make_unique<RuleRequestCounters>();
};

// The request as rules see it. Pointers live for the request.
struct RuleRequest {
  const Profile* profile = nullptr;  // null for anonymous
  bool personalised = false;
  std::string customer_id;
  std::string channel, placement;
  std::string context_json = "{}";
  int64_t now_ms = 0;
  // Per-candidate plugin scores, plugin-major ([k * n + i]); names by k.
  const std::vector<std::string>* plugin_names = nullptr;
  const float* plugin_scores = nullptr;
  const std::vector<bool>* plugin_ok = nullptr;
  size_t n_candidates = 0;
  // Plugins' facts {"customer":{...},"context":{...}} merged into the
  // customer and ctx tables where those have no such key (may be null).
  const nlohmann::json* facts = nullptr;
};

// What the rules did to one candidate.
struct RuleEffect {
  bool vetoed = false;
  double levers = 1.0;
  // One line per rule that had an opinion or failed: "rule: reason".
  std::vector<std::string> reasons;
};

class RuleRuntime {
 public:
  RuleRuntime(std::shared_ptr<const RuleSet> rules, std::shared_ptr<const Catalog> catalog);
  ~RuleRuntime();
  RuleRuntime(const RuleRuntime&) = delete;
  RuleRuntime& operator=(const RuleRuntime&) = delete;

  const RuleSet* rules() const { return rules_.get(); }
  const Catalog* catalog() const { return catalog_.get(); }
  bool ok() const { return L_ != nullptr; }

  // Builds the customer and context tables for one request.
  void Begin(const RuleRequest& req);
  // Runs every eligible hook, then (unless vetoed) every score hook, for one
  // candidate: an offer (offer_index into catalog->offers) or an item
  // (item_index into catalog->items; offer_index < 0). p is the blended P.
  RuleEffect Evaluate(size_t candidate, int offer_index, int item_index, double p);
  struct Ranked {
    size_t candidate;
    std::string id;
    double priority;
    std::string category;  // may be empty
  };
  // Runs finalize hooks over the ranked list (best first); a hook may return
  // a reordered subset of ids. notes gets one line per hook that acted.
  void Finalize(std::vector<Ranked>* ranked, std::vector<std::string>* notes);
  void End();

  size_t memory_used() const;

 private:
  bool PushCandidate(int offer_index, int item_index, std::string* error);
  void ChargeRequestTime(int64_t ns);
  void ApplyFinalize(const std::string& name, std::vector<Ranked>* ranked,
                     std::vector<std::string>* notes, std::string* error);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const RuleSet> rules_;
  std::shared_ptr<const Catalog> catalog_;
  lua_State* L_ = nullptr;
};

}  // namespace tailor
