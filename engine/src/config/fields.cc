#include "config/fields.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "common/utf8.h"

namespace tailor::config {

std::optional<YAML::Node> ParseYamlText(const std::string& file, const std::string& text,
                                        std::vector<std::string>* errors) {
  if (size_t bad = InvalidUtf8At(text); bad != std::string::npos) {
    const size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    const size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    const size_t col = bad - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    errors->push_back(file + ":" + std::to_string(line) + ":" + std::to_string(col) +
                      ": not valid UTF-8 (byte " + byte + ")");
    return std::nullopt;
  }
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    errors->push_back(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    errors->push_back(file + ":1:1: " + e.msg);
  }
  return std::nullopt;
}

std::optional<YAML::Node> LoadYamlFile(const std::string& path, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back(path + ":1:1: cannot read file");
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseYamlText(path, text, errors);
}

std::string Where(const std::string& file, const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  if (m.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

Fields::Fields(const YAML::Node& node, std::string file, std::string path,
               std::vector<std::string>* errors, bool nonempty_strings)
    : node_(node),
      file_(std::move(file)),
      path_(std::move(path)),
      errors_(errors),
      nonempty_strings_(nonempty_strings) {
  if (node_ && !node_.IsNull() && !node_.IsMap()) {
    Error(node_, "", "expected a mapping");
    bad_ = true;
  }
}

void Fields::Error(const YAML::Node& at, const std::string& key, const std::string& msg) {
  std::string p = Path(key);
  errors_->push_back(Where(file_, at) + ": " + (p.empty() ? "" : p + ": ") + msg);
}

YAML::Node Fields::Get(const std::string& key) {
  known_.push_back(key);
  // Undefined, not null: an accessor then treats the key as absent instead of
  // reporting every key of a block that was empty or not a mapping.
  if (bad_ || !node_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  return node_[key];
}

void Fields::Missing(const std::string& key) {
  if (!bad_) Error(node_, key, "required key is missing");
}

bool Fields::Str(const std::string& key, std::string* out, bool required) {
  YAML::Node n = Get(key);
  if (!n) {
    if (required) Missing(key);
    return false;
  }
  if (!n.IsScalar() || (nonempty_strings_ && n.Scalar().empty())) {
    Error(n, key, nonempty_strings_ ? "expected a non-empty string" : "expected a string");
    return false;
  }
  if (!Utf8(n, key)) return false;
  *out = n.Scalar();
  return true;
}

bool Fields::Num(const std::string& key, double* out, double lo, double hi) {
  YAML::Node n = Get(key);
  if (!n) return false;
  double v;
  if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) {
    Error(n, key, "expected a number");
    return false;
  }
  if (v < lo || v > hi) {
    std::ostringstream os;
    os << "must be between " << lo << " and " << hi << ", got " << v;
    Error(n, key, os.str());
    return false;
  }
  *out = v;
  return true;
}

bool Fields::Num(const std::string& key, std::optional<double>* out) {
  double v = 0;
  if (!Num(key, &v)) return false;
  *out = v;
  return true;
}

bool Fields::Integer(const std::string& key, int64_t* out, int64_t lo, int64_t hi, bool required) {
  YAML::Node n = Get(key);
  if (!n) {
    if (required) Missing(key);
    return false;
  }
  int64_t v;
  if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
    Error(n, key, "expected an integer");
    return false;
  }
  if (v < lo || v > hi) {
    Error(n, key,
          "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
              std::to_string(v));
    return false;
  }
  *out = v;
  return true;
}

bool Fields::Bool(const std::string& key, bool* out) {
  YAML::Node n = Get(key);
  if (!n) return false;
  bool v;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    Error(n, key, "expected true or false");
    return false;
  }
  *out = v;
  return true;
}

bool Fields::Utf8(const YAML::Node& n, const std::string& key) {
  // The text was UTF-8 (ParseYamlText), but yaml-cpp's scalars need not be
  // (the config fuzzer made it split a character): these strings end up in
  // JSON.
  if (InvalidUtf8At(n.Scalar()) == std::string::npos) return true;
  Error(n, key, "not valid UTF-8");
  return false;
}

bool Fields::StrList(const std::string& key, std::vector<std::string>* out) {
  YAML::Node n = Get(key);
  if (!n) return false;
  if (n.IsScalar() && !(nonempty_strings_ && n.Scalar().empty())) {
    if (!Utf8(n, key)) return false;
    out->assign(1, n.Scalar());
    return true;
  }
  if (!n.IsSequence() || (nonempty_strings_ && n.size() == 0)) {
    Error(n, key,
          nonempty_strings_ ? "expected a string or a non-empty list of strings"
                            : "expected a list of strings");
    return false;
  }
  out->clear();
  for (const YAML::Node& e : n) {
    if (!e.IsScalar() || (nonempty_strings_ && e.Scalar().empty())) {
      Error(e, key, "expected a list of strings");
      return false;
    }
    if (!Utf8(e, key)) return false;
    out->push_back(e.Scalar());
  }
  return true;
}

void Fields::Done() {
  if (bad_ || !node_ || !node_.IsMap()) return;
  std::set<std::string> known(known_.begin(), known_.end());
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    if (known.count(k)) continue;
    std::string valid;
    for (const auto& v : known_) valid += (valid.empty() ? "" : ", ") + v;
    Error(kv.first, k, "unknown key (valid: " + valid + ")");
  }
}

std::string Fields::Path(const std::string& key) const {
  if (key.empty()) return path_;
  return path_.empty() ? key : path_ + "." + key;
}

}  // namespace tailor::config
