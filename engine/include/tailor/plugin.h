/*
 * Tailor model plugin ABI.
 *
 * A plugin is a shared library that exports one symbol, `tailor_plugin_entry`,
 * returning a pointer to a constant `tailor_plugin_api` table. The host loads it
 * with dlopen(RTLD_NOW | RTLD_LOCAL), checks `abi_major` (must equal the host's)
 * and `struct_size` (the host reads a field only when struct_size covers it), then
 * drives the lifecycle:
 *
 *   create(config) -> [load | train] -> score* / observe* / save* -> destroy
 *
 * Rules of the boundary:
 * - Plain C: no C++ types, exceptions or cross-boundary frees. Every pointer passed
 *   in is owned by the host and valid only for the duration of the call, unless
 *   a comment says otherwise.
 * - Errors come back as a tailor_status plus a message written into a host-owned
 *   buffer `err` of `err_cap` bytes (always NUL-terminate; truncation is fine).
 * - Threading: the host may call `score` (and annotate, similarity) concurrently
 *   from several threads on one instance. Every other call (observe, train, save,
 *   load, forget, destroy) is exclusive: no other call on that instance runs at
 *   the same time. A plugin therefore needs no locks of its own if `score` only
 *   reads. A plugin that declares TAILOR_PLUGIN_CONCURRENT_OBSERVE (ABI 1.4)
 *   gets `observe` concurrently with score, annotate, similarity and other
 *   observe calls instead, and synchronises its own state: then learning from
 *   an event never makes a decision wait for the whole plugin.
 * - New fields are only ever appended (minor version bump). A removed or changed
 *   field bumps the major version, and the host refuses the plugin.
 */
#ifndef TAILOR_PLUGIN_H
#define TAILOR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TAILOR_PLUGIN_ABI_MAJOR 1
#define TAILOR_PLUGIN_ABI_MINOR 4

/* ABI 1.1: a score meaning "no opinion about this candidate". Hosts treat it
 * so only for plugins built against minor >= 1 (older ones get it clamped). */
#define TAILOR_SCORE_ABSTAIN (-2.0f)

/* The one symbol a plugin exports. */
#define TAILOR_PLUGIN_ENTRY_SYMBOL "tailor_plugin_entry"

typedef enum tailor_status {
  TAILOR_OK = 0,
  TAILOR_ERROR = 1,       /* generic failure; message in err */
  TAILOR_INVALID = 2,     /* bad config or arguments */
  TAILOR_UNSUPPORTED = 3, /* the plugin does not implement this call */
  TAILOR_NOT_FOUND = 4    /* e.g. load() of a missing model file */
} tailor_status;

typedef enum tailor_log_level {
  TAILOR_LOG_DEBUG = 0,
  TAILOR_LOG_INFO = 1,
  TAILOR_LOG_WARN = 2,
  TAILOR_LOG_ERROR = 3
} tailor_log_level;

/* Opaque handles. Distinct types so that they cannot be mixed up. */
typedef struct tailor_plugin tailor_plugin; /* a plugin instance, owned by the plugin */
typedef struct tailor_host tailor_host;     /* the host's context, owned by the host */

/* One interaction. Strings are NUL-terminated UTF-8; NULL means absent. */
typedef struct tailor_event_view {
  const char* customer_id; /* never NULL */
  const char* type;        /* view, click, add_to_cart, purchase, chat, impression, ... */
  const char* item_id;     /* NULL when the event is not about an item */
  const char* offer_id;    /* NULL when the event is not about an offer */
  int64_t ts_ms;           /* event time, milliseconds since the Unix epoch (UTC) */
  double value;            /* monetary value or 0 */
  double quantity;         /* quantity or 0 */
  const char* text;        /* chat line or search query; NULL otherwise */
} tailor_event_view;

/* One catalog item, as the host's catalog holds it. */
typedef struct tailor_item_view {
  const char* item_id;         /* never NULL */
  const char* title;           /* may be NULL */
  const char* description;     /* may be NULL */
  const char* category;        /* may be NULL */
  const char* brand;           /* may be NULL */
  double price;                /* 0 when unknown */
  const char* attributes_json; /* JSON object text, never NULL ("{}" when empty) */
} tailor_item_view;

/* One thing to score. An offer candidate has offer_id set and, when the offer
 * promotes an item or category, item_id / category set too. A product
 * recommendation candidate has offer_id NULL and item_id set. */
typedef struct tailor_candidate {
  const char* offer_id; /* may be NULL */
  const char* item_id;  /* may be NULL */
  const char* category; /* may be NULL */
} tailor_candidate;

/* The request being decided. Valid for the duration of one score() call. */
typedef struct tailor_request_view {
  const char* customer_id;  /* NULL for an anonymous or non-consenting customer */
  int known_customer;       /* 1 when the store has a profile for customer_id */
  const char* channel;      /* never NULL */
  const char* placement;    /* never NULL */
  const char* context_json; /* the request's context object as JSON text, never NULL */
  int64_t now_ms;           /* decision time, ms since the epoch */
  /* The customer's most recent events, oldest first; n_recent may be 0. */
  const tailor_event_view* recent;
  size_t n_recent;
} tailor_request_view;

typedef void (*tailor_event_cb)(void* user, const tailor_event_view* ev);
typedef void (*tailor_item_cb)(void* user, const tailor_item_view* item);

/* Services the host offers a plugin. Valid from create() until destroy(). */
typedef struct tailor_host_api {
  uint32_t struct_size; /* sizeof(tailor_host_api) as the host compiled it */
  tailor_host* host;    /* pass back to every function below */
  /* Structured log line tagged with the plugin's name. msg is copied. */
  void (*log)(tailor_host* host, tailor_log_level level, const char* msg);
  /* Calls cb for every stored event with ts_ms >= since_ms, in the order the
   * store received them (imports may interleave older timestamps).
   * Returns the number of events visited, or -1 on a store error. */
  int64_t (*for_each_event)(tailor_host* host, int64_t since_ms, tailor_event_cb cb, void* user);
  /* Calls cb for every catalog item. Returns the count, or -1 on error. */
  int64_t (*for_each_item)(tailor_host* host, tailor_item_cb cb, void* user);
  /* A directory the plugin may write model files to. Never NULL. */
  const char* data_dir;
} tailor_host_api;

typedef struct tailor_plugin_api {
  /* --- ABI 1.0 header: every version starts with these five fields. --- */
  uint32_t abi_major;   /* TAILOR_PLUGIN_ABI_MAJOR the plugin was built against */
  uint32_t abi_minor;   /* TAILOR_PLUGIN_ABI_MINOR the plugin was built against */
  uint32_t struct_size; /* sizeof(tailor_plugin_api) as the plugin compiled it */
  const char* name;     /* short identifier, e.g. "popularity"; static storage */
  const char* version;  /* plugin's own version string; static storage */

  /* Required. config_json is the plugin's `config:` block from tailor.yaml as
   * JSON text ("{}" when absent). On TAILOR_OK *out is set; on failure *out is
   * left NULL and destroy is never called. */
  tailor_status (*create)(const char* config_json, const tailor_host_api* host, tailor_plugin** out,
                          char* err, size_t err_cap);

  /* Required. Frees everything the instance owns. NULL is a no-op. */
  void (*destroy)(tailor_plugin* self);

  /* Required. Scores all n candidates of one request: writes one finite float in
   * [0, 1] (a propensity) to scores[i] for every i < n, or (ABI >= 1.1)
   * TAILOR_SCORE_ABSTAIN for a candidate the plugin has no opinion about (a
   * cold customer, an offer outside its model): that candidate's P is then the
   * weighted mean of the other plugins only. When reasons is not
   * NULL it points at n slots of reason_cap bytes each; the plugin may write a
   * short NUL-terminated explanation into reasons + i * reason_cap (leave a slot
   * untouched for no reason; the host zeroes them first). For a large
   * placement the host scores every candidate with reasons NULL (skip the work
   * of explaining when it is), then calls score again on the few candidates
   * the reply names, with reasons, and keeps only those reasons. */
  tailor_status (*score)(tailor_plugin* self, const tailor_request_view* req,
                         const tailor_candidate* candidates, size_t n, float* scores, char* reasons,
                         size_t reason_cap, char* err, size_t err_cap);

  /* Optional (NULL = not interested). Called after an event is durably stored. */
  tailor_status (*observe)(tailor_plugin* self, const tailor_event_view* ev, char* err,
                           size_t err_cap);

  /* Optional. (Re)builds the model from the store via host->for_each_event. */
  tailor_status (*train)(tailor_plugin* self, char* err, size_t err_cap);

  /* Optional. Writes / reads the model to / from a file path chosen by the host. */
  tailor_status (*save)(tailor_plugin* self, const char* path, char* err, size_t err_cap);
  tailor_status (*load)(tailor_plugin* self, const char* path, char* err, size_t err_cap);

  /* --- ABI 1.1 --- */

  /* Optional. Facts about the request's customer and context, for rules and
   * `why`: called once per request, before the rules run and possibly
   * concurrently with score (so read-only, like score). Writes a JSON object
   * text (NUL-terminated, at most out_cap bytes) into out, of the shape
   *   {"customer": {...}, "context": {...}}
   * whose members the host merges into the rules' `customer` and `ctx` tables
   * and into `why.facts`, e.g. {"customer":{"dna":{"deal_seeker":"high"}}} or
   * {"context":{"intent":"upgrade_phone","intent_confidence":0.93}}.
   * Leave out empty (the host zeroes it) when there is nothing to say. Also
   * called for a stored `chat` event, with the event's text as
   * context.message, so that journeys can trigger on context facts. */
  tailor_status (*annotate)(tailor_plugin* self, const tailor_request_view* req, char* out,
                            size_t out_cap, char* err, size_t err_cap);

  /* --- ABI 1.2 --- */

  /* Optional. How alike n items are, for diversifying a ranked list (a
   * placement with `diversity:`): writes n * n floats in [0, 1] into out,
   * row-major, out[i * n + j] being the similarity of item_ids[i] and
   * item_ids[j] (1 = interchangeable, 0 = unrelated or unknown to the plugin).
   * The host ignores the diagonal. Read-only and possibly concurrent with
   * score, like score. item_ids[i] is never NULL (an empty string for a
   * candidate that is not about an item). */
  tailor_status (*similarity)(tailor_plugin* self, const char* const* item_ids, size_t n,
                              float* out, char* err, size_t err_cap);

  /* --- ABI 1.3 --- */

  /* Optional, and required of any plugin that keeps per-customer state
   * (histories, tastes, scores by customer id). Erasure (`profile.delete`):
   * drop everything held about customer_id, so that neither score, annotate
   * nor a later save reveals it. Exclusive, like observe. The host then saves
   * the plugin's registered model again, so the file on disk forgets too. */
  tailor_status (*forget)(tailor_plugin* self, const char* customer_id, char* err, size_t err_cap);

  /* --- ABI 1.4 --- */

  /* TAILOR_PLUGIN_* bits; 0 for none. */
  uint32_t flags;
} tailor_plugin_api;

/* ABI 1.4 flag: `observe` is safe concurrently with score, annotate,
 * similarity and other observe calls (the plugin locks its own per-customer
 * state, briefly); the host then no longer takes the instance exclusively for
 * it. train, save, load, forget and destroy stay exclusive. */
#define TAILOR_PLUGIN_CONCURRENT_OBSERVE 1u

/* Smallest struct_size the host accepts for ABI 1.x: up to and including score. */
#define TAILOR_PLUGIN_API_MIN_SIZE_V1 \
  (offsetof(tailor_plugin_api, score) + sizeof(((tailor_plugin_api*)0)->score))

/* The entry point's type. The returned table must live as long as the library. */
typedef const tailor_plugin_api* (*tailor_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TAILOR_PLUGIN_H */
