// CURVE key pairs on disk, as `tailor keygen` writes them: NAME.key (public
// and secret, mode 0600) and NAME.pub (public only), each a two-line YAML map
// of Z85 text, so operators can read and diff them.
#pragma once

#include <optional>
#include <string>

namespace tailor {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty in a .pub file
};

// A fresh key pair from libzmq (libsodium underneath).
CurveKeyPair GenerateCurveKeyPair();

// Writes BASE.key and BASE.pub; false with *error on failure. Refuses to
// overwrite an existing BASE.key: a lost secret cannot be recovered.
bool WriteCurveKeyFiles(const std::string& base, const CurveKeyPair& keys, std::string* error);

// Reads a .key or .pub file; the secret is required only if need_secret.
std::optional<CurveKeyPair> ReadCurveKeyFile(const std::string& path, bool need_secret,
                                             std::string* error);

// True for 40 characters of the Z85 alphabet that decode to a 32-byte key.
bool IsZ85Key(const std::string& text);

}  // namespace tailor
