// Trust against a real tailord (README § Security): CURVE admits only listed
// client keys, each request is checked against its key's roles (reloadable),
// replays need an admin key, non-loopback binds need CURVE, and
// `profile.delete` leaves no byte of the customer in the store files or logs.
#include <gtest/gtest.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/time.h"
#include "security/keys.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

// A key pair written by the real `tailor keygen`.
CurveKeyPair Keygen(const TempDir& dir, const std::string& name) {
  const std::string base = dir.file(name);
  EXPECT_EQ(Shell(TailorBin() + " keygen " + base, base + ".log"), 0) << ReadFile(base + ".log");
  std::string err;
  auto k = ReadCurveKeyFile(base + ".key", true, &err);
  EXPECT_TRUE(k) << err;
  EXPECT_EQ(
      std::filesystem::status(base + ".key").permissions() & std::filesystem::perms::others_read,
      std::filesystem::perms::none)
      << "the secret key is readable by others";
  return k.value_or(CurveKeyPair{});
}

// A CURVE client socket (REQ or PUSH) with a monitor, so a test can tell a
// refused handshake from a slow one without waiting on a clock.
class SecureSocket {
 public:
  SecureSocket(zmq::socket_type type, const std::string& endpoint, const std::string& server_pub,
               const CurveKeyPair* mine)
      : sock_(ctx_, type), monitor_(ctx_, zmq::socket_type::pair) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::rcvtimeo, 10000);
    if (mine) {
      sock_.set(zmq::sockopt::curve_serverkey, server_pub);
      sock_.set(zmq::sockopt::curve_publickey, mine->public_key);
      sock_.set(zmq::sockopt::curve_secretkey, mine->secret_key);
    }
    const std::string mon = "inproc://mon-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    zmq_socket_monitor(sock_.handle(), mon.c_str(),
                       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    monitor_.set(zmq::sockopt::rcvtimeo, 15000);
    monitor_.connect(mon);
    sock_.connect(endpoint);
  }

  // The handshake's outcome: true when the server admitted this key.
  bool Admitted() {
    zmq::message_t ev, addr;
    if (!monitor_.recv(ev) || ev.size() < 2 || !monitor_.recv(addr)) {
      ADD_FAILURE() << "no handshake event";
      return false;
    }
    uint16_t kind;
    std::memcpy(&kind, ev.data(), 2);
    return kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
  }

  json Call(const json& req) {
    const std::string body = req.dump();
    sock_.send(zmq::buffer(body), zmq::send_flags::none);
    zmq::message_t reply;
    if (!sock_.recv(reply)) {
      ADD_FAILURE() << "no reply to " << body;
      return json::object();
    }
    return json::parse(reply.to_string());
  }
  void Push(const json& msg) { sock_.send(zmq::buffer(msg.dump()), zmq::send_flags::none); }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  zmq::socket_t monitor_;
};

json Msg(const std::string& type, json fields = json::object()) {
  fields["v"] = 1;
  fields["type"] = type;
  fields["id"] = type;
  return fields;
}

json Decide(const std::string& customer) {
  return Msg("decide", {{"customer", customer}, {"channel", "web"}, {"placement", "home"}});
}

std::string ErrorCode(const json& r) {
  return r.contains("error") ? r["error"].value("code", "") : "";
}

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
    server_ = Keygen(dir_, "server");
    app_ = Keygen(dir_, "app");
    reader_ = Keygen(dir_, "reader");
    admin_ = Keygen(dir_, "admin");
    stranger_ = Keygen(dir_, "stranger");
    WriteClients(
        {{"app", app_, "[app]"}, {"reader", reader_, "[reader]"}, {"admin", admin_, "[admin]"}});
    config_ = SmallConfig(dir_.path(), ShippedPluginYaml("popularity"),
                          "security:\n  curve: {server_key: server.key, clients: clients.yaml}\n");
  }

  struct Listed {
    std::string name;
    CurveKeyPair keys;
    std::string roles;
  };
  void WriteClients(const std::vector<Listed>& clients) {
    std::string text = "clients:\n";
    for (const Listed& c : clients)
      text += "  - name: " + c.name + "\n    key: \"" + c.keys.public_key +
              "\"\n    roles: " + c.roles + "\n";
    WriteFile(dir_.file("clients.yaml"), text);
  }

  TempDir dir_;
  std::string store_, config_;
  CurveKeyPair server_, app_, reader_, admin_, stranger_;
};

TEST_F(Security, CurveAdmitsListedKeysAndEachRoleOnlyItsMessages) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running());
  EXPECT_NE(d.Log().find("CURVE on"), std::string::npos) << d.Log();

  SecureSocket app(zmq::socket_type::req, d.requests(), server_.public_key, &app_);
  ASSERT_TRUE(app.Admitted());
  EXPECT_EQ(ErrorCode(app.Call(Decide("c1"))), "");
  EXPECT_EQ(
      ErrorCode(app.Call(Msg("event", {{"customer", "c1"}, {"event", "view"}, {"item", "i1"}}))),
      "");
  EXPECT_EQ(ErrorCode(app.Call(Msg("health"))), "");
  for (const char* type : {"profile.get", "profile.delete"}) {
    json r = app.Call(Msg(type, {{"customer", "c1"}}));
    EXPECT_EQ(ErrorCode(r), "forbidden") << r.dump();
    EXPECT_EQ(r["error"]["field"], "type");
  }
  EXPECT_EQ(ErrorCode(app.Call(Msg("rules.reload"))), "forbidden");
  EXPECT_EQ(ErrorCode(app.Call(Msg("explain", {{"decision", "d-1"}}))), "forbidden");

  SecureSocket reader(zmq::socket_type::req, d.requests(), server_.public_key, &reader_);
  ASSERT_TRUE(reader.Admitted());
  json profile = reader.Call(Msg("profile.get", {{"customer", "c1"}}));
  EXPECT_EQ(ErrorCode(profile), "") << profile.dump();
  EXPECT_EQ(ErrorCode(reader.Call(Decide("c1"))), "forbidden");
  EXPECT_EQ(ErrorCode(reader.Call(Msg("event", {{"customer", "c1"}, {"event", "view"}}))),
            "forbidden");

  // Not listed, or no CURVE at all: the handshake itself fails.
  SecureSocket stranger(zmq::socket_type::req, d.requests(), server_.public_key, &stranger_);
  EXPECT_FALSE(stranger.Admitted());
  SecureSocket plain(zmq::socket_type::req, d.requests(), "", nullptr);
  EXPECT_FALSE(plain.Admitted());
  // A reader may not open the events socket: events are for apps.
  SecureSocket reader_push(zmq::socket_type::push, d.events(), server_.public_key, &reader_);
  EXPECT_FALSE(reader_push.Admitted());
  SecureSocket app_push(zmq::socket_type::push, d.events(), server_.public_key, &app_);
  EXPECT_TRUE(app_push.Admitted());

  // Reload: the stranger becomes a reader; the app key is revoked and loses
  // its rights at its next message on the connection it already has.
  WriteClients({{"reader", reader_, "[reader]"},
                {"admin", admin_, "[admin]"},
                {"stranger", stranger_, "[reader]"}});
  SecureSocket admin(zmq::socket_type::req, d.requests(), server_.public_key, &admin_);
  ASSERT_TRUE(admin.Admitted());
  json reload = admin.Call(Msg("rules.reload"));
  ASSERT_EQ(ErrorCode(reload), "") << reload.dump();
  EXPECT_EQ(ErrorCode(app.Call(Decide("c1"))), "forbidden");
  SecureSocket welcome(zmq::socket_type::req, d.requests(), server_.public_key, &stranger_);
  ASSERT_TRUE(welcome.Admitted());
  EXPECT_EQ(ErrorCode(welcome.Call(Msg("profile.get", {{"customer", "c1"}}))), "");

  // A broken clients file is refused naming file:line, and the list that
  // serves stays as it was.
  WriteFile(dir_.file("clients.yaml"), "clients:\n  - name: x\n    key: nope\n    roles: [app]\n");
  reload = admin.Call(Msg("rules.reload"));
  ASSERT_EQ(ErrorCode(reload), "reload_failed") << reload.dump();
  EXPECT_NE(reload.dump().find("clients.yaml:2:"), std::string::npos) << reload.dump();
  EXPECT_EQ(ErrorCode(welcome.Call(Msg("profile.get", {{"customer", "c1"}}))), "");
}

TEST_F(Security, ReplaysNeedAnAdminKey) {
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running());
  const std::string old_ts = format_iso8601_ms(now_ms() - int64_t{30} * 86400 * 1000);
  const std::string future_ts = format_iso8601_ms(now_ms() + int64_t{3600} * 1000);
  SecureSocket app(zmq::socket_type::req, d.requests(), server_.public_key, &app_);
  ASSERT_TRUE(app.Admitted());
  json r = app.Call(Msg("event", {{"customer", "c1"}, {"event", "view"}, {"ts", old_ts}}));
  EXPECT_EQ(ErrorCode(r), "bad_request") << r.dump();
  EXPECT_EQ(r["error"]["field"], "ts");
  r = app.Call(Msg("events", {{"events",
                               {{{"customer", "c1"}, {"event", "view"}},
                                {{"customer", "c1"}, {"event", "view"}, {"ts", future_ts}}}}}));
  EXPECT_EQ(r["error"]["field"], "events[1].ts") << r.dump();
  EXPECT_EQ(ErrorCode(app.Call(Msg("event", {{"customer", "c1"}, {"event", "view"}}))), "");
  SecureSocket admin(zmq::socket_type::req, d.requests(), server_.public_key, &admin_);
  ASSERT_TRUE(admin.Admitted());
  r = admin.Call(Msg("event", {{"customer", "c1"}, {"event", "view"}, {"ts", old_ts}}));
  EXPECT_EQ(ErrorCode(r), "") << r.dump();
}

TEST_F(Security, PythonClientConnectsWithKeyFiles) {
  WriteClients({{"shop", app_, "[app, reader]"}});
  Tailord d({config_, store_, {}});
  ASSERT_TRUE(d.running());
  const std::string out = dir_.file("client.out");
  const std::string client =
      "/usr/bin/python3 " TAILOR_SOURCE_DIR "/tools/client_example.py " + d.requests() + " c3";
  EXPECT_EQ(
      Shell(client + " --key " + dir_.file("app.key") + " --server-key " + dir_.file("server.pub"),
            out),
      0)
      << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("outcomes joined to the decision"), std::string::npos)
      << ReadFile(out);
  // Without the keys the handshake fails and the client says so.
  EXPECT_NE(Shell(client, out), 0) << ReadFile(out);
  EXPECT_NE(ReadFile(out).find("no reply"), std::string::npos) << ReadFile(out);
}

TEST(SecurityBind, WithoutCurveANonLoopbackBindIsRefused) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  const std::string log = dir.file("refused.log");
  EXPECT_EQ(Shell(TailordBin() + " --store " + store +
                      " --requests tcp://0.0.0.0:0 --events tcp://127.0.0.1:0 "
                      "--outbound tcp://127.0.0.1:0 --plugin-dir " TAILOR_PLUGIN_DIR
                      " --config " TAILOR_SOURCE_DIR "/config/tailor.yaml",
                  log),
            1);
  EXPECT_NE(ReadFile(log).find("refusing to bind tcp://0.0.0.0:0 without authentication"),
            std::string::npos)
      << ReadFile(log);
}

}  // namespace
}  // namespace tailor::testing
