// A built plugin driven through its api table directly, for calls the host
// does not make yet (ABI 1.1 annotate): dlopen, the entry symbol, create with
// a host api backed by a Store, then train / load / annotate. Log lines are
// kept so that tests can read the plugin's training report.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "plugin_test_util.h"
#include "store/store.h"
#include "tailor/plugin.h"

namespace tailor::testing {

class DirectPlugin {
 public:
  // Null (with *err set) when the library, its entry or create fails.
  static std::unique_ptr<DirectPlugin> Open(const std::string& path, const std::string& config,
                                            Store* store, const std::string& data_dir,
                                            std::string* err) {
    std::unique_ptr<DirectPlugin> p(new DirectPlugin());
    p->store_ = store;
    p->data_dir_ = data_dir;
    p->handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (p->handle_ == nullptr) {
      *err = dlerror();
      return nullptr;
    }
    auto entry =
        reinterpret_cast<tailor_plugin_entry_fn>(dlsym(p->handle_, TAILOR_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr || (p->api_ = entry()) == nullptr) {
      *err = "no entry symbol in " + path;
      return nullptr;
    }
    p->host_api_.struct_size = sizeof(tailor_host_api);
    p->host_api_.host = reinterpret_cast<tailor_host*>(p.get());
    p->host_api_.log = &Log;
    p->host_api_.for_each_event = &ForEachEvent;
    p->host_api_.for_each_item = &ForEachItem;
    p->host_api_.data_dir = p->data_dir_.c_str();
    char buf[4096] = {};
    if (p->api_->create(config.c_str(), &p->host_api_, &p->self_, buf, sizeof buf) != TAILOR_OK) {
      *err = buf;
      return nullptr;
    }
    return p;
  }

  ~DirectPlugin() {
    if (self_ != nullptr) api_->destroy(self_);
    if (handle_ != nullptr) dlclose(handle_);
  }
  DirectPlugin(const DirectPlugin&) = delete;
  DirectPlugin& operator=(const DirectPlugin&) = delete;

  const tailor_plugin_api& api() const { return *api_; }
  const std::vector<std::string>& log() const { return log_; }

  // TAILOR_OK, or the status with its message in *err.
  tailor_status Train(std::string* err = nullptr) {
    char buf[4096] = {};
    const tailor_status s = api_->train(self_, buf, sizeof buf);
    if (err) *err = buf;
    return s;
  }
  tailor_status LoadModel(const std::string& path, std::string* err = nullptr) {
    char buf[4096] = {};
    const tailor_status s = api_->load(self_, path.c_str(), buf, sizeof buf);
    if (err) *err = buf;
    return s;
  }
  // Calls annotate with a zeroed buffer of out_cap bytes, as the host does.
  tailor_status Annotate(const tailor_request_view& req, std::string* out,
                         std::string* err = nullptr, size_t out_cap = 8192) {
    std::vector<char> buf(out_cap, '\0');
    char ebuf[4096] = {};
    const tailor_status s = api_->annotate(self_, &req, buf.data(), out_cap, ebuf, sizeof ebuf);
    out->assign(buf.data(), strnlen(buf.data(), out_cap));
    if (err) *err = ebuf;
    return s;
  }

 private:
  DirectPlugin() = default;

  static DirectPlugin* Self(tailor_host* h) { return reinterpret_cast<DirectPlugin*>(h); }
  static void Log(tailor_host* h, tailor_log_level, const char* msg) {
    Self(h)->log_.emplace_back(msg);
  }
  static int64_t ForEachEvent(tailor_host* h, int64_t since_ms, tailor_event_cb cb, void* user) {
    Store* store = Self(h)->store_;
    if (store == nullptr) return 0;
    return store->ForEachEvent(since_ms, [&](const Event& e) {
      const tailor_event_view v = ViewOf(e);
      cb(user, &v);
      return true;
    });
  }
  static int64_t ForEachItem(tailor_host* h, tailor_item_cb cb, void* user) {
    Store* store = Self(h)->store_;
    if (store == nullptr) return 0;
    int64_t n = 0;
    for (const Item& it : store->LoadItems()) {
      auto opt = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
      const tailor_item_view v{
          it.id.c_str(), opt(it.title), opt(it.description),       opt(it.category),
          opt(it.brand), it.price,      it.attributes_json.c_str()};
      cb(user, &v);
      ++n;
    }
    return n;
  }

  void* handle_ = nullptr;
  const tailor_plugin_api* api_ = nullptr;
  tailor_plugin* self_ = nullptr;
  tailor_host_api host_api_{};
  Store* store_ = nullptr;
  std::string data_dir_;
  std::vector<std::string> log_;
};

}  // namespace tailor::testing
