#include "service/gate.h"

#include <zmq_addon.hpp>

#include "common/log.h"
#include "common/time.h"
#include "security/keys.h"
#include "service/zmq_poll.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

// The host of "tcp://HOST:PORT"; "" when the endpoint is not tcp.
std::string TcpHost(const std::string& endpoint) {
  const std::string scheme = "tcp://";
  if (endpoint.rfind(scheme, 0) != 0) return "";
  std::string rest = endpoint.substr(scheme.size());
  // A connect-style "src;dest" never appears on a bind; take what is bound.
  size_t colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host;
}

std::string Short(const std::string& key) { return key.substr(0, 8) + "…"; }

}  // namespace

Gatekeeper::Gatekeeper(SecurityConfig config) : config_(std::move(config)) {}

Gatekeeper::~Gatekeeper() {
  stop_ = true;
  if (zap_.joinable()) zap_.join();
}

bool Gatekeeper::IsLoopback(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  const std::string host = TcpHost(endpoint);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status Gatekeeper::Start(zmq::context_t* ctx, const std::vector<std::string>& endpoints) {
  if (!config_.curve()) {
    if (config_.insecure) return Status::Ok();
    for (const std::string& ep : endpoints)
      if (!IsLoopback(ep))
        return Status::Error("refusing to bind " + ep +
                             " without authentication: configure security.curve (README § "
                             "Security), bind a loopback address, or set security.insecure: true");
    return Status::Ok();
  }
  std::string err;
  auto keys = ReadCurveKeyFile(config_.server_key, /*need_secret=*/true, &err);
  if (!keys) return Status::Error("security.curve.server_key: " + err);
  server_public_ = keys->public_key;
  server_secret_ = keys->secret_key;
  std::vector<std::string> errors;
  auto list = AccessList::Load(config_.clients, &errors);
  if (!list) {
    std::string msg = "security.curve.clients:";
    for (const auto& e : errors) msg += "\n  " + e;
    return Status::Error(msg);
  }
  access_.store(list);
  // Bound here, before any secured socket binds, so no handshake can happen
  // without it; the socket then moves to its thread.
  auto rep = std::make_shared<zmq::socket_t>(*ctx, zmq::socket_type::rep);
  rep->set(zmq::sockopt::linger, 0);
  try {
    rep->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::Error(std::string("cannot start the ZAP handler: ") + e.what());
  }
  zap_ = std::thread([this, rep] {
    zmq::pollitem_t items[] = {{rep->handle(), 0, ZMQ_POLLIN, 0}};
    std::vector<zmq::message_t> req;
    int64_t last_log_ms = 0;
    while (!stop_.load()) {
      PollQuietly(items, 1, std::chrono::milliseconds(100));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      req.clear();
      if (!zmq::recv_multipart(*rep, std::back_inserter(req))) continue;
      // ZAP 1.0: version, request id, domain, address, identity, mechanism,
      // then the CURVE client's 32-byte public key.
      std::string status = "400", text = "denied", user;
      if (req.size() >= 7 && req[0].to_string() == "1.0" && req[5].to_string() == "CURVE" &&
          req[6].size() == 32) {
        char z85[41];
        zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
        const std::string key = z85, domain = req[2].to_string();
        const uint8_t roles = access_.load()->RolesOf(key);
        // Events and outbound offers are for apps (and admins); any listed
        // key may open the request socket, where each message is checked.
        const bool ok = domain == "requests" ? roles != 0 : (roles & (kRoleApp | kRoleAdmin));
        if (ok) {
          status = "200", text = "OK", user = key;
        } else if (int64_t now = now_ms(); now - last_log_ms >= 1000) {
          last_log_ms = now;  // at most one line a second, whatever a flood sends
          log::Warn("security", "refused client key " + Short(key) + " on " + domain + ": " +
                                    (roles ? "its roles (" + RoleNames(roles) + ") do not allow it"
                                           : std::string("not listed")));
        }
      }
      std::vector<zmq::message_t> reply;
      reply.emplace_back("1.0", 3);
      reply.emplace_back(req.size() > 1 ? req[1].data() : nullptr,
                         req.size() > 1 ? req[1].size() : 0);
      reply.emplace_back(status.data(), status.size());
      reply.emplace_back(text.data(), text.size());
      reply.emplace_back(user.data(), user.size());
      reply.emplace_back();  // no metadata
      zmq::send_multipart(*rep, reply);
    }
  });
  return Status::Ok();
}

void Gatekeeper::Secure(zmq::socket_t* s, const char* domain) const {
  if (!config_.curve()) return;
  s->set(zmq::sockopt::curve_server, true);
  s->set(zmq::sockopt::curve_secretkey, server_secret_);
  s->set(zmq::sockopt::zap_domain, domain);
}

uint8_t Gatekeeper::RolesOf(const zmq::message_t& frame) const {
  if (!config_.curve()) return kAllRoles;
  // Set by the ZAP handler to the client's public key; absent means the
  // handshake was not authenticated, which gets no rights.
  const char* user = zmq_msg_gets(const_cast<zmq_msg_t*>(frame.handle()), "User-Id");
  if (!user || !*user) return 0;
  return access_.load()->RolesOf(user);
}

std::vector<std::string> Gatekeeper::Reload() {
  if (!config_.curve()) return {};
  std::vector<std::string> errors;
  if (auto list = AccessList::Load(config_.clients, &errors)) {
    access_.store(list);
    log::Info("security", "client keys reloaded: " + std::to_string(list->size()) + " listed");
  }
  return errors;
}

std::optional<ApiError> Gatekeeper::CheckTime(const Event& ev, int64_t now,
                                              const std::string& at) const {
  if (ev.ts_ms < now - config_.max_event_age_s * 1000)
    return ApiError{TAILOR_ERR_BAD_REQUEST, at,
                    at + " is more than " + std::to_string(config_.max_event_age_s) +
                        " s in the past (security.max_event_age_s); replays need an admin key "
                        "or security.allow_replay"};
  if (ev.ts_ms > now + config_.max_event_ahead_s * 1000)
    return ApiError{TAILOR_ERR_BAD_REQUEST, at,
                    at + " is more than " + std::to_string(config_.max_event_ahead_s) +
                        " s in the future (security.max_event_ahead_s)"};
  return std::nullopt;
}

namespace {

uint8_t RolesNeeded(Request::Type t) {
  switch (t) {
    case Request::Type::kDecide:
    case Request::Type::kEvent:
    case Request::Type::kEvents:
    case Request::Type::kOutboundAck:  // the outbound socket is the apps' too
    case Request::Type::kOutboundPending:
      return kRoleApp | kRoleAdmin;
    case Request::Type::kProfileGet:
    case Request::Type::kExplain:
      return kRoleReader | kRoleAdmin;
    case Request::Type::kReload:
    case Request::Type::kProfileDelete:
      return kRoleAdmin;
    case Request::Type::kHealth:
    case Request::Type::kStats:
      return kAllRoles;
  }
  return kRoleAdmin;
}

}  // namespace

std::optional<ApiError> Gatekeeper::Admit(const Request& req, uint8_t roles) const {
  const uint8_t needed = RolesNeeded(req.type);
  if (!(roles & needed))
    return ApiError{TAILOR_ERR_FORBIDDEN, "type",
                    "this client's roles (" + RoleNames(roles) + ") do not allow '" +
                        RequestTypeName(req.type) + "'; it needs " + RoleNames(needed)};
  // Replays need an admin *key*: a local client without CURVE holds every
  // role, but is no more trusted with history than an app.
  if (config_.allow_replay || (config_.curve() && (roles & kRoleAdmin))) return std::nullopt;
  const int64_t now = now_ms();
  if (req.type == Request::Type::kEvent) return CheckTime(req.event, now, "ts");
  if (req.type == Request::Type::kEvents)
    for (size_t i = 0; i < req.events.size(); ++i)
      if (auto e = CheckTime(req.events[i], now, "events[" + std::to_string(i) + "].ts")) return e;
  return std::nullopt;
}

std::string Gatekeeper::Describe() const {
  if (config_.curve())
    return "CURVE on, server key " + Short(server_public_) + ", " +
           std::to_string(access_.load()->size()) + " client keys (" + config_.clients + ")";
  if (config_.insecure)
    return "no authentication (security.insecure: true): anyone who can reach "
           "the sockets has every role";
  return "no authentication: local clients only (loopback), each with every role; configure "
         "security.curve to accept remote clients";
}

}  // namespace tailor
