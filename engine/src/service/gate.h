// Who may talk to tailord, and what each may ask (README § Security).
//
// With security.curve configured, every socket is a CURVE server and a ZAP
// handler (a thread on inproc://zeromq.zap.01) admits only listed client
// keys; each request is then checked against the roles of the key it came
// from, looked up in the current list, so a key removed on reload loses its
// rights at its next message. Without CURVE, every endpoint must be loopback
// unless security.insecure is set, and local clients hold every role.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/status.h"
#include "config/config.h"
#include "model/api_error.h"
#include "model/types.h"
#include "security/access.h"
#include "service/protocol.h"

namespace tailor {

class Gatekeeper {
 public:
  explicit Gatekeeper(SecurityConfig config);
  ~Gatekeeper();  // stops the ZAP handler

  // Checks the endpoints against the loopback rule; with CURVE, reads the
  // server key and the client list and starts the ZAP handler on ctx. Call
  // before binding.
  Status Start(zmq::context_t* ctx, const std::vector<std::string>& endpoints);
  // Makes s a CURVE server authenticated in `domain` (no-op without CURVE).
  void Secure(zmq::socket_t* s, const char* domain) const;

  bool curve() const { return config_.curve(); }
  // The roles of whoever sent this frame (a frame received on a secured
  // socket); every role without CURVE, none for an unlisted key.
  uint8_t RolesOf(const zmq::message_t& frame) const;
  // Re-reads the client keys; on error the old list stays and the errors
  // (file:line:col) are returned.
  std::vector<std::string> Reload();
  // May a sender with these roles send this request? `forbidden` when its
  // type needs another role; `bad_request` naming the field for an event
  // whose ts lies outside the window around now (a replay), unless replays
  // are allowed or the sender is an admin.
  std::optional<ApiError> Admit(const Request& req, uint8_t roles) const;
  // One line for the start-up log.
  std::string Describe() const;

  static bool IsLoopback(const std::string& endpoint);

 private:
  std::optional<ApiError> CheckTime(const Event& ev, int64_t now_ms, const std::string& at) const;

  SecurityConfig config_;
  std::string server_public_, server_secret_;
  std::atomic<std::shared_ptr<const AccessList>> access_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> zap_ready_{false};
  std::thread zap_;
};

}  // namespace tailor
