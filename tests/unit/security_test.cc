// The security parts that need no tailord: key files, the client list and
// its errors, the loopback rule and what each role may send.
#include <gtest/gtest.h>

#include <filesystem>

#include "security/access.h"
#include "security/keys.h"
#include "service/gate.h"
#include "support/temp_dir.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using testing::TempDir;
using testing::WriteFile;

TEST(Keys, WrittenPairReadsBackAndIsNeverOverwritten) {
  TempDir dir;
  const CurveKeyPair k = GenerateCurveKeyPair();
  ASSERT_TRUE(IsZ85Key(k.public_key));
  std::string err;
  ASSERT_TRUE(WriteCurveKeyFiles(dir.file("a"), k, &err)) << err;
  auto back = ReadCurveKeyFile(dir.file("a.key"), true, &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(back->public_key, k.public_key);
  EXPECT_EQ(back->secret_key, k.secret_key);
  auto pub = ReadCurveKeyFile(dir.file("a.pub"), false, &err);
  ASSERT_TRUE(pub) << err;
  EXPECT_TRUE(pub->secret_key.empty());
  EXPECT_FALSE(ReadCurveKeyFile(dir.file("a.pub"), true, &err)) << "a .pub has no secret";
  EXPECT_FALSE(WriteCurveKeyFiles(dir.file("a"), GenerateCurveKeyPair(), &err));
  EXPECT_NE(err.find("exists"), std::string::npos) << err;
  EXPECT_EQ(std::filesystem::status(dir.file("a.key")).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(AccessList, RolesByKeyAndErrorsWithFileLineColumn) {
  TempDir dir;
  const std::string a = GenerateCurveKeyPair().public_key, b = GenerateCurveKeyPair().public_key;
  WriteFile(dir.file("ok.yaml"), "clients:\n  - {name: shop, key: \"" + a +
                                     "\", roles: [app]}\n  - {name: ops, key: \"" + b +
                                     "\", roles: [reader, admin]}\n");
  std::vector<std::string> errors;
  auto list = AccessList::Load(dir.file("ok.yaml"), &errors);
  ASSERT_TRUE(list) << errors.front();
  EXPECT_EQ(list->RolesOf(a), kRoleApp);
  EXPECT_EQ(list->RolesOf(b), kRoleReader | kRoleAdmin);
  EXPECT_EQ(list->RolesOf(GenerateCurveKeyPair().public_key), 0);
  EXPECT_EQ(RoleNames(kRoleReader | kRoleAdmin), "reader,admin");

  WriteFile(dir.file("bad.yaml"),
            "clients:\n  - {name: shop, key: \"" + a +
                "\", roles: [app]}\n  - {name: x, key: short, roles: [root]}\n"
                "  - {name: dup, key: \"" +
                a + "\", roles: [app], extra: 1}\n");
  errors.clear();
  EXPECT_FALSE(AccessList::Load(dir.file("bad.yaml"), &errors));
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("bad.yaml:3:5: clients[1].key"), std::string::npos) << all;
  EXPECT_NE(all.find("clients[1].roles: unknown role"), std::string::npos) << all;
  EXPECT_NE(all.find("clients[2].extra: unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find("clients[2].key: listed twice"), std::string::npos) << all;
}

TEST(Gatekeeper, LoopbackRuleWithoutCurve) {
  for (const char* ep : {"tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:2",
                         "ipc:///tmp/t.sock", "inproc://x", "tcp://127.0.0.1:*"})
    EXPECT_TRUE(Gatekeeper::IsLoopback(ep)) << ep;
  for (const char* ep : {"tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://eth0:1", "tcp://10.0.0.2:3"})
    EXPECT_FALSE(Gatekeeper::IsLoopback(ep)) << ep;
  zmq::context_t ctx;
  Gatekeeper strict(SecurityConfig{});
  Status s = strict.Start(&ctx, {"tcp://127.0.0.1:1", "tcp://*:2"});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refusing to bind tcp://*:2"), std::string::npos) << s.message();
  EXPECT_TRUE(strict.Start(&ctx, {"tcp://127.0.0.1:1", "ipc:///tmp/x"}).ok());
  SecurityConfig loose;
  loose.insecure = true;
  EXPECT_TRUE(Gatekeeper(loose).Start(&ctx, {"tcp://*:2"}).ok());
}

TEST(Gatekeeper, EachRoleMaySendOnlyItsMessages) {
  SecurityConfig cfg;
  Gatekeeper gate(cfg);
  auto admit = [&](Request::Type t, uint8_t roles) {
    Request r;
    r.type = t;
    auto e = gate.Admit(r, roles);
    return e ? e->code : std::string("ok");
  };
  using T = Request::Type;
  EXPECT_EQ(admit(T::kDecide, kRoleApp), "ok");
  EXPECT_EQ(admit(T::kProfileGet, kRoleApp), TAILOR_ERR_FORBIDDEN);
  EXPECT_EQ(admit(T::kExplain, kRoleReader), "ok");
  EXPECT_EQ(admit(T::kEvent, kRoleReader), TAILOR_ERR_FORBIDDEN);
  EXPECT_EQ(admit(T::kReload, kRoleReader | kRoleApp), TAILOR_ERR_FORBIDDEN);
  EXPECT_EQ(admit(T::kProfileDelete, kRoleAdmin), "ok");
  EXPECT_EQ(admit(T::kHealth, kRoleReader), "ok");
  EXPECT_EQ(admit(T::kStats, 0), TAILOR_ERR_FORBIDDEN) << "an unlisted key may do nothing";
}

}  // namespace
}  // namespace tailor
