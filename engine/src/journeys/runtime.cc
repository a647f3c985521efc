#include "journeys/runtime.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <shared_mutex>
#include <unordered_map>

#include "common/log.h"
#include "common/time.h"
#include "model/consent.h"

namespace tailor {
namespace {

constexpr size_t kShards = 64;
// Contacts older than this are neither loaded nor kept: no cap may look
// further back (journeys.cc enforces the same limit on `per`).
constexpr int64_t kContactHorizonMs = 90LL * 86'400'000;
// Stand-ins for a journey that no longer exists (no copies in ?: loops).
const std::vector<JourneyTransition> kNoTransitions;
const std::vector<JourneyStage> kNoStages;

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool Matches(const JourneyTrigger& t, const Event& e, const std::string& category,
             const std::string& intent, bool new_customer) {
  if (!Contains(t.events, e.type)) return false;
  if (!t.intents.empty() && !Contains(t.intents, intent)) return false;
  if (t.new_customer && !new_customer) return false;
  if (!t.categories.empty() && !Contains(t.categories, category)) return false;
  if (!t.items.empty() && !Contains(t.items, e.item_id)) return false;
  if (!t.offers.empty() && !Contains(t.offers, e.offer_id)) return false;
  if (!t.channels.empty() && !Contains(t.channels, e.channel)) return false;
  if (t.min_value && e.value < *t.min_value) return false;
  if (t.max_value && e.value > *t.max_value) return false;
  return true;
}

bool FromMatches(const JourneyTransition& t, int stage) {
  if (t.from.empty()) return true;
  return stage >= 0 &&
         std::find(t.from.begin(), t.from.end(), static_cast<size_t>(stage)) != t.from.end();
}

struct Membership {
  std::string journey;
  std::string stage;
  int64_t stage_entered_ms = 0;
  int64_t journey_entered_ms = 0;
  int64_t exited_ms = 0;  // 0 while in the journey
  int64_t entries = 0;
  // Outbound steps taken for this journey (channel, time): contacts that no
  // impression event records.
  std::vector<std::pair<std::string, int64_t>> sent;
};

// Contact times per channel, each sorted, so a cap is two binary searches.
struct Contacts {
  std::vector<std::pair<std::string, std::vector<int64_t>>> by_channel;
  std::vector<int64_t> all;

  static bool InsertSorted(std::vector<int64_t>* v, int64_t ts) {
    auto it = std::lower_bound(v->begin(), v->end(), ts);
    if (it != v->end() && *it == ts) return false;
    v->insert(it, ts);
    return true;
  }
  void Add(const std::string& channel, int64_t ts) {
    std::vector<int64_t>* v = nullptr;
    for (auto& [c, times] : by_channel)
      if (c == channel) v = &times;
    if (!v) v = &by_channel.emplace_back(channel, std::vector<int64_t>()).second;
    // Same channel, same instant: one contact (see runtime.h).
    if (!InsertSorted(v, ts)) return;
    all.insert(std::upper_bound(all.begin(), all.end(), ts), ts);
    // Keep memory bounded: forget what no cap can see any more.
    int64_t horizon = ts - kContactHorizonMs;
    if (!all.empty() && all.front() < horizon) {
      all.erase(all.begin(), std::lower_bound(all.begin(), all.end(), horizon));
      for (auto& [c, times] : by_channel)
        times.erase(times.begin(), std::lower_bound(times.begin(), times.end(), horizon));
    }
  }
  // The times on channel (empty: every channel) within (now - per, now].
  std::pair<const int64_t*, const int64_t*> Window(const std::string& channel, int64_t now,
                                                   int64_t per) const {
    const std::vector<int64_t>* v = channel.empty() ? &all : nullptr;
    for (const auto& [c, times] : by_channel)
      if (!v && c == channel) v = &times;
    if (!v || v->empty()) return {nullptr, nullptr};
    auto lo = std::upper_bound(v->begin(), v->end(), now - per);
    auto hi = std::upper_bound(v->begin(), v->end(), now);
    if (lo >= hi) return {nullptr, nullptr};
    return {&*lo, &*lo + (hi - lo)};
  }
};

struct CustomerState {
  std::vector<Membership> memberships;
  Contacts contacts;
  int64_t first_active_ms = 0;  // oldest event other than an impression; 0: none
  int64_t last_active_ms = 0;   // newest event other than an impression
  // Writes queued but not yet committed; such a state is never evicted, since
  // reloading it would read the store before those writes land.
  std::atomic<int> unsynced{0};

  Membership* Find(const std::string& journey) {
    for (auto& m : memberships)
      if (m.journey == journey) return &m;
    return nullptr;
  }
};

struct Shard {
  std::shared_mutex mu;
  std::unordered_map<std::string, std::shared_ptr<CustomerState>> customers;
};

using Op = JourneyWrite;

// A caller's changes on their way to the store's writer; lives on the
// caller's stack (or in a deque it owns) until the caller has seen done.
struct Pending {
  std::vector<Op> ops;
  std::shared_ptr<CustomerState> state;
  std::future<Status> written;
  Status result;
  bool done = false;
};

std::string StateData(const Membership& m) {
  nlohmann::json sent = nlohmann::json::array();
  for (const auto& [c, t] : m.sent) sent.push_back({c, t});
  return nlohmann::json{{"journey_entered_ms", m.journey_entered_ms},
                        {"exited_ms", m.exited_ms},
                        {"entries", m.entries},
                        {"sent", sent}}
      .dump();
}

Op UpsertState(const std::string& customer, const Membership& m) {
  return Op{Op::Kind::kUpsertState, customer, m.journey, m.stage, m.stage_entered_ms, StateData(m)};
}

// The cap of `stage` that `channel` would exceed at now, or null; *free_at is
// when it frees (0: never, a cap of 0).
const JourneyCap* CapReached(const JourneyStage& stage, const Contacts& contacts,
                             const std::string& channel, int64_t now, int64_t* free_at,
                             int64_t* count) {
  for (const JourneyCap& cap : stage.caps) {
    if (!cap.channel.empty() && cap.channel != channel) continue;
    auto [lo, hi] = contacts.Window(cap.channel, now, cap.per_ms);
    int64_t n = hi - lo;
    if (n < cap.max) continue;
    if (free_at) *free_at = cap.max == 0 ? 0 : lo[n - cap.max] + cap.per_ms;
    if (count) *count = n;
    return &cap;
  }
  return nullptr;
}

std::string CapText(const JourneyCap& cap) {
  return "at most " + std::to_string(cap.max) + " " +
         (cap.channel.empty() ? std::string("contacts") : cap.channel + " contacts") + " per " +
         cap.per_text;
}

}  // namespace

struct JourneyRuntime::Impl {
  Store* store = nullptr;
  Options options;
  Shard shards[kShards];

  std::mutex take_mu;  // one TakeDue at a time

  Shard& ShardOf(const std::string& customer) {
    return shards[std::hash<std::string>{}(customer) % kShards];
  }

  // Reads a customer's state (one snapshot of the store).
  Status Load(const std::string& customer, int64_t now, CustomerState* st) {
    const int64_t horizon = now - kContactHorizonMs;
    JourneyCustomerRows rows;
    if (Status s = store->LoadJourneyCustomer(customer, horizon, &rows); !s.ok()) return s;
    for (JourneyStateRow& row : rows.states) {
      Membership m;
      m.journey = std::move(row.journey);
      m.stage = std::move(row.stage);
      m.stage_entered_ms = row.entered_ms;
      {
        auto data = nlohmann::json::parse(row.data_json, nullptr, false);
        if (data.is_object()) {
          m.journey_entered_ms = data.value("journey_entered_ms", m.stage_entered_ms);
          m.exited_ms = data.value("exited_ms", int64_t{0});
          m.entries = data.value("entries", int64_t{1});
          if (auto it = data.find("sent"); it != data.end() && it->is_array()) {
            for (const auto& e : *it) {
              if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number_integer())
                continue;
              int64_t t = e[1].get<int64_t>();
              if (t <= horizon) continue;
              m.sent.emplace_back(e[0].get<std::string>(), t);
              st->contacts.Add(m.sent.back().first, t);
            }
          }
        }
      }
      st->memberships.push_back(std::move(m));
    }
    for (const auto& [channel, ts] : rows.contacts) st->contacts.Add(channel, ts);
    st->first_active_ms = rows.first_active_ms;
    st->last_active_ms = rows.last_active_ms;
    return Status::Ok();
  }

  // The customer's state, loaded if needed; the caller holds shard.mu
  // exclusively. Null (with *err) when it cannot be read.
  std::shared_ptr<CustomerState> Ensure(Shard& shard, const std::string& customer, int64_t now,
                                        Status* err) {
    if (auto it = shard.customers.find(customer); it != shard.customers.end()) return it->second;
    auto st = std::make_shared<CustomerState>();
    if (Status s = Load(customer, now, st.get()); !s.ok()) {
      *err = Status::Error("journeys: cannot load customer " + log::Customer(customer) + ": " +
                           s.message());
      return nullptr;
    }
    // Bounded memory: drop one clean customer when the shard is full.
    if (shard.customers.size() >= std::max<size_t>(1, options.max_customers / kShards)) {
      for (auto it = shard.customers.begin(); it != shard.customers.end(); ++it) {
        if (it->second->unsynced.load() == 0) {
          shard.customers.erase(it);
          break;
        }
      }
    }
    shard.customers.emplace(customer, st);
    return st;
  }

  // Hands a batch to the store's writer; call with the customer's shard lock
  // held so that writes reach the store in the order the state changed (the
  // writer's queue keeps order, and commits them with what else is queued).
  void Enqueue(Pending* p) {
    if (p->ops.empty()) {
      p->done = true;
      return;
    }
    if (p->state) p->state->unsynced.fetch_add(1);
    p->written = store->WriteJourney(std::move(p->ops));
  }

  // Waits until p is durable. Call without shard locks.
  Status Wait(Pending* p) {
    if (p->done) return p->result;
    p->result = p->written.get();
    p->done = true;
    if (p->state) p->state->unsynced.fetch_sub(1);
    if (!p->result.ok())
      log::Error("journeys", "cannot store journey state: " + p->result.message());
    return p->result;
  }

  // --- State changes (caller holds the shard lock) --------------------------

  void EnterStage(const std::string& customer, CustomerState* st, Membership* m, const Journey& j,
                  size_t stage, int64_t now, std::vector<Op>* ops) {
    const JourneyStage& s = j.stages[stage];
    m->stage = s.name;
    m->stage_entered_ms = now;
    ops->push_back(UpsertState(customer, *m));
    for (const JourneyStep& step : s.steps) {
      nlohmann::json payload = {{"kind", "step"},          {"stage", s.name},
                                {"stage_entered_ms", now}, {"channel", step.channel},
                                {"offer", step.offer},     {"requires_stage", step.requires_stage}};
      ops->push_back(Op{Op::Kind::kInsertStep, customer, j.name, step.name, now + step.delay_ms,
                        payload.dump()});
    }
    // Inactivity is checked by a timer row rather than a scan of every
    // customer: it fires once, and either moves the customer or re-arms.
    for (const JourneyTransition& t : j.transitions) {
      if (t.inactive_ms <= 0 || !FromMatches(t, static_cast<int>(stage))) continue;
      std::string to = t.exit ? std::string() : j.stages[t.to].name;
      nlohmann::json payload = {
          {"kind", "inactivity"}, {"stage", s.name}, {"stage_entered_ms", now}, {"to", to}};
      int64_t idle_since = std::max(now, st->last_active_ms);
      ops->push_back(Op{Op::Kind::kInsertStep, customer, j.name,
                        "inactive:" + (to.empty() ? std::string("exit") : to),
                        idle_since + t.inactive_ms, payload.dump()});
    }
  }

  void Enter(const std::string& customer, CustomerState* st, const Journey& j, size_t stage,
             int64_t now, std::vector<Op>* ops) {
    Membership* m = st->Find(j.name);
    if (!m) {
      st->memberships.push_back(Membership{j.name});
      m = &st->memberships.back();
    }
    m->journey_entered_ms = now;
    m->exited_ms = 0;
    m->entries += 1;
    EnterStage(customer, st, m, j, stage, now, ops);
  }

  void Exit(const std::string& customer, Membership* m, int64_t now, std::vector<Op>* ops) {
    m->exited_ms = now;
    ops->push_back(UpsertState(customer, *m));
  }
};

JourneyRuntime::JourneyRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JourneyRuntime::~JourneyRuntime() = default;

std::unique_ptr<JourneyRuntime> JourneyRuntime::Create(Store& store) {
  return Create(store, Options{});
}

std::unique_ptr<JourneyRuntime> JourneyRuntime::Create(Store& store, const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->store = &store;
  impl->options = options;
  return std::unique_ptr<JourneyRuntime>(new JourneyRuntime(std::move(impl)));
}

void JourneyRuntime::Forget(const std::string& customer_id) {
  // Every write of theirs already went to the store's writer, whose queue
  // keeps order: the erasure queued after this lands after them.
  Shard& shard = impl_->ShardOf(customer_id);
  std::unique_lock lk(shard.mu);
  shard.customers.erase(customer_id);
}

struct JourneyRuntime::Batch::Impl {
  JourneyRuntime::Impl* runtime = nullptr;
  std::deque<Pending> pendings;  // a deque: Enqueue keeps pointers to them
};

JourneyRuntime::Batch::Batch() : impl_(std::make_unique<Impl>()) {}
JourneyRuntime::Batch::~Batch() { Wait(); }

Status JourneyRuntime::Batch::Wait() {
  Status first;
  for (Pending& p : impl_->pendings) {
    Status s = impl_->runtime->Wait(&p);
    if (first.ok() && !s.ok()) first = s;
  }
  impl_->pendings.clear();
  return first;
}

Status JourneyRuntime::OnEvent(const Journeys& journeys, const Event& e,
                               const std::string& category_in, const std::string& intent_in,
                               Batch* batch) {
  if (e.customer_id.empty()) return Status::Ok();
  std::string category = category_in, intent = intent_in;
  if ((category.empty() && e.properties_json.find("category") != std::string::npos) ||
      (intent.empty() && e.properties_json.find("intent") != std::string::npos)) {
    auto props = nlohmann::json::parse(e.properties_json, nullptr, false);
    auto prop = [&](const char* key, std::string* into) {
      if (!into->empty() || !props.is_object()) return;
      if (auto it = props.find(key); it != props.end() && it->is_string())
        *into = it->get<std::string>();
    };
    prop("category", &category);
    prop("intent", &intent);
  }
  const bool contact = e.type == "impression" && !e.channel.empty();
  Pending pending;
  {
    Shard& shard = impl_->ShardOf(e.customer_id);
    std::unique_lock lk(shard.mu);
    // Nothing to track for a customer who is not loaded when there are no
    // journeys: the store has the events, a later load will see them.
    if (journeys.empty() && !shard.customers.count(e.customer_id)) return Status::Ok();
    Status err;
    auto st = impl_->Ensure(shard, e.customer_id, e.ts_ms, &err);
    if (!st) return err;
    if (contact) st->contacts.Add(e.channel, e.ts_ms);
    // New: nothing but impressions before this event (the load may already
    // include the event itself, since it is durable).
    const bool is_new = st->first_active_ms == 0 || st->first_active_ms >= e.ts_ms;
    if (e.type != "impression") {
      st->last_active_ms = std::max(st->last_active_ms, e.ts_ms);
      if (st->first_active_ms == 0 || e.ts_ms < st->first_active_ms) st->first_active_ms = e.ts_ms;
    }

    for (const Journey& j : journeys.journeys()) {
      Membership* m = st->Find(j.name);
      if (m && m->exited_ms == 0) {
        int stage = j.StageIndex(m->stage);
        for (const JourneyTransition& t : j.transitions) {
          if (!t.trigger || !FromMatches(t, stage) ||
              !Matches(*t.trigger, e, category, intent, is_new))
            continue;
          if (!t.exit && static_cast<int>(t.to) == stage) continue;  // already there
          if (t.exit)
            impl_->Exit(e.customer_id, m, e.ts_ms, &pending.ops);
          else
            impl_->EnterStage(e.customer_id, st.get(), m, j, t.to, e.ts_ms, &pending.ops);
          break;
        }
        continue;
      }
      if (m && !j.reentry) continue;  // left, and may not come back
      for (const JourneyEntry& entry : j.entries) {
        if (!Matches(entry.trigger, e, category, intent, is_new)) continue;
        impl_->Enter(e.customer_id, st.get(), j, entry.stage, e.ts_ms, &pending.ops);
        break;
      }
    }
    pending.state = st;
    if (batch) {  // the batch waits for it, with the others
      batch->impl_->runtime = impl_.get();
      Pending& queued = batch->impl_->pendings.emplace_back(std::move(pending));
      impl_->Enqueue(&queued);
      return Status::Ok();
    }
    impl_->Enqueue(&pending);
  }
  if (pending.done) return pending.result;
  return impl_->Wait(&pending);
}

JourneyRuntime::Verdict JourneyRuntime::Check(const Journeys& journeys,
                                              const std::string& customer_id,
                                              const std::string& channel,
                                              const std::string& offer_id,
                                              const std::string& category, int64_t now_ms) {
  Verdict v;
  if (journeys.empty() || customer_id.empty()) return v;
  try {
    auto judge = [&](const CustomerState& st) {
      for (const Membership& m : st.memberships) {
        if (m.exited_ms != 0) continue;
        const Journey* j = journeys.Find(m.journey);
        if (!j) continue;
        int si = j->StageIndex(m.stage);
        if (si < 0) continue;
        const JourneyStage& s = j->stages[si];
        if (v.journey.empty()) {
          v.journey = j->name;
          v.stage = s.name;
        }
        auto refuse = [&](std::string why) {
          v.allowed = false;
          v.journey = j->name;
          v.stage = s.name;
          v.reason = "journey " + j->name + ", stage " + s.name + ": " + std::move(why);
        };
        if (!s.channels.empty() && !Contains(s.channels, channel)) {
          refuse("channel " + channel + " not allowed here");
          return;
        }
        // `offers` lists offer ids, so it says nothing about items: an item
        // is held to the stage's categories only (a stage that lists only
        // offers leaves product recommendations open).
        const bool restricted =
            offer_id.empty() ? !s.categories.empty() : !s.offers.empty() || !s.categories.empty();
        if (restricted && !(!offer_id.empty() && Contains(s.offers, offer_id)) &&
            !(!category.empty() && Contains(s.categories, category))) {
          refuse(offer_id.empty()
                     ? "category " + (category.empty() ? "(none)" : category) + " not allowed here"
                     : "offer " + offer_id + " not allowed here");
          return;
        }
        int64_t n = 0;
        if (const JourneyCap* cap = CapReached(s, st.contacts, channel, now_ms, nullptr, &n)) {
          refuse("contact cap reached: " + CapText(*cap) + " (" + std::to_string(n) + " so far)");
          return;
        }
      }
    };
    Shard& shard = impl_->ShardOf(customer_id);
    {
      std::shared_lock lk(shard.mu);
      if (auto it = shard.customers.find(customer_id); it != shard.customers.end()) {
        judge(*it->second);
        return v;
      }
    }
    std::unique_lock lk(shard.mu);
    Status err;
    auto st = impl_->Ensure(shard, customer_id, now_ms, &err);
    if (!st) {
      log::Warn("journeys", err.message());
      return v;
    }
    judge(*st);
    return v;
  } catch (...) {
    // Journeys never block serving: a failure here allows the candidate.
    return Verdict{};
  }
}

std::vector<std::pair<std::string, std::string>> JourneyRuntime::StagesOf(
    const Journeys& journeys, const std::string& customer_id) {
  std::vector<std::pair<std::string, std::string>> out;
  if (customer_id.empty()) return out;
  Shard& shard = impl_->ShardOf(customer_id);
  std::unique_lock lk(shard.mu);
  Status err;
  auto st = impl_->Ensure(shard, customer_id, now_ms(), &err);
  if (!st) return out;
  for (const Journey& j : journeys.journeys()) {
    const Membership* m = st->Find(j.name);
    if (m && m->exited_ms == 0) out.emplace_back(j.name, m->stage);
  }
  return out;
}

std::vector<std::string> JourneyRuntime::TakeDue(const Journeys& journeys, int64_t now, size_t max,
                                                 const StepGate& gate, int64_t redeliver_after_ms) {
  std::vector<std::string> out;
  std::lock_guard take(impl_->take_mu);
  struct Row {
    int64_t id;
    std::string customer, journey, step;
    int64_t due;
    nlohmann::json payload;
    std::string no_consent;          // why the customer's consent refuses this step, if it does
    std::optional<Customer> stored;  // the customer's row, for the gate; none when unknown
  };
  std::vector<Row> rows;
  {
    std::vector<JourneyStepRow> due;
    if (Status s = impl_->store->DueJourneySteps(now, max, &due); !s.ok()) {
      log::Error("journeys", "cannot read due steps: " + s.message());
      return out;
    }
    for (JourneyStepRow& d : due) {
      rows.push_back(Row{d.id, std::move(d.customer_id), std::move(d.journey), std::move(d.step),
                         d.due_ms, nlohmann::json::parse(d.payload_json, nullptr, false),
                         std::string(), std::nullopt});
    }
  }
  // Consent is read fresh for each send: it may have changed since the
  // customer was loaded, and this path is not latency-critical.
  for (Row& r : rows) {
    if (!r.payload.is_object() || r.payload.value("kind", "") != "step") continue;
    r.stored = impl_->store->GetCustomer(r.customer);
    if (!r.stored) continue;
    // A journey step is contact driven by behaviour: it needs consent to
    // personalisation, to profiling and to the step's channel.
    const Consent consent = ParseConsent(r.stored->consent_json);
    const std::string channel = r.payload.value("channel", "");
    if (!consent.personalization)
      r.no_consent = "no consent for personalization";
    else if (!consent.profiling)
      r.no_consent = "no consent for profiling";
    else if (!consent.channel(channel))
      r.no_consent = "no consent for " + channel;
  }

  std::deque<Pending> pendings;
  std::vector<std::pair<Pending*, std::string>> messages;
  for (Row& r : rows) {
    Pending& p = pendings.emplace_back();
    auto finish = [&](const std::string& cancelled) {
      if (!cancelled.empty() && r.payload.is_object()) r.payload["cancelled"] = cancelled;
      p.ops.push_back(Op{Op::Kind::kFinishStep, r.customer, r.journey, r.step, now,
                         r.payload.is_object() ? r.payload.dump() : std::string("{}"), r.id});
    };
    Shard& shard = impl_->ShardOf(r.customer);
    std::unique_lock lk(shard.mu);
    Status err;
    auto st = impl_->Ensure(shard, r.customer, now, &err);
    if (!st) {  // leave the row pending; the next call retries
      log::Warn("journeys", err.message());
      p.done = true;
      continue;
    }
    p.state = st;
    const Journey* j = journeys.Find(r.journey);
    Membership* m = j ? st->Find(r.journey) : nullptr;
    std::string kind = r.payload.is_object() ? r.payload.value("kind", "") : "";
    std::string stage = r.payload.is_object() ? r.payload.value("stage", "") : "";
    int64_t entered = r.payload.is_object() ? r.payload.value("stage_entered_ms", int64_t{0}) : 0;
    bool same_visit = m && m->exited_ms == 0 && m->stage == stage && m->stage_entered_ms == entered;

    if (kind == "inactivity") {
      std::string to = r.payload.value("to", "");
      const JourneyTransition* t = nullptr;
      int si = j ? j->StageIndex(stage) : -1;
      for (const JourneyTransition& c : j ? j->transitions : kNoTransitions) {
        if (c.inactive_ms > 0 && FromMatches(c, si) &&
            (c.exit ? to.empty() : (!to.empty() && j->stages[c.to].name == to)))
          t = &c;
      }
      if (!same_visit || !t) {
        finish("obsolete");
      } else if (int64_t idle_since = std::max(st->last_active_ms, m->stage_entered_ms);
                 now < idle_since + t->inactive_ms) {
        p.ops.push_back(Op{Op::Kind::kMoveStep,
                           r.customer,
                           r.journey,
                           r.step,
                           idle_since + t->inactive_ms,
                           {},
                           r.id});  // active since: re-arm
      } else {
        finish("");
        if (t->exit)
          impl_->Exit(r.customer, m, now, &p.ops);
        else
          impl_->EnterStage(r.customer, st.get(), m, *j, t->to, now, &p.ops);
      }
    } else if (kind != "step") {
      finish("unreadable payload");
    } else {
      std::string channel = r.payload.value("channel", "");
      std::string offer = r.payload.value("offer", "");
      bool step_defined = false;
      for (const JourneyStage& s : j ? j->stages : kNoStages)
        for (const JourneyStep& step : s.steps) step_defined |= step.name == r.step;
      int si = m ? j->StageIndex(m->stage) : -1;
      int64_t free_at = 0;
      const JourneyCap* cap =
          si >= 0 ? CapReached(j->stages[si], st->contacts, channel, now, &free_at, nullptr)
                  : nullptr;
      if (!j || !step_defined) {
        finish("step no longer defined");
      } else if (!m || m->exited_ms != 0) {
        finish("customer left the journey");
      } else if (r.payload.value("requires_stage", false) && !same_visit) {
        finish("customer left stage " + stage);
      } else if (!r.no_consent.empty()) {
        finish(r.no_consent);
      } else if (std::string refused =
                     gate ? gate(r.stored ? &*r.stored : nullptr, offer) : std::string();
                 !refused.empty()) {
        finish(refused);
      } else if (cap && free_at == 0) {
        finish("contact cap: " + CapText(*cap));
      } else if (cap) {
        p.ops.push_back(Op{Op::Kind::kMoveStep, r.customer, r.journey, r.step, free_at, {}, r.id});
      } else {
        nlohmann::json msg = {{"v", 1},
                              {"type", "outbound"},
                              {"id", r.id},
                              {"customer", r.customer},
                              {"journey", r.journey},
                              {"stage", stage},
                              {"step", r.step},
                              {"channel", channel},
                              {"offer", offer},
                              {"due", format_iso8601_ms(r.due)},
                              {"due_ms", r.due}};
        finish("");
        messages.emplace_back(&p, msg.dump());
        if (redeliver_after_ms > 0) {  // into the outbox, until acknowledged
          p.ops.back().message = messages.back().second;
          p.ops.back().next_ms = now + redeliver_after_ms;
        }
        st->contacts.Add(channel, now);
        m->sent.emplace_back(channel, now);
        std::erase_if(m->sent, [&](const auto& s) { return s.second <= now - kContactHorizonMs; });
        p.ops.push_back(UpsertState(r.customer, *m));
      }
    }
    impl_->Enqueue(&p);
  }
  for (Pending& p : pendings)
    if (!p.done) impl_->Wait(&p);
  for (auto& [p, msg] : messages)
    if (p->result.ok()) out.push_back(std::move(msg));
  return out;
}

void JourneyRuntime::ClearCache() {
  for (Shard& shard : impl_->shards) {
    std::unique_lock lk(shard.mu);
    shard.customers.clear();
  }
}

}  // namespace tailor
