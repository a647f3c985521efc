// `tailor keygen NAME`: a CURVE key pair for tailord or one of its clients.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.h"
#include "runtime.h"
#include "security/keys.h"

namespace tailor::cli {

void RegisterKeygen(CLI::App& app) {
  auto base = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>("app");
  CLI::App* k = app.add_subcommand(
      "keygen", "Write a CURVE key pair, NAME.key (secret, mode 0600) and NAME.pub");
  k->add_option("name", *base, "path and name, e.g. keys/shop-web")->required();
  k->add_option("--role", *role, "role to suggest in the clients file: app, reader or admin")
      ->check(CLI::IsMember({"app", "reader", "admin"}))
      ->capture_default_str();
  k->callback([base, role] {
    std::string err;
    const CurveKeyPair keys = GenerateCurveKeyPair();
    if (!WriteCurveKeyFiles(*base, keys, &err)) Fail(err);
    const std::string name = base->substr(base->find_last_of('/') + 1);
    std::cout << "wrote " << *base << ".key (secret) and " << *base << ".pub\n\n"
              << "For the server: security.curve.server_key: " << *base << ".key in tailor.yaml;\n"
              << "clients connect with --server-key " << *base << ".pub.\n\n"
              << "For a client: add to the clients file (security.curve.clients):\n"
              << "  - name: " << name << "\n"
              << "    key: \"" << keys.public_key << "\"\n"
              << "    roles: [" << *role << "]\n"
              << "and connect with --key " << *base << ".key.\n";
  });
}

}  // namespace tailor::cli
