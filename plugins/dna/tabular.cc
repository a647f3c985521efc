#include "dna/tabular.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

namespace tailor::dna {
namespace {

// Splits one physical line; returns false when a quote is still open (the
// caller appends the next line and retries).
bool Split(const std::string& line, char sep, std::vector<std::string>* out) {
  out->clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == sep) {
      out->push_back(std::move(cur));
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out->push_back(std::move(cur));
  return !quoted;
}

bool ParseDouble(const std::string& s, double* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*v);
}

bool Missing(const std::string& s) { return s.empty() || s == "NA" || s == "NaN" || s == "?"; }

}  // namespace

Table ReadTable(const std::string& path, char sep) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  Table t;
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(path + ":1: empty file, expected a header");
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
  if (sep == 0) {
    sep = ',';
    size_t best = 0;
    for (char c : {',', ';', '\t', '|'}) {
      const auto n = static_cast<size_t>(std::count(line.begin(), line.end(), c));
      if (n > best) best = n, sep = c;
    }
  }
  t.sep = sep;
  if (!Split(line, sep, &t.columns)) throw std::runtime_error(path + ":1: unterminated quote");
  int64_t lineno = 1;
  std::vector<std::string> cells;
  while (std::getline(in, line)) {
    const int64_t start = ++lineno;
    if (line.empty() || line == "\r") continue;
    while (!Split(line, sep, &cells)) {
      std::string more;
      if (!std::getline(in, more)) {
        throw std::runtime_error(path + ":" + std::to_string(start) + ": unterminated quote");
      }
      ++lineno;
      line += "\n" + more;
    }
    if (cells.size() != t.columns.size()) {
      throw std::runtime_error(path + ":" + std::to_string(start) + ": expected " +
                               std::to_string(t.columns.size()) + " fields, got " +
                               std::to_string(cells.size()));
    }
    t.rows.push_back(cells);
  }
  return t;
}

Encoder Encoder::Fit(const Table& t, const std::vector<std::string>& skip, int min_level_count) {
  Encoder e;
  for (size_t j = 0; j < t.columns.size(); ++j) {
    if (std::find(skip.begin(), skip.end(), t.columns[j]) != skip.end()) continue;
    Column c;
    c.name = t.columns[j];
    // Numeric when every present value parses as a number.
    size_t present = 0;
    double v;
    for (const auto& r : t.rows) {
      if (Missing(r[j])) continue;
      ++present;
      if (!ParseDouble(r[j], &v)) {
        c.numeric = false;
        break;
      }
    }
    if (present == 0) continue;  // nothing to learn from
    c.first_feature = e.names_.size();
    if (c.numeric) {
      e.names_.push_back(c.name);
    } else {
      std::map<std::string, int> counts;
      for (const auto& r : t.rows) ++counts[r[j]];
      for (const auto& [level, n] : counts)
        if (n >= min_level_count) c.levels.push_back(level);
      for (const auto& l : c.levels) e.names_.push_back(c.name + "=" + l);
      e.names_.push_back(c.name + "=other");
    }
    e.cols_.push_back(std::move(c));
  }
  return e;
}

size_t Encoder::numeric_columns() const {
  return static_cast<size_t>(
      std::count_if(cols_.begin(), cols_.end(), [](const Column& c) { return c.numeric; }));
}
size_t Encoder::categorical_columns() const { return cols_.size() - numeric_columns(); }

Matrix Encoder::Transform(const Table& t) const {
  std::vector<size_t> at(cols_.size());
  for (size_t k = 0; k < cols_.size(); ++k) {
    auto it = std::find(t.columns.begin(), t.columns.end(), cols_[k].name);
    if (it == t.columns.end()) throw std::runtime_error("column '" + cols_[k].name + "' missing");
    at[k] = static_cast<size_t>(it - t.columns.begin());
  }
  Matrix m;
  m.rows = t.rows.size();
  m.cols = names_.size();
  m.v.assign(m.rows * m.cols, 0.0f);
  for (size_t r = 0; r < m.rows; ++r) {
    float* out = m.row(r);
    for (size_t k = 0; k < cols_.size(); ++k) {
      const Column& c = cols_[k];
      const std::string& cell = t.rows[r][at[k]];
      if (c.numeric) {
        double v;
        out[c.first_feature] =
            ParseDouble(cell, &v) ? static_cast<float>(v) : std::numeric_limits<float>::quiet_NaN();
      } else {
        auto it = std::lower_bound(c.levels.begin(), c.levels.end(), cell);
        const size_t level = it != c.levels.end() && *it == cell
                                 ? static_cast<size_t>(it - c.levels.begin())
                                 : c.levels.size();
        out[c.first_feature + level] = 1.0f;
      }
    }
  }
  return m;
}

std::vector<float> Labels(const Table& t, const std::string& label, const std::string& positive) {
  auto it = std::find(t.columns.begin(), t.columns.end(), label);
  if (it == t.columns.end()) throw std::runtime_error("label column '" + label + "' not found");
  const auto j = static_cast<size_t>(it - t.columns.begin());
  std::vector<float> y;
  y.reserve(t.rows.size());
  size_t pos = 0;
  for (const auto& r : t.rows) {
    y.push_back(r[j] == positive ? 1.0f : 0.0f);
    pos += r[j] == positive;
  }
  if (pos == 0 || pos == y.size()) {
    throw std::runtime_error("label '" + label + "' == '" + positive + "' in " +
                             std::to_string(pos) + " of " + std::to_string(y.size()) +
                             " rows: need both classes");
  }
  return y;
}

double Auc(const std::vector<float>& y, const std::vector<double>& p) {
  std::vector<size_t> idx(y.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  // Mann-Whitney U with average ranks for ties.
  double rank_sum = 0, pos = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && p[idx[j]] == p[idx[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2 + 1;
    for (size_t k = i; k < j; ++k) {
      if (y[idx[k]] > 0.5f) {
        rank_sum += avg;
        ++pos;
      }
    }
    i = j;
  }
  const double neg = static_cast<double>(y.size()) - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
}

double LogLoss(const std::vector<float>& y, const std::vector<double>& p) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double q = std::clamp(p[i], 1e-15, 1 - 1e-15);
    s -= y[i] > 0.5f ? std::log(q) : std::log(1 - q);
  }
  return y.empty() ? 0 : s / static_cast<double>(y.size());
}

double CalibrationError(const std::vector<float>& y, const std::vector<double>& p, int bins) {
  std::vector<double> sum_p(static_cast<size_t>(bins)), sum_y(static_cast<size_t>(bins)),
      n(static_cast<size_t>(bins));
  for (size_t i = 0; i < y.size(); ++i) {
    const auto b = static_cast<size_t>(std::clamp(static_cast<int>(p[i] * bins), 0, bins - 1));
    sum_p[b] += p[i];
    sum_y[b] += y[i];
    n[b] += 1;
  }
  double e = 0;
  for (size_t b = 0; b < n.size(); ++b) e += std::abs(sum_p[b] - sum_y[b]);
  return y.empty() ? 0 : e / static_cast<double>(y.size());
}

}  // namespace tailor::dna
