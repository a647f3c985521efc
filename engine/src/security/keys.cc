#include "security/keys.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>

namespace tailor {

CurveKeyPair GenerateCurveKeyPair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return {};
  return {pub, sec};
}

bool IsZ85Key(const std::string& text) {
  if (text.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

namespace {

bool WriteFile(const std::string& path, const std::string& text, mode_t mode, std::string* error) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) {
    *error = "cannot write " + path;
    return false;
  }
  // Narrow the mode before the secret is written.
  ::chmod(path.c_str(), mode);
  out << text;
  out.close();
  if (!out) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace

bool WriteCurveKeyFiles(const std::string& base, const CurveKeyPair& keys, std::string* error) {
  if (!IsZ85Key(keys.public_key) || !IsZ85Key(keys.secret_key)) {
    *error = "no CURVE key pair (is libzmq built with libsodium?)";
    return false;
  }
  const std::string key_path = base + ".key", pub_path = base + ".pub";
  if (std::filesystem::exists(key_path)) {
    *error = key_path + " exists; remove it first to replace the key pair";
    return false;
  }
  const std::string pub = "public: \"" + keys.public_key + "\"\n";
  return WriteFile(
             key_path,
             "# CURVE secret key: keep private\n" + pub + "secret: \"" + keys.secret_key + "\"\n",
             0600, error) &&
         WriteFile(pub_path, "# CURVE public key: give to the peer\n" + pub, 0644, error);
}

std::optional<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret,
                                             std::string* error) {
  try {
    YAML::Node n = YAML::LoadFile(path);
    CurveKeyPair k;
    if (n.IsMap() && n["public"]) k.public_key = n["public"].as<std::string>();
    if (n.IsMap() && n["secret"]) k.secret_key = n["secret"].as<std::string>();
    if (!IsZ85Key(k.public_key)) {
      *error = path + ": no valid 'public' key (40 Z85 characters)";
      return std::nullopt;
    }
    if (need_secret && !IsZ85Key(k.secret_key)) {
      *error = path + ": no valid 'secret' key (a .key file from `tailor keygen`)";
      return std::nullopt;
    }
    return k;
  } catch (const YAML::BadFile&) {
    *error = path + ": cannot read the key file";
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    *error = path + ":" + std::to_string(e.mark.line + 1) + ":" +
             std::to_string(e.mark.column + 1) + ": " + e.msg;
    return std::nullopt;
  }
}

}  // namespace tailor
