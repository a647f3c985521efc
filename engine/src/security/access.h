// Who may connect and what each client may ask: the client keys file named by
// security.curve.clients in tailor.yaml, re-read on reload.
//
//   clients:
//     - name: shop-web
//       key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"   # from shop-web.pub
//       roles: [app]
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace tailor {

// Roles, as bits: a key may hold several.
enum Role : uint8_t {
  kRoleApp = 1,     // decide, event, events; receives outbound offers
  kRoleReader = 2,  // profile.get, explain
  kRoleAdmin = 4,   // everything, including rules.reload and profile.delete
};
constexpr uint8_t kAllRoles = kRoleApp | kRoleReader | kRoleAdmin;

// "app,reader"; "none" for 0.
std::string RoleNames(uint8_t roles);

class AccessList {
 public:
  struct Client {
    std::string name;
    uint8_t roles = 0;
  };

  // Parses the clients file; nullptr with file:line:col errors appended.
  static std::shared_ptr<const AccessList> Load(const std::string& path,
                                                std::vector<std::string>* errors);

  // The roles of a Z85 public key; 0 when the key is not listed.
  uint8_t RolesOf(const std::string& z85_key) const;
  const Client* Find(const std::string& z85_key) const;
  size_t size() const { return clients_.size(); }

 private:
  std::unordered_map<std::string, Client> clients_;  // by Z85 public key
};

}  // namespace tailor
