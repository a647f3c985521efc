// Contact policies (tailor.yaml `suppression:`) and a decide request's own
// filters (`exclude`, `include_categories`, `exclude_categories`).
//
// A policy says "after N dismissals (or N impressions without a click) of an
// offer or item within W days, this customer does not see it for D days".
// Its state per customer x offer is the customer's own event history
// (Profile::history, store.history_days of events, exact to the
// millisecond): nothing else is stored, so suppression survives a restart
// and follows late or replayed events. The D days run from the event that
// crossed the threshold: the N-th event within W days; each later event that
// again leaves N within W days starts them afresh. A click resets the
// impressions a policy counts. Suppression applies to every customer with a
// profile, personalised or not: a customer who said "not interested" is
// heard either way. An anonymous request has no history and is never
// suppressed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "model/decide_request.h"
#include "model/types.h"

namespace tailor {

// One candidate as policies and filters see it.
struct CandidateRef {
  std::string_view offer_id;  // empty for an item
  std::string_view item_id;   // the item, or the item an offer promotes (may be empty)
  std::string_view category;  // the item's, or the offer's (else its item's); may be empty
};

// Immutable once built; one per snapshot, shared by every worker.
class Suppression {
 public:
  // Checks every policy's offers against the catalog ("file:line:col:
  // suppression[i].offers: unknown offer 'x' (known: ...)"); null on error.
  static std::shared_ptr<const Suppression> Build(std::vector<SuppressionPolicy> policies,
                                                  const Catalog& catalog,
                                                  std::vector<std::string>* errors);
  explicit Suppression(std::vector<SuppressionPolicy> policies);

  struct Verdict {
    size_t policy = 0;     // index into policies()
    int64_t until_ms = 0;  // the candidate returns at this time
    std::string note;  // "suppressed by policy 'rejects': 3 dismissals within 7 days, until ..."
  };
  // The first policy (in config order) that suppresses this candidate for
  // this customer at now_ms on this placement, if any. Events after now_ms
  // are not counted (a replay at an earlier "ts" sees the past as it was).
  std::optional<Verdict> Veto(const Profile& profile, const CandidateRef& c,
                              std::string_view placement, int64_t now_ms) const;

  const std::vector<SuppressionPolicy>& policies() const { return policies_; }
  // "suppression.<name>": the counter of policy i's vetoes.
  const std::string& counter(size_t i) const { return counters_[i]; }
  bool empty() const { return policies_.empty(); }

 private:
  static bool Covers(const SuppressionPolicy& p, const CandidateRef& c, std::string_view placement);
  // When policy p's threshold was last crossed for event id `id` at or after
  // since_ms (and at or before now_ms), if it was.
  static std::optional<int64_t> Crossed(const SuppressionPolicy& p, const EventHistory& h,
                                        std::string_view id, int64_t since_ms, int64_t now_ms);

  std::vector<SuppressionPolicy> policies_;
  std::vector<std::string> counters_;
};

// One request's use of the policies: counts vetoes per policy for the
// engine's suppression.<name> counters. Not thread-safe; lives for one decide.
class SuppressionCheck {
 public:
  // suppression and profile must outlive this; profile null: anonymous (no
  // history, nothing suppressed).
  SuppressionCheck(const Suppression& suppression, const Profile* profile,
                   std::string_view placement, int64_t now_ms)
      : s_(suppression), profile_(profile), placement_(placement), now_ms_(now_ms) {}

  // The note that vetoes this candidate, or "" when no policy suppresses it.
  std::string Veto(const CandidateRef& c);
  // Vetoes per policy (index as in Suppression::policies()); empty when none.
  const std::vector<size_t>& vetoes() const { return vetoes_; }

 private:
  const Suppression& s_;
  const Profile* profile_;
  std::string_view placement_;
  int64_t now_ms_;
  std::vector<size_t> vetoes_;
};

// A decide request's filters, for one request. Holds views into the request,
// which must outlive it.
class RequestFilter {
 public:
  explicit RequestFilter(const DecideRequest& req);

  // False when the request sets no filter (nothing to check).
  bool active() const { return active_; }
  // Why the request excludes this candidate ("excluded by request: ..."), or
  // "" when it may be shown. An offer is excluded by its own id or its
  // promoted item's; by category through its category, else its item's.
  std::string Veto(const CandidateRef& c) const;

 private:
  static bool In(const std::vector<std::string_view>& sorted, std::string_view s);
  std::vector<std::string_view> exclude_, include_categories_, exclude_categories_;
  bool active_ = false;
};

}  // namespace tailor
