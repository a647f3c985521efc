// Per-customer journey state: which journey and stage each customer is in,
// their recent contacts, and the outbound steps waiting for their time.
//
// Storage: journey_state (one row per customer and journey, written through
// on every change) and journey_steps (scheduled outbound steps and
// inactivity timers; sent_ms stays NULL until taken, so pending steps survive
// a restart). The runtime holds no connection of its own: it reads through the
// Store and writes through the Store's writer (store/journey_rows.h), so every
// write to the store file goes through one queue, in order.
//
// Contacts are not stored separately: they are the customer's `impression`
// events that carry a channel (read from the events table when the customer
// is first loaded, then counted in memory as OnEvent sees them) plus the
// outbound steps already taken. Impressions with the same timestamp on the
// same channel are one contact (a page showing three offers contacts the
// customer once); this also keeps an event seen both by the load and by
// OnEvent from counting twice.
//
// Threads: OnEvent from the event paths, Check and StagesOf from any number of
// decision workers at once, TakeDue from one server thread. State is sharded
// by customer behind shared mutexes; Check takes a shared lock and does no
// store reads once the customer is loaded. Writes are queued to the store's
// writer under the shard lock (so in the order the changes were made) and
// waited for outside it; the writer commits them with whatever else is queued.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "journeys/journeys.h"
#include "store/store.h"

namespace tailor {

class JourneyRuntime {
 public:
  struct Options {
    // Customers kept in memory; past this an arbitrary one is dropped from its
    // shard (its state is in the store and is reloaded when needed).
    size_t max_customers = 200'000;
  };

  // store must outlive the runtime and have its writer running for changes
  // to be kept (a read-only store makes every change fail).
  static std::unique_ptr<JourneyRuntime> Create(Store& store);
  static std::unique_ptr<JourneyRuntime> Create(Store& store, const Options& options);
  ~JourneyRuntime();
  JourneyRuntime(const JourneyRuntime&) = delete;
  JourneyRuntime& operator=(const JourneyRuntime&) = delete;

  // Call after the event is durable. Counts impressions as contacts, enters
  // journeys whose entry triggers match, applies the first matching transition
  // of each journey the customer is in, persists the new state and schedules
  // the outbound steps and inactivity timers of every stage entered. The
  // event's ts_ms is the time of all of this. `category` is the category of
  // the event's item or offer (the caller knows the catalog); when empty, the
  // event's properties.category is used. Returns the first storage error.
  // category: the event's item or offer category; intent: a chat event's
  // classified intent (both may be empty; properties.category / .intent are
  // the fallbacks).
  //
  // With a batch, the writes are queued and OnEvent returns at once; the
  // batch's Wait (or its destructor) waits for all of them: one commit for a
  // batch of events rather than one each.
  class Batch;
  Status OnEvent(const Journeys& journeys, const Event& event, const std::string& category = {},
                 const std::string& intent = {}, Batch* batch = nullptr);

  class Batch {
   public:
    Batch();
    ~Batch();  // waits
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    // Until every write queued with this batch is durable; the first error.
    Status Wait();

   private:
    friend class JourneyRuntime;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };

  // Erasure, before the store's erasure is queued: drops their state from
  // memory. Their writes are already in the writer's queue, ahead of it.
  void Forget(const std::string& customer_id);

  struct Verdict {
    bool allowed = true;
    std::string reason;  // why not, when !allowed
    // The journey and stage that decided: the one that refused, or else the
    // first (in journey order) the customer is in; empty when in none.
    std::string journey, stage;
  };
  // Hot path, once per candidate: may this customer be shown this offer (or
  // item: offer_id empty) of this category on this channel now? A customer in
  // no journey is always allowed. The first call for a customer loads its
  // state (SQL); later calls only read memory. Never throws; when the state
  // cannot be loaded the candidate is allowed (journeys never block serving).
  Verdict Check(const Journeys& journeys, const std::string& customer_id,
                const std::string& channel, const std::string& offer_id,
                const std::string& category, int64_t now_ms);

  // {journey, stage} for every journey the customer is in, in journey order;
  // journeys that no longer exist in `journeys` are skipped.
  std::vector<std::pair<std::string, std::string>> StagesOf(const Journeys& journeys,
                                                            const std::string& customer_id);

  // Takes up to `max` steps due at now_ms, marks them sent and returns the
  // messages to publish, e.g.
  //   {"v":1,"type":"outbound","id":17,"customer":"c42","journey":"post_purchase",
  //    "stage":"purchase","step":"accessory_email","channel":"email",
  //    "offer":"o_accessory_addon","due":"2026-11-25T21:15:00.000Z","due_ms":...}
  // A step is cancelled instead (marked, not returned) when the customer has
  // left the journey (or, with requires_stage, the stage), the journey or step
  // no longer exists, or the customer's consent says "<channel>": false. A
  // step over a contact cap of the customer's current stage is moved to when
  // the cap frees. Inactivity timers that find the customer idle move them
  // (which may schedule more steps).
  //
  // With redeliver_after_ms > 0 each message also goes into the store's
  // outbox in the same write: it is due again at now + redeliver_after_ms
  // until a consumer acknowledges it (at least once; see Engine). With 0 it is
  // at most once: a crash after this returns and before publishing loses
  // those messages rather than sending twice.
  //
  // gate, when set, is asked about every step that passed the checks above,
  // just before it would go out: "" lets it go, anything else cancels it with
  // that reason (marked, not returned, not counted as a contact). customer is
  // the stored row read for this send, null when there is none.
  using StepGate =
      std::function<std::string(const Customer* customer, const std::string& offer_id)>;
  std::vector<std::string> TakeDue(const Journeys& journeys, int64_t now_ms, size_t max,
                                   const StepGate& gate = {}, int64_t redeliver_after_ms = 0);

  // Drops every cached customer (tests; after profile.delete the caller also
  // deletes the rows).
  void ClearCache();

 private:
  struct Impl;
  explicit JourneyRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor
