#include "security/access.h"

#include <yaml-cpp/yaml.h>

#include "security/keys.h"

namespace tailor {

std::string RoleNames(uint8_t roles) {
  std::string out;
  auto add = [&](uint8_t bit, const char* name) {
    if (!(roles & bit)) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(kRoleApp, "app");
  add(kRoleReader, "reader");
  add(kRoleAdmin, "admin");
  return out.empty() ? "none" : out;
}

namespace {

std::string At(const std::string& path, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return path;
  return path + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

uint8_t ParseRole(const std::string& name) {
  if (name == "app") return kRoleApp;
  if (name == "reader") return kRoleReader;
  if (name == "admin") return kRoleAdmin;
  return 0;
}

}  // namespace

std::shared_ptr<const AccessList> AccessList::Load(const std::string& path,
                                                   std::vector<std::string>* errors) {
  const size_t before = errors->size();
  auto list = std::make_shared<AccessList>();
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    errors->push_back(path + ": cannot read the client keys file");
    return nullptr;
  } catch (const YAML::Exception& e) {
    errors->push_back(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
    return nullptr;
  }
  YAML::Node clients = root.IsMap() ? root["clients"] : YAML::Node();
  if (!clients || !clients.IsSequence()) {
    errors->push_back(At(path, root) + ": clients: expected a list of {name, key, roles}");
    return nullptr;
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    const YAML::Node c = clients[i];
    const std::string where = At(path, c) + ": clients[" + std::to_string(i) + "]";
    if (!c.IsMap()) {
      errors->push_back(where + ": expected a map with name, key and roles");
      continue;
    }
    for (const auto& kv : c) {
      const std::string k = kv.first.as<std::string>();
      if (k != "name" && k != "key" && k != "roles")
        errors->push_back(At(path, kv.first) + ": clients[" + std::to_string(i) + "]." + k +
                          ": unknown key (expected name, key, roles)");
    }
    Client client;
    std::string key;
    if (c["name"] && c["name"].IsScalar()) client.name = c["name"].as<std::string>();
    if (c["key"] && c["key"].IsScalar()) key = c["key"].as<std::string>();
    if (client.name.empty()) errors->push_back(where + ".name: required");
    if (!IsZ85Key(key))
      errors->push_back(where + ".key: expected a public key of 40 Z85 characters (NAME.pub)");
    const YAML::Node roles = c["roles"];
    if (!roles || !roles.IsSequence() || roles.size() == 0) {
      errors->push_back(where + ".roles: expected a list of app, reader, admin");
    } else {
      for (const auto& r : roles) {
        uint8_t bit = r.IsScalar() ? ParseRole(r.as<std::string>()) : 0;
        if (!bit)
          errors->push_back(At(path, r) + ": clients[" + std::to_string(i) +
                            "].roles: unknown role (expected app, reader, admin)");
        client.roles |= bit;
      }
    }
    if (list->clients_.count(key))
      errors->push_back(where + ".key: listed twice");
    else if (IsZ85Key(key))
      list->clients_.emplace(key, std::move(client));
  }
  if (errors->size() != before) return nullptr;
  return list;
}

const AccessList::Client* AccessList::Find(const std::string& z85_key) const {
  auto it = clients_.find(z85_key);
  return it == clients_.end() ? nullptr : &it->second;
}

uint8_t AccessList::RolesOf(const std::string& z85_key) const {
  const Client* c = Find(z85_key);
  return c ? c->roles : 0;
}

}  // namespace tailor
