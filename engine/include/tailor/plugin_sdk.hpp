// A small header-only C++20 SDK for writing Tailor model plugins.
//
// The plugin author writes an ordinary class and one macro line:
//
//   class Pop {
//    public:
//     static std::unique_ptr<Pop> Create(std::string_view config_json,
//                                        const tailor::sdk::Host& host);
//     void Score(const tailor::sdk::Request& req, std::span<const tailor_candidate> candidates,
//                std::span<float> scores, tailor::sdk::Reasons& reasons) const;
//     // Optional; each one left out becomes NULL in the table:
//     void Observe(const tailor_event_view& ev);
//     void Train();
//     void Save(const std::string& path);
//     void Load(const std::string& path);
//     // ABI 1.1: facts for rules and `why`, a JSON object text
//     // {"customer":{...},"context":{...}}; "" for nothing.
//     std::string Annotate(const tailor::sdk::Request& req) const;
//     // ABI 1.2: item-item similarity in [0, 1] for diversification;
//     // out[i * n + j] for the n = items.size() ids.
//     void Similarity(std::span<const char* const> items, std::span<float> out) const;
//     // ABI 1.3: erasure; drop everything held about this customer.
//     void Forget(std::string_view customer_id);
//     // ABI 1.4: Observe locks what it changes itself (e.g. a ShardedMap
//     // from plugin_util.hpp) and may run beside Score and other Observes.
//     static constexpr bool kConcurrentObserve = true;
//   };
//   TAILOR_PLUGIN(Pop, "popularity", "1.0.0");
//
// The macro defines the exported `tailor_plugin_entry` and a constant table of C
// trampolines. Every trampoline is an exception barrier: a thrown
// sdk::InvalidConfig becomes TAILOR_INVALID, sdk::NotFound TAILOR_NOT_FOUND, any
// other std::exception TAILOR_ERROR, each with what() copied into the host's err
// buffer; anything else becomes TAILOR_ERROR "unknown exception". Nothing ever
// unwinds into the host.
//
// Threading is plugin.h's rule: Score (Annotate, Similarity) may run
// concurrently with itself; every other method runs alone, Observe too unless
// the class sets kConcurrentObserve. Keep Score read-only (declare it const)
// and do any recomputation in Observe/Train/Load.
//
// Only standard headers here, so that a plugin pays for nothing it does not use.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tailor/plugin.h"

#if defined(__GNUC__) || defined(__clang__)
#define TAILOR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TAILOR_PLUGIN_EXPORT
#endif

namespace tailor::sdk {

// Throw from Create (or Load) for a bad configuration: the host sees TAILOR_INVALID.
class InvalidConfig : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws InvalidConfig("<plugin> config: e1; e2; ...") when errors holds any,
// so that one message names every problem. `tail` (e.g. the known keys) goes
// last: a message cut at the host's error buffer loses it first.
inline void ThrowIfConfigErrors(std::string_view plugin, const std::vector<std::string>& errors,
                                std::string_view tail = {}) {
  if (errors.empty()) return;
  std::string msg = std::string(plugin) + " config: ";
  for (size_t i = 0; i < errors.size(); ++i) msg += (i ? "; " : "") + errors[i];
  msg += tail;
  throw InvalidConfig(msg);
}

// Throw from Load for a missing model file: the host sees TAILOR_NOT_FOUND.
class NotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// True when the host's table (of host_size bytes) covers field `member`.
template <typename M>
bool HostCovers(const tailor_host_api* api, const M* member) {
  const auto offset = static_cast<size_t>(reinterpret_cast<const char*>(member) -
                                          reinterpret_cast<const char*>(api));
  return api->struct_size >= offset + sizeof(M);
}

// Carries a callable and the first exception it threw across a C callback,
// which must not unwind through the host's frames.
template <typename F, typename View>
struct CallbackBox {
  F* fn;
  std::exception_ptr error;

  static void Call(void* user, const View* view) noexcept {
    auto* box = static_cast<CallbackBox*>(user);
    if (box->error || view == nullptr) return;  // after a throw, skip the rest
    try {
      (*box->fn)(*view);
    } catch (...) {
      box->error = std::current_exception();
    }
  }
};

}  // namespace detail

// The services the host offers, valid from Create until the instance is
// destroyed: the plugin may keep a reference to it. Calls on fields the host's
// table does not cover are no-ops (logging) or throw (iteration).
class Host {
 public:
  // api: owned by the host; may be null (then every call is a no-op).
  explicit Host(const tailor_host_api* api) : api_(api) {}

  // A log line tagged with the plugin's name. Never throws.
  void Log(tailor_log_level level, std::string_view msg) const noexcept {
    if (api_ == nullptr || !detail::HostCovers(api_, &api_->log) || api_->log == nullptr) return;
    try {
      const std::string text(msg);  // NUL-terminated copy
      api_->log(api_->host, level, text.c_str());
    } catch (...) {
      // Out of memory while logging: dropping the line is the only sane choice.
    }
  }

  // Calls fn(const tailor_event_view&) for every stored event with
  // ts_ms >= since_ms, oldest first. The view lives only during the call.
  // Returns the number visited; rethrows what fn threw (remaining events are
  // skipped); throws std::runtime_error when the host reports a store error.
  template <typename F>
  int64_t ForEachEvent(int64_t since_ms, F&& fn) const {
    if (api_ == nullptr) return 0;
    if (!detail::HostCovers(api_, &api_->for_each_event) || api_->for_each_event == nullptr) {
      throw std::runtime_error("host offers no for_each_event");
    }
    using Fn = std::remove_reference_t<F>;
    detail::CallbackBox<Fn, tailor_event_view> box{&fn, nullptr};
    const int64_t n = api_->for_each_event(api_->host, since_ms,
                                           &detail::CallbackBox<Fn, tailor_event_view>::Call, &box);
    if (box.error) std::rethrow_exception(box.error);
    if (n < 0) throw std::runtime_error("host for_each_event failed (store error)");
    return n;
  }

  // Calls fn(const tailor_item_view&) for every catalog item. Same rules as
  // ForEachEvent.
  template <typename F>
  int64_t ForEachItem(F&& fn) const {
    if (api_ == nullptr) return 0;
    if (!detail::HostCovers(api_, &api_->for_each_item) || api_->for_each_item == nullptr) {
      throw std::runtime_error("host offers no for_each_item");
    }
    using Fn = std::remove_reference_t<F>;
    detail::CallbackBox<Fn, tailor_item_view> box{&fn, nullptr};
    const int64_t n =
        api_->for_each_item(api_->host, &detail::CallbackBox<Fn, tailor_item_view>::Call, &box);
    if (box.error) std::rethrow_exception(box.error);
    if (n < 0) throw std::runtime_error("host for_each_item failed (store error)");
    return n;
  }

  // A directory the plugin may write model files to; "" when the host gave none.
  std::string_view DataDir() const {
    if (api_ == nullptr || !detail::HostCovers(api_, &api_->data_dir) ||
        api_->data_dir == nullptr) {
      return {};
    }
    return api_->data_dir;
  }

  const tailor_host_api* raw() const { return api_; }

 private:
  const tailor_host_api* api_;
};

// Read-only view of the request being scored; valid only during Score.
class Request {
 public:
  explicit Request(const tailor_request_view& view) : v_(view) {}

  // Empty for an anonymous or non-consenting customer.
  std::optional<std::string_view> customer_id() const {
    if (v_.customer_id == nullptr) return std::nullopt;
    return std::string_view(v_.customer_id);
  }
  bool known_customer() const { return v_.known_customer != 0; }
  std::string_view channel() const { return Str(v_.channel); }
  std::string_view placement() const { return Str(v_.placement); }
  std::string_view context_json() const {
    return v_.context_json != nullptr ? std::string_view(v_.context_json) : "{}";
  }
  int64_t now_ms() const { return v_.now_ms; }
  // The customer's most recent events, oldest first.
  std::span<const tailor_event_view> recent() const {
    if (v_.recent == nullptr) return {};
    return {v_.recent, v_.n_recent};
  }
  const tailor_request_view& raw() const { return v_; }

 private:
  static std::string_view Str(const char* s) { return s != nullptr ? s : std::string_view(); }
  const tailor_request_view& v_;
};

// The host's per-candidate reason slots. Set() is always safe: it truncates
// to the slot (on a UTF-8 character boundary), and does nothing when the host
// asked for no reasons or i is out of range.
class Reasons {
 public:
  // buf: host-owned, n slots of cap bytes each, or null for "no reasons".
  Reasons(char* buf, size_t n, size_t cap) : buf_(buf), n_(n), cap_(cap) {}

  bool enabled() const { return buf_ != nullptr && cap_ > 0; }
  // Longest text a slot holds, excluding the NUL.
  size_t max_length() const { return cap_ > 0 ? cap_ - 1 : 0; }

  void Set(size_t i, std::string_view text) {
    if (!enabled() || i >= n_) return;
    size_t len = text.size() < cap_ - 1 ? text.size() : cap_ - 1;
    if (len < text.size()) {
      // Do not cut a multi-byte character in half: back off continuation bytes.
      while (len > 0 && (static_cast<unsigned char>(text[len]) & 0xC0) == 0x80) --len;
    }
    char* slot = buf_ + i * cap_;
    std::memcpy(slot, text.data(), len);
    slot[len] = '\0';
  }

 private:
  char* buf_;
  size_t n_;
  size_t cap_;
};

namespace detail {

// Copies msg into the host's buffer, always NUL-terminated, truncating.
inline void WriteErr(char* err, size_t cap, std::string_view msg) noexcept {
  if (err == nullptr || cap == 0) return;
  const size_t len = msg.size() < cap - 1 ? msg.size() : cap - 1;
  std::memcpy(err, msg.data(), len);
  err[len] = '\0';
}

// Runs fn, translating any exception into a status and a message.
template <typename Fn>
tailor_status Guard(char* err, size_t err_cap, Fn&& fn) noexcept {
  try {
    fn();
    return TAILOR_OK;
  } catch (const InvalidConfig& e) {
    WriteErr(err, err_cap, e.what());
    return TAILOR_INVALID;
  } catch (const NotFound& e) {
    WriteErr(err, err_cap, e.what());
    return TAILOR_NOT_FOUND;
  } catch (const std::exception& e) {
    WriteErr(err, err_cap, e.what());
    return TAILOR_ERROR;
  } catch (...) {
    WriteErr(err, err_cap, "unknown exception");
    return TAILOR_ERROR;
  }
}

// Required and optional parts of a plugin class.
template <typename T>
concept Creatable = requires(std::string_view cfg, const Host& host) {
  { T::Create(cfg, host) } -> std::convertible_to<std::unique_ptr<T>>;
};
template <typename T>
concept Scorable = requires(T& t, const Request& r, std::span<const tailor_candidate> c,
                            std::span<float> s, Reasons& reasons) {
  t.Score(r, c, s, reasons);
};
template <typename T>
concept HasObserve = requires(T& t, const tailor_event_view& ev) {
  t.Observe(ev);
};
template <typename T>
concept HasTrain = requires(T& t) {
  t.Train();
};
template <typename T>
concept HasSave = requires(T& t, const std::string& path) {
  t.Save(path);
};
template <typename T>
concept HasLoad = requires(T& t, const std::string& path) {
  t.Load(path);
};
template <typename T>
concept HasAnnotate = requires(const T& t, const Request& r) {
  { t.Annotate(r) } -> std::convertible_to<std::string>;
};

template <typename T>
concept ConcurrentObserve = requires {
  { T::kConcurrentObserve } -> std::convertible_to<bool>;
}
&&T::kConcurrentObserve;

template <typename T>
concept HasForget = requires(T& t, std::string_view customer_id) {
  t.Forget(customer_id);
};
template <typename T>
concept HasSimilarity = requires(const T& t, std::span<const char* const> items,
                                 std::span<float> out) {
  t.Similarity(items, out);
};

// What a tailor_plugin* points at. The Host lives beside the instance so that
// the instance may keep a reference to it; impl is declared last so that it is
// destroyed first.
template <typename T>
struct Box {
  explicit Box(const tailor_host_api* api) : host(api) {}
  Host host;
  std::unique_ptr<T> impl;
};

template <typename T>
T& Self(tailor_plugin* self) {
  return *reinterpret_cast<Box<T>*>(self)->impl;
}

template <typename T>
struct Trampolines {
  static tailor_status Create(const char* config_json, const tailor_host_api* host,
                              tailor_plugin** out, char* err, size_t err_cap) noexcept {
    if (out == nullptr) {
      WriteErr(err, err_cap, "create: out is NULL");
      return TAILOR_INVALID;
    }
    *out = nullptr;  // the contract: left NULL on failure
    return Guard(err, err_cap, [&] {
      auto box = std::make_unique<Box<T>>(host);
      box->impl = T::Create(config_json != nullptr ? config_json : "{}", box->host);
      if (!box->impl) throw std::runtime_error("Create returned null");
      *out = reinterpret_cast<tailor_plugin*>(box.release());
    });
  }

  static void Destroy(tailor_plugin* self) noexcept {
    // A destructor that throws terminates here rather than unwinding into the host.
    delete reinterpret_cast<Box<T>*>(self);
  }

  static tailor_status Score(tailor_plugin* self, const tailor_request_view* req,
                             const tailor_candidate* candidates, size_t n, float* scores,
                             char* reasons, size_t reason_cap, char* err, size_t err_cap) noexcept {
    if (self == nullptr || req == nullptr ||
        (n > 0 && (candidates == nullptr || scores == nullptr))) {
      WriteErr(err, err_cap, "score: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] {
      const Request request(*req);
      Reasons why(reasons, n, reason_cap);
      Self<T>(self).Score(request, std::span<const tailor_candidate>(candidates, n),
                          std::span<float>(scores, n), why);
    });
  }

  static tailor_status Observe(tailor_plugin* self, const tailor_event_view* ev, char* err,
                               size_t err_cap) noexcept {
    if (self == nullptr || ev == nullptr) {
      WriteErr(err, err_cap, "observe: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] { Self<T>(self).Observe(*ev); });
  }

  static tailor_status Train(tailor_plugin* self, char* err, size_t err_cap) noexcept {
    if (self == nullptr) {
      WriteErr(err, err_cap, "train: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] { Self<T>(self).Train(); });
  }

  static tailor_status Save(tailor_plugin* self, const char* path, char* err,
                            size_t err_cap) noexcept {
    if (self == nullptr || path == nullptr) {
      WriteErr(err, err_cap, "save: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] { Self<T>(self).Save(std::string(path)); });
  }

  static tailor_status Load(tailor_plugin* self, const char* path, char* err,
                            size_t err_cap) noexcept {
    if (self == nullptr || path == nullptr) {
      WriteErr(err, err_cap, "load: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] { Self<T>(self).Load(std::string(path)); });
  }

  static tailor_status Annotate(tailor_plugin* self, const tailor_request_view* req, char* out,
                                size_t out_cap, char* err, size_t err_cap) noexcept {
    if (self == nullptr || req == nullptr || out == nullptr || out_cap == 0) {
      WriteErr(err, err_cap, "annotate: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] {
      const std::string facts = std::as_const(Self<T>(self)).Annotate(Request(*req));
      // Truncated JSON is worse than none: refuse what does not fit.
      if (facts.size() >= out_cap) throw std::length_error("annotate: facts exceed the buffer");
      std::memcpy(out, facts.data(), facts.size());
      out[facts.size()] = '\0';
    });
  }

  static tailor_status Forget(tailor_plugin* self, const char* customer_id, char* err,
                              size_t err_cap) noexcept {
    if (self == nullptr || customer_id == nullptr) {
      WriteErr(err, err_cap, "forget: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] { Self<T>(self).Forget(std::string_view(customer_id)); });
  }

  static tailor_status Similarity(tailor_plugin* self, const char* const* item_ids, size_t n,
                                  float* out, char* err, size_t err_cap) noexcept {
    if (self == nullptr || (n > 0 && (item_ids == nullptr || out == nullptr))) {
      WriteErr(err, err_cap, "similarity: NULL argument");
      return TAILOR_INVALID;
    }
    return Guard(err, err_cap, [&] {
      std::fill(out, out + n * n, 0.0f);
      std::as_const(Self<T>(self))
          .Similarity(std::span<const char* const>(item_ids, n), std::span<float>(out, n * n));
    });
  }
};

template <typename T>
constexpr tailor_plugin_api MakeApi(const char* name, const char* version) {
  static_assert(Creatable<T>,
                "a plugin class needs: static std::unique_ptr<T> Create(std::string_view, "
                "const tailor::sdk::Host&)");
  static_assert(Scorable<T>,
                "a plugin class needs: void Score(const tailor::sdk::Request&, "
                "std::span<const tailor_candidate>, std::span<float>, tailor::sdk::Reasons&)");
  using Tr = Trampolines<T>;
  tailor_plugin_api api{};
  api.abi_major = TAILOR_PLUGIN_ABI_MAJOR;
  api.abi_minor = TAILOR_PLUGIN_ABI_MINOR;
  api.struct_size = sizeof(tailor_plugin_api);
  api.name = name;
  api.version = version;
  api.create = &Tr::Create;
  api.destroy = &Tr::Destroy;
  api.score = &Tr::Score;
  if constexpr (HasObserve<T>) api.observe = &Tr::Observe;
  if constexpr (HasTrain<T>) api.train = &Tr::Train;
  if constexpr (HasSave<T>) api.save = &Tr::Save;
  if constexpr (HasLoad<T>) api.load = &Tr::Load;
  if constexpr (HasAnnotate<T>) api.annotate = &Tr::Annotate;
  if constexpr (HasSimilarity<T>) api.similarity = &Tr::Similarity;
  if constexpr (HasForget<T>) api.forget = &Tr::Forget;
  if constexpr (HasObserve<T> && ConcurrentObserve<T>)
    api.flags |= TAILOR_PLUGIN_CONCURRENT_OBSERVE;
  return api;
}

}  // namespace detail
}  // namespace tailor::sdk

// Defines the plugin's one exported symbol. Use once, at namespace scope, in
// one source file of the plugin, followed by a semicolon. name and version
// must be string literals (the table points at them).
#define TAILOR_PLUGIN(Class, name, version)                                             \
  extern "C" TAILOR_PLUGIN_EXPORT const tailor_plugin_api* tailor_plugin_entry(void) {  \
    static constexpr tailor_plugin_api kTailorPluginApi =                               \
        ::tailor::sdk::detail::MakeApi<Class>(name, version);                           \
    return &kTailorPluginApi;                                                           \
  }                                                                                     \
  static_assert(std::is_same_v<decltype(&tailor_plugin_entry), tailor_plugin_entry_fn>, \
                "tailor_plugin_entry has the wrong type")
