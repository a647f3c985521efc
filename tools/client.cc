#include "client.h"

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "runtime.h"
#include "security/keys.h"

namespace tailor::cli {

struct Client::Impl {
  zmq::context_t ctx{1};
  std::string endpoint;
  int timeout_ms;
  CurveKeyPair mine;
  std::string server_public;
  std::unique_ptr<zmq::socket_t> sock;

  void Connect() {
    sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::req);
    sock->set(zmq::sockopt::linger, 0);
    if (!server_public.empty()) {
      sock->set(zmq::sockopt::curve_serverkey, server_public);
      sock->set(zmq::sockopt::curve_publickey, mine.public_key);
      sock->set(zmq::sockopt::curve_secretkey, mine.secret_key);
    }
    sock->set(zmq::sockopt::rcvtimeo, timeout_ms);
    sock->set(zmq::sockopt::sndtimeo, timeout_ms);
    sock->connect(endpoint);
  }
};

Client::Client(const std::string& endpoint, int timeout_ms, const ClientKeys& keys)
    : impl_(std::make_unique<Impl>()) {
  impl_->endpoint = endpoint;
  impl_->timeout_ms = timeout_ms;
  if (keys.key_file.empty() != keys.server_key_file.empty())
    Fail("--key and --server-key go together (README § Security)", 2);
  if (!keys.key_file.empty()) {
    std::string err;
    auto mine = ReadCurveKeyFile(keys.key_file, /*need_secret=*/true, &err);
    if (!mine) Fail(err, 2);
    auto server = ReadCurveKeyFile(keys.server_key_file, /*need_secret=*/false, &err);
    if (!server) Fail(err, 2);
    impl_->mine = *mine;
    impl_->server_public = server->public_key;
  }
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

void AddKeyOptions(CLI::App* app, ClientKeys* keys) {
  app->add_option("--key", keys->key_file,
                  "this client's CURVE key pair (NAME.key from `tailor keygen`), for a tailord "
                  "with security.curve");
  app->add_option("--server-key", keys->server_key_file, "the server's public key (NAME.pub)");
}

}  // namespace tailor::cli
