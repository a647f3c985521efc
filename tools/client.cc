#include "client.h"

#include <zmq.hpp>

namespace tailor::cli {

struct Client::Impl {
  zmq::context_t ctx{1};
  std::string endpoint;
  int timeout_ms;
  std::unique_ptr<zmq::socket_t> sock;

  void Connect() {
    sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::req);
    sock->set(zmq::sockopt::linger, 0);
    sock->set(zmq::sockopt::rcvtimeo, timeout_ms);
    sock->set(zmq::sockopt::sndtimeo, timeout_ms);
    sock->connect(endpoint);
  }
};

Client::Client(const std::string& endpoint, int timeout_ms) : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = endpoint;
  impl_->timeout_ms = timeout_ms;
  impl_->Connect();
}

Client::~Client() = default;

std::optional<std::string> Client::Call(const std::string& body) {
  if (!impl_->sock->send(zmq::buffer(body), zmq::send_flags::none)) {
    impl_->Connect();
    return std::nullopt;
  }
  zmq::message_t reply;
  if (!impl_->sock->recv(reply)) {
    impl_->Connect();  // a REQ socket is stuck after a lost reply
    return std::nullopt;
  }
  return reply.to_string();
}

}  // namespace tailor::cli
