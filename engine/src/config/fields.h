// Reads one YAML mapping against the keys asked for: every accessor records
// its key as known, Done() reports the keys nobody asked for with the valid
// ones, and every error carries file:line:col and the key path. Shared by
// tailor.yaml / offers.yaml (config.cc) and the journey files (journeys.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace tailor::learning {
struct PolicyConfig;
}

namespace tailor::config {

// A `policy:` (a placement's or an experiment arm's): a block, or its kind
// alone (`policy: epsilon`); errors under `parent`'s path (config.cc).
void ParsePolicy(class Fields& parent, const YAML::Node& n, std::vector<std::string>* errors,
                 learning::PolicyConfig* out);

// "file:line:col" of a node (1-based; "file:1:1" when it has no mark).
std::string Where(const std::string& file, const YAML::Node& node);

// Parses the YAML text of file. Text that is not UTF-8 is refused at its
// first bad byte (every string read from YAML may end up in JSON, which must
// be UTF-8), and parse errors read file:line:col. Null on error.
std::optional<YAML::Node> ParseYamlText(const std::string& file, const std::string& text,
                                        std::vector<std::string>* errors);
// Reads path and parses it the same way.
std::optional<YAML::Node> LoadYamlFile(const std::string& path, std::vector<std::string>* errors);

class Fields {
 public:
  // nonempty_strings: Str and StrList refuse empty strings and empty lists.
  Fields(const YAML::Node& node, std::string file, std::string path,
         std::vector<std::string>* errors, bool nonempty_strings = false);

  void Error(const YAML::Node& at, const std::string& key, const std::string& msg);
  YAML::Node Get(const std::string& key);

  // Each returns true when the key is present and valid (then *out is set).
  // A required key that is absent is an error, unless the node itself was
  // already reported as not a mapping.
  bool Str(const std::string& key, std::string* out, bool required = false);
  bool Num(const std::string& key, double* out,
           double lo = -std::numeric_limits<double>::infinity(),
           double hi = std::numeric_limits<double>::infinity());
  bool Num(const std::string& key, std::optional<double>* out);
  bool Integer(const std::string& key, int64_t* out, int64_t lo, int64_t hi, bool required = false);
  template <typename Int>
  bool Integer(const std::string& key, Int* out, int64_t lo, int64_t hi, bool required = false) {
    int64_t v = 0;
    if (!Integer(key, &v, lo, hi, required)) return false;
    *out = static_cast<Int>(v);
    return true;
  }
  bool Bool(const std::string& key, bool* out);
  // A string or a list of strings.
  bool StrList(const std::string& key, std::vector<std::string>* out);

  // Reports every key of the mapping that no accessor asked for.
  void Done();

  // Reports a required key as missing (not when the node was not a mapping).
  void Missing(const std::string& key);

  const YAML::Node& node() const { return node_; }
  const std::string& file() const { return file_; }
  std::string Path(const std::string& key) const;

 private:
  // False, with an error at n, when the scalar is not UTF-8.
  bool Utf8(const YAML::Node& n, const std::string& key);
  YAML::Node node_;
  std::string file_, path_;
  std::vector<std::string>* errors_;
  std::vector<std::string> known_;
  bool bad_ = false;
  bool nonempty_strings_;
};

}  // namespace tailor::config
