// Tabular data for propensity models, shared by the DNA plugin and `tailor
// eval propensity`: a delimited-file reader (separator detected), column
// type detection and a feature encoder (numeric as is, categorical one-hot).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tailor::dna {

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // every row has columns.size() cells
  char sep = ',';
};

// Reads a header + rows file with double-quote quoting. sep 0 = detect from
// the header (the most frequent of , ; tab |). Throws std::runtime_error
// naming FILE:LINE for a row of the wrong width or an unterminated quote.
Table ReadTable(const std::string& path, char sep = 0);

// A dense row-major float matrix; NaN = missing.
struct Matrix {
  size_t rows = 0, cols = 0;
  std::vector<float> v;
  float* row(size_t r) { return v.data() + r * cols; }
  const float* row(size_t r) const { return v.data() + r * cols; }
};

// Learns column kinds and category levels from training data; encodes any
// table with the same columns the same way (unseen levels -> "other").
class Encoder {
 public:
  // skip: columns left out (the label, leaks). min_level_count: rarer
  // categorical levels are folded into "<col>=other".
  static Encoder Fit(const Table& t, const std::vector<std::string>& skip, int min_level_count = 5);
  Matrix Transform(const Table& t) const;  // throws when a used column is missing
  const std::vector<std::string>& feature_names() const { return names_; }
  size_t numeric_columns() const;
  size_t categorical_columns() const;

 private:
  struct Column {
    std::string name;
    bool numeric = true;
    std::vector<std::string> levels;  // categorical; feature k = levels[k], then "other"
    size_t first_feature = 0;
  };
  std::vector<Column> cols_;
  std::vector<std::string> names_;
};

// 1 where column `label` equals `positive`, else 0. Throws when the column is
// missing or no row / every row is positive.
std::vector<float> Labels(const Table& t, const std::string& label, const std::string& positive);

// Area under the ROC curve (ties averaged) and mean log loss.
double Auc(const std::vector<float>& y, const std::vector<double>& p);
double LogLoss(const std::vector<float>& y, const std::vector<double>& p);
// Expected calibration error over `bins` equal-width probability bins.
double CalibrationError(const std::vector<float>& y, const std::vector<double>& p, int bins = 10);

}  // namespace tailor::dna
