#include "intent/intent_model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <mutex>
#include <numeric>
#include <ostream>
#include <random>
#include <stdexcept>
#include <thread>

namespace tailor::intent {
namespace {

constexpr char kMagic[] = "tailor-intent-model";
constexpr uint32_t kFormatVersion = 3;     // without embeddings (unchanged)
constexpr uint32_t kFormatVersionEmb = 4;  // with embeddings
constexpr char kVectorsMagic[] = "tailor-word-vectors";
constexpr uint32_t kVectorsVersion = 1;
constexpr int kMaxDims = 4096;
constexpr uint32_t kBiasBucket = 0xFFFFFFFFu;  // never a hash bucket (bits <= 30)
constexpr uint32_t kCharBit = 0x80000000u;     // marks character n-gram buckets

// FNV-1a, seeded per feature kind so that a word and a char n-gram with the
// same bytes land in different buckets.
uint64_t Hash(std::string_view s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // Final mix: FNV's low bits are weak for short keys.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

// One RFC 4180 record from `in`, or false at the end. *line is advanced by the
// physical lines consumed.
bool ReadRecord(std::istream& in, std::vector<std::string>* fields, int64_t* line,
                std::string* err) {
  fields->clear();
  std::string cur;
  bool quoted = false, any = false, after_quote = false;
  int c;
  while ((c = in.get()) != EOF) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          cur += '"';
          in.get();
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        if (c == '\n') ++*line;
        cur += static_cast<char>(c);
      }
      continue;
    }
    if (c == '"' && cur.empty() && !after_quote) {
      quoted = true;
    } else if (c == ',') {
      fields->push_back(std::move(cur));
      cur.clear();
      after_quote = false;
    } else if (c == '\r' && in.peek() == '\n') {
      continue;
    } else if (c == '\n') {
      ++*line;
      fields->push_back(std::move(cur));
      return true;
    } else if (after_quote) {
      *err = "unexpected character after a closing quote";
      return true;
    } else {
      cur += static_cast<char>(c);
    }
  }
  if (quoted) *err = "unterminated quoted field";
  if (any) fields->push_back(std::move(cur));
  return any;
}

template <typename T>
void Put(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutStr(std::ostream& out, const std::string& s) {
  Put(out, static_cast<uint32_t>(s.size()));
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

class Reader {
 public:
  Reader(std::istream& in, const std::string& what) : in_(in), what_(what) {}
  template <typename T>
  T Get() {
    T v{};
    in_.read(reinterpret_cast<char*>(&v), sizeof v);
    if (!in_) Fail("truncated");
    return v;
  }
  std::string Str(uint32_t max = 1 << 20) {
    const auto n = Get<uint32_t>();
    if (n > max) Fail("string too long");
    std::string s(n, '\0');
    in_.read(s.data(), n);
    if (!in_) Fail("truncated");
    return s;
  }
  [[noreturn]] void Fail(const std::string& msg) const {
    throw std::runtime_error(what_ + ": corrupt intent model file: " + msg);
  }

 private:
  std::istream& in_;
  const std::string& what_;
};

}  // namespace

std::vector<Example> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> f;
  int64_t line = 1, start = 1;
  std::string err;
  if (!ReadRecord(in, &f, &line, &err) || !err.empty()) {
    throw std::runtime_error(path + ":1: missing header (want columns text,label)");
  }
  if (!f.empty() && f[0].rfind("\xEF\xBB\xBF", 0) == 0) f[0].erase(0, 3);  // BOM
  int ti = -1, li = -1;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "text") ti = static_cast<int>(i);
    if (f[i] == "label") li = static_cast<int>(i);
  }
  if (ti < 0 || li < 0) throw std::runtime_error(path + ":1: header needs columns text and label");
  std::vector<Example> out;
  const size_t need = static_cast<size_t>(std::max(ti, li)) + 1;
  while (true) {
    start = line;
    if (!ReadRecord(in, &f, &line, &err)) break;
    if (!err.empty()) throw std::runtime_error(path + ":" + std::to_string(start) + ": " + err);
    if (f.size() == 1 && f[0].empty()) continue;  // blank line
    if (f.size() < need) {
      throw std::runtime_error(path + ":" + std::to_string(start) + ": expected " +
                               std::to_string(need) + " fields, got " + std::to_string(f.size()));
    }
    if (f[li].empty())
      throw std::runtime_error(path + ":" + std::to_string(start) + ": empty label");
    out.push_back({std::move(f[ti]), std::move(f[li])});
  }
  return out;
}

std::vector<std::string> Tokens(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c >= 0x80 || c == '\'') {
      if (c == '\'') continue;  // "don't" == "dont"
      cur += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

WordVectors WordVectors::Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open word vectors " + path);
  auto fail = [&path](const std::string& msg) -> void {
    throw std::runtime_error(path +
                             ": not a word vectors file (tools/fetch_embeddings.py): " + msg);
  };
  char magic[sizeof kVectorsMagic] = {};
  in.read(magic, sizeof magic);
  if (!in || std::memcmp(magic, kVectorsMagic, sizeof magic) != 0) fail("bad magic");
  uint32_t head[3] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (!in) fail("truncated");
  if (head[0] != kVectorsVersion) fail("version " + std::to_string(head[0]) + " (want 1)");
  if (head[1] < 1 || head[1] > kMaxDims) fail("bad dimensions");
  if (head[2] > (1u << 26)) fail("bad word count");
  WordVectors v;
  v.dims = static_cast<int>(head[1]);
  const size_t n = head[2];
  v.words.resize(n);
  for (auto& w : v.words) {
    const int len = in.get();
    if (len == EOF) fail("truncated");
    w.resize(static_cast<size_t>(len));
    in.read(w.data(), len);
  }
  v.scale.resize(n);
  in.read(reinterpret_cast<char*>(v.scale.data()), static_cast<std::streamsize>(n * 4));
  v.q.resize(n * static_cast<size_t>(v.dims));
  in.read(reinterpret_cast<char*>(v.q.data()), static_cast<std::streamsize>(v.q.size()));
  if (!in) fail("truncated");
  for (float x : v.scale)
    if (!std::isfinite(x)) fail("non-finite scale");
  return v;
}

// Raw buckets of a text's tokens: words (and bigrams) into *words; character
// n-grams of each " word " (fastText-style boundaries, so prefixes and
// suffixes count) and across words over " w1 w2 ... " into *chars, marked
// with kCharBit.
static void RawBuckets(const std::vector<std::string>& toks, const Options& o,
                       std::vector<uint32_t>* words, std::vector<uint32_t>* chars) {
  words->clear();
  chars->clear();
  const uint32_t mask = (1u << o.hash_bits) - 1;
  auto grams = [&](std::string_view s, int lo, int hi, uint64_t seed) {
    for (int n = lo; n <= hi; ++n) {
      const auto un = static_cast<size_t>(n);
      if (s.size() < un) break;
      for (size_t i = 0; i + un <= s.size(); ++i) {
        chars->push_back(
            kCharBit |
            static_cast<uint32_t>(Hash(s.substr(i, un), seed + static_cast<uint64_t>(n)) & mask));
      }
    }
  };
  std::string padded, joined = " ";
  for (size_t i = 0; i < toks.size(); ++i) {
    words->push_back(static_cast<uint32_t>(Hash(toks[i], 1) & mask));
    if (o.word_bigrams && i + 1 < toks.size()) {
      words->push_back(static_cast<uint32_t>(Hash(toks[i] + " " + toks[i + 1], 2) & mask));
    }
    padded = " " + toks[i] + " ";
    grams(padded, o.char_min, o.char_max, 3);
    joined += toks[i] + " ";
  }
  if (!toks.empty() && o.span_min >= 1 && o.span_max >= o.span_min) {
    grams(joined, o.span_min, o.span_max, 20);
  }
}

// Sorted (bucket, 1 + log tf) pairs.
static void Weigh(std::vector<uint32_t>& buckets, std::vector<std::pair<uint32_t, float>>* out) {
  out->clear();
  std::sort(buckets.begin(), buckets.end());
  for (size_t i = 0; i < buckets.size();) {
    size_t j = i;
    while (j < buckets.size() && buckets[j] == buckets[i]) ++j;
    out->emplace_back(buckets[i], 1.0f + std::log(static_cast<float>(j - i)));
    i = j;
  }
}

// Weighed word and char buckets -> (row, value): each block scaled to unit
// length (so that words and n-grams weigh alike however many n-grams a text
// has), the whole to unit length, plus the bias row (value 1). Buckets the
// model does not know are dropped.
static void ToRows(const std::vector<std::pair<uint32_t, float>>& words,
                   const std::vector<std::pair<uint32_t, float>>& chars,
                   const std::unordered_map<uint32_t, uint32_t>& columns, uint32_t bias,
                   std::vector<std::pair<uint32_t, float>>* out) {
  out->clear();
  int blocks = 0;
  for (const auto* block : {&words, &chars}) {
    const size_t from = out->size();
    double norm = 0;
    for (const auto& [b, v] : *block) {
      auto it = columns.find(b);
      if (it == columns.end() || it->second == bias) continue;
      out->emplace_back(it->second, v);
      norm += static_cast<double>(v) * v;
    }
    if (norm > 0) {
      ++blocks;
      const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
      for (size_t i = from; i < out->size(); ++i) (*out)[i].second *= inv;
    }
  }
  if (blocks == 2) {
    const auto inv = static_cast<float>(1.0 / std::sqrt(2.0));
    for (auto& [c, x] : *out) x *= inv;
  }
  out->emplace_back(bias, 1.0f);
}

int Model::index_of(std::string_view label) const {
  for (size_t i = 0; i < labels_.size(); ++i)
    if (labels_[i] == label) return static_cast<int>(i);
  return -1;
}

void Model::Features(std::string_view text, std::vector<std::pair<uint32_t, float>>* out,
                     std::vector<float>* sentence) const {
  thread_local std::vector<uint32_t> raw_words, raw_chars;
  thread_local std::vector<std::pair<uint32_t, float>> words, chars;
  const std::vector<std::string> toks = Tokens(text);
  RawBuckets(toks, opt_, &raw_words, &raw_chars);
  Weigh(raw_words, &words);
  Weigh(raw_chars, &chars);
  ToRows(words, chars, columns_, static_cast<uint32_t>(columns_.size() - 1), out);
  sentence->clear();
  if (emb_dims_ > 0) {
    sentence->resize(static_cast<size_t>(emb_dims_));
    if (Sentence(toks, sentence->data())) AppendSentence(sentence->data(), out);
  }
}

bool Model::Sentence(const std::vector<std::string>& tokens, float* out) const {
  const auto D = static_cast<size_t>(emb_dims_);
  std::fill(out, out + D, 0.0f);
  bool any = false;
  for (const std::string& t : tokens) {
    auto it = emb_index_.find(t);
    if (it == emb_index_.end()) continue;
    any = true;
    const float s = emb_scale_[it->second];
    const int8_t* q = &emb_q_[static_cast<size_t>(it->second) * D];
    for (size_t d = 0; d < D; ++d) out[d] += s * static_cast<float>(q[d]);
  }
  if (!any) return false;
  double dot = 0;
  for (size_t d = 0; d < D; ++d) dot += static_cast<double>(out[d]) * emb_pc_[d];
  double norm = 0;
  for (size_t d = 0; d < D; ++d) {
    out[d] -= static_cast<float>(dot) * emb_pc_[d];
    norm += static_cast<double>(out[d]) * out[d];
  }
  if (!(norm > 1e-24)) {
    std::fill(out, out + D, 0.0f);
    return false;
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t d = 0; d < D; ++d) out[d] *= inv;
  return true;
}

void Model::AppendSentence(const float* e, std::vector<std::pair<uint32_t, float>>* row) const {
  const auto first = static_cast<uint32_t>(columns_.size());  // the row after the bias
  const auto a = static_cast<float>(opt_.emb_weight);
  for (int d = 0; d < emb_dims_; ++d)
    if (e[d] != 0.0f) row->emplace_back(first + static_cast<uint32_t>(d), a * e[d]);
}

void Model::BuildEmbeddings(const WordVectors& wv,
                            const std::vector<std::vector<std::string>>& toks,
                            const std::vector<int>& y, std::vector<float>* sentences) {
  const auto D = static_cast<size_t>(wv.dims);
  emb_dims_ = wv.dims;
  // Word frequencies in the training texts, for the SIF weights.
  std::unordered_map<std::string, double> count;
  double total = 0;
  for (const auto& t : toks) {
    for (const auto& w : t) ++count[w];
    total += static_cast<double>(t.size());
  }
  // Kept: the file's embedding_words most frequent words and every training
  // word the file has, in file order.
  std::vector<char> keep(wv.words.size(), 0);
  const size_t top = std::min(wv.words.size(), static_cast<size_t>(opt_.embedding_words));
  std::fill(keep.begin(), keep.begin() + static_cast<ptrdiff_t>(top), 1);
  {
    std::unordered_map<std::string_view, uint32_t> file_index;
    file_index.reserve(wv.words.size());
    for (size_t i = 0; i < wv.words.size(); ++i)
      file_index.emplace(wv.words[i], static_cast<uint32_t>(i));
    for (const auto& [w, c] : count) {
      auto it = file_index.find(w);
      if (it != file_index.end()) keep[it->second] = 1;
    }
  }
  std::vector<float> sif;  // per kept word, for the principal component
  for (size_t i = 0; i < wv.words.size(); ++i) {
    if (!keep[i] || emb_index_.count(wv.words[i])) continue;
    auto c = count.find(wv.words[i]);
    const double p = c == count.end() || total == 0 ? 0.0 : c->second / total;
    const double w = opt_.emb_sif / (opt_.emb_sif + p);
    emb_index_.emplace(wv.words[i], static_cast<uint32_t>(emb_words_.size()));
    emb_words_.push_back(wv.words[i]);
    emb_scale_.push_back(static_cast<float>(wv.scale[i] * w));
    sif.push_back(static_cast<float>(w));
    emb_q_.insert(emb_q_.end(), wv.q.begin() + static_cast<ptrdiff_t>(i * D),
                  wv.q.begin() + static_cast<ptrdiff_t>((i + 1) * D));
  }
  // First principal component (uncentred) of the training texts' weighted
  // mean vectors, by power iteration on their D x D second moment.
  emb_pc_.assign(D, 0.0f);
  std::vector<double> cov(D * D, 0.0), v(D);
  for (const auto& t : toks) {
    std::fill(v.begin(), v.end(), 0.0);
    double wsum = 0;
    for (const auto& w : t) {
      auto it = emb_index_.find(w);
      if (it == emb_index_.end()) continue;
      const size_t r = it->second;
      wsum += sif[r];
      for (size_t d = 0; d < D; ++d) v[d] += static_cast<double>(emb_scale_[r]) * emb_q_[r * D + d];
    }
    if (wsum <= 0) continue;
    for (double& x : v) x /= wsum;
    for (size_t a = 0; a < D; ++a)
      for (size_t b = 0; b < D; ++b) cov[a * D + b] += v[a] * v[b];
  }
  std::vector<double> u(D, 1.0 / std::sqrt(static_cast<double>(D))), next(D);
  bool have_pc = false;
  for (int iter = 0; iter < 1000; ++iter) {
    double norm = 0;
    for (size_t a = 0; a < D; ++a) {
      double s = 0;
      for (size_t b = 0; b < D; ++b) s += cov[a * D + b] * u[b];
      next[a] = s;
      norm += s * s;
    }
    if (!(norm > 0)) break;
    norm = std::sqrt(norm);
    double change = 0;
    for (size_t a = 0; a < D; ++a) {
      next[a] /= norm;
      change = std::max(change, std::abs(next[a] - u[a]));
    }
    u.swap(next);
    have_pc = true;
    if (change < 1e-9) break;
  }
  if (have_pc)
    for (size_t d = 0; d < D; ++d) emb_pc_[d] = static_cast<float>(u[d]);
  // Sentence vectors and the in-scope intents' centroids.
  const size_t K = labels_.size();
  sentences->assign(toks.size() * D, 0.0f);
  std::vector<double> sum(K * D, 0.0);
  for (size_t i = 0; i < toks.size(); ++i) {
    float* e = &(*sentences)[i * D];
    if (!Sentence(toks[i], e) || y[i] == oos_) continue;
    for (size_t d = 0; d < D; ++d) sum[static_cast<size_t>(y[i]) * D + d] += e[d];
  }
  emb_centroids_.assign(D * K, 0.0f);  // dims x K: Scores runs over K in the inner loop
  for (size_t k = 0; k < K; ++k) {
    double norm = 0;
    for (size_t d = 0; d < D; ++d) norm += sum[k * D + d] * sum[k * D + d];
    if (!(norm > 0)) continue;
    const double inv = 1.0 / std::sqrt(norm);
    for (size_t d = 0; d < D; ++d)
      emb_centroids_[d * K + k] = static_cast<float>(sum[k * D + d] * inv);
  }
}

namespace {

using Row = std::vector<std::pair<uint32_t, float>>;

// One class against the rest: L2-regularised squared-hinge SVM, solved in the
// dual by coordinate descent with shrinking (Hsieh et al. 2008, LIBLINEAR's
// L2R_L2LOSS_SVC_DUAL). Writes the weights into column k of w (rows x K).
// Returns the passes used.
int SolveOneVsRest(const std::vector<Row>& x, const std::vector<double>& sq_norm,
                   const std::vector<int>& y, int k, size_t rows, size_t K, const Options& o,
                   float* w_out) {
  const size_t n = x.size();
  const double diag = 0.5 / o.c;
  std::vector<double> alpha(n, 0.0);
  std::vector<size_t> active(n);
  std::iota(active.begin(), active.end(), 0);
  std::mt19937_64 rng(o.seed * 1000003u + static_cast<uint64_t>(k));
  // Dense weights of this class; the caller's matrix is strided.
  thread_local std::vector<double> w;
  w.assign(rows, 0.0);
  double pg_max_old = std::numeric_limits<double>::infinity();
  size_t act = n;
  int pass = 0;
  for (; pass < o.max_passes; ++pass) {
    std::shuffle(active.begin(), active.begin() + static_cast<ptrdiff_t>(act), rng);
    double pg_max = -std::numeric_limits<double>::infinity();
    double pg_min = std::numeric_limits<double>::infinity();
    for (size_t s = 0; s < act; ++s) {
      const size_t i = active[s];
      const double yi = y[i] == k ? 1.0 : -1.0;
      double g = 0;
      for (const auto& [c, v] : x[i]) g += w[c] * v;
      g = g * yi - 1 + alpha[i] * diag;
      double pg = 0;
      if (alpha[i] == 0) {
        if (g > pg_max_old) {  // shrink: stays at the bound
          --act;
          std::swap(active[s], active[act]);
          --s;
          continue;
        }
        if (g < 0) pg = g;
      } else {
        pg = g;
      }
      pg_max = std::max(pg_max, pg);
      pg_min = std::min(pg_min, pg);
      if (std::abs(pg) > 1e-12) {
        const double old = alpha[i];
        alpha[i] = std::max(alpha[i] - g / (sq_norm[i] + diag), 0.0);
        const double d = (alpha[i] - old) * yi;
        for (const auto& [c, v] : x[i]) w[c] += d * v;
      }
    }
    if (pg_max - pg_min <= o.epsilon) {
      if (act == n) break;
      act = n;  // converged on the active set: check every example again
      pg_max_old = std::numeric_limits<double>::infinity();
      continue;
    }
    pg_max_old = pg_max <= 0 ? std::numeric_limits<double>::infinity() : pg_max;
  }
  for (size_t c = 0; c < w.size(); ++c)
    w_out[c * K + static_cast<size_t>(k)] = static_cast<float>(w[c]);
  return pass + 1;
}

// Multinomial logistic regression (softmax, no regularisation beyond the
// few passes), AdaGrad over shuffled examples. Deterministic for a seed.
void TrainSoftmax(const std::vector<Row>& x, const std::vector<int>& y, size_t rows, size_t K,
                  const Options& o, std::vector<float>* w_out) {
  std::vector<float>& w = *w_out;
  w.assign(rows * K, 0.0f);
  std::vector<float> g2(rows * K, 0.0f), z(K);
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(o.seed);
  const auto rate = static_cast<float>(o.lr_rate);
  for (int epoch = 0; epoch < o.lr_epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      std::fill(z.begin(), z.end(), 0.0f);
      for (const auto& [c, v] : x[i]) {
        const float* wc = &w[static_cast<size_t>(c) * K];
        for (size_t k = 0; k < K; ++k) z[k] += v * wc[k];
      }
      const float mx = *std::max_element(z.begin(), z.end());
      float sum = 0;
      for (float& zk : z) sum += (zk = std::exp(zk - mx));
      for (float& zk : z) zk /= sum;
      z[static_cast<size_t>(y[i])] -= 1.0f;  // gradient of the log loss wrt the scores
      for (const auto& [c, v] : x[i]) {
        float* wc = &w[static_cast<size_t>(c) * K];
        float* gc = &g2[static_cast<size_t>(c) * K];
        for (size_t k = 0; k < K; ++k) {
          const float g = v * z[k];
          gc[k] += g * g;
          if (gc[k] > 0) wc[k] -= rate * g / std::sqrt(gc[k]);
        }
      }
    }
  }
}

}  // namespace

void Model::BuildIndex() {
  const size_t n = nn_label_.size();
  const size_t rows = columns_.size();
  post_start_.assign(rows + 1, 0);
  for (uint32_t c : nn_col_) ++post_start_[c + 1];
  for (size_t c = 0; c < rows; ++c) post_start_[c + 1] += post_start_[c];
  post_text_.resize(nn_col_.size());
  post_val_.resize(nn_col_.size());
  std::vector<uint32_t> fill(post_start_.begin(), post_start_.end() - 1);
  for (size_t i = 0; i < n; ++i) {
    for (uint32_t j = nn_start_[i]; j < nn_start_[i + 1]; ++j) {
      const uint32_t at = fill[nn_col_[j]]++;
      post_text_[at] = static_cast<uint32_t>(i);
      post_val_[at] = nn_val_[j];
    }
  }
}

Model Model::Train(const std::vector<Example>& examples, const Options& o,
                   const ProgressFn& progress) {
  if (examples.empty()) throw std::invalid_argument("intent: no training examples");
  if (o.hash_bits < 10 || o.hash_bits > 30) throw std::invalid_argument("hash_bits not in 10..30");
  if (o.char_min < 1 || o.char_max < o.char_min - 1 || o.char_max > 8 || o.span_max > 8)
    throw std::invalid_argument("char n-gram lengths must satisfy 1 <= min <= max + 1, max <= 8");
  if (!(o.c > 0) || !(o.epsilon > 0) || o.max_passes < 1 || !(o.temperature > 0))
    throw std::invalid_argument("c > 0, epsilon > 0, max_passes >= 1, temperature > 0 required");
  if (!(o.svm_temperature > 0) || !(o.lr_weight >= 0) || !(o.knn_weight >= 0) ||
      (o.lr_weight > 0 && (o.lr_epochs < 1 || !(o.lr_rate > 0))) || o.knn_max_df < 1)
    throw std::invalid_argument(
        "svm_temperature > 0, member weights >= 0, lr_epochs >= 1, lr_rate > 0, knn_max_df >= 1 "
        "required");
  const bool emb = o.vectors != nullptr || !o.embeddings.empty();
  if (emb && (!(o.emb_weight >= 0 && o.emb_weight < 1e6) || !(o.emb_sif > 0) ||
              !(o.emb_oos_scale >= 0 && o.emb_oos_scale < 1e6) ||
              !(o.emb_oos_weight >= 0 && o.emb_oos_weight < 1e6) || o.embedding_words < 0)) {
    throw std::invalid_argument(
        "emb_weight >= 0, emb_sif > 0, emb_oos_scale >= 0, emb_oos_weight >= 0, "
        "embedding_words >= 0 required");
  }
  std::shared_ptr<const WordVectors> vectors = o.vectors;
  if (emb && !vectors)
    vectors = std::make_shared<const WordVectors>(WordVectors::Read(o.embeddings));

  Model m;
  m.opt_ = o;
  m.opt_.vectors.reset();  // the model keeps its own subset
  std::unordered_map<std::string, int> label_index;
  std::vector<int> y;
  y.reserve(examples.size());
  for (const Example& e : examples) {
    auto [it, fresh] = label_index.emplace(e.label, static_cast<int>(m.labels_.size()));
    if (fresh) m.labels_.push_back(e.label);
    y.push_back(it->second);
  }
  m.oos_ = m.index_of(o.oos_label);
  const size_t K = m.labels_.size();

  // Featurise once; keep buckets seen in at least min_count examples.
  std::vector<std::vector<std::pair<uint32_t, float>>> words(examples.size()),
      chars(examples.size());
  std::unordered_map<uint32_t, uint32_t> df;
  std::vector<uint32_t> raw_words, raw_chars;
  std::vector<std::vector<std::string>> toks(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    toks[i] = Tokens(examples[i].text);
    RawBuckets(toks[i], o, &raw_words, &raw_chars);
    Weigh(raw_words, &words[i]);
    Weigh(raw_chars, &chars[i]);
    for (const auto* block : {&words[i], &chars[i]})
      for (const auto& [b, v] : *block) ++df[b];
  }
  // Stable column numbers (sorted buckets) so that training is deterministic.
  std::vector<uint32_t> kept;
  for (const auto& [b, n] : df)
    if (n >= static_cast<uint32_t>(o.min_count)) kept.push_back(b);
  std::sort(kept.begin(), kept.end());
  for (size_t c = 0; c < kept.size(); ++c) m.columns_[kept[c]] = static_cast<uint32_t>(c);
  const auto bias = static_cast<uint32_t>(kept.size());
  m.columns_[kBiasBucket] = bias;
  // Sentence vectors (embeddings): in the rows after the bias.
  std::vector<float> sentences;
  if (vectors) m.BuildEmbeddings(*vectors, toks, y, &sentences);
  vectors.reset();
  toks.clear();
  const auto D = static_cast<size_t>(m.emb_dims_);
  std::vector<Row> x(examples.size());
  std::vector<double> sq_norm(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    ToRows(words[i], chars[i], m.columns_, bias, &x[i]);
    if (D > 0) m.AppendSentence(&sentences[i * D], &x[i]);
    double s = 0;
    for (const auto& [c, v] : x[i]) s += static_cast<double>(v) * v;
    sq_norm[i] = s;
  }
  words.clear();
  chars.clear();
  sentences.clear();

  const size_t rows = kept.size() + 1 + D;
  if (o.knn_weight > 0) {  // the 1-NN member keeps the rows (bias left out)
    m.nn_start_.push_back(0);
    for (size_t i = 0; i < x.size(); ++i) {
      for (const auto& [c, v] : x[i]) {
        if (c >= bias) continue;  // the bias and the sentence vector
        m.nn_col_.push_back(c);
        m.nn_val_.push_back(v);
      }
      m.nn_start_.push_back(static_cast<uint32_t>(m.nn_col_.size()));
      m.nn_label_.push_back(y[i]);
    }
    m.BuildIndex();
  }
  // The softmax regression runs beside the SVMs (on its own thread when
  // there are two or more).
  std::thread lr_thread;
  std::exception_ptr lr_failure;
  auto train_lr = [&] {
    try {
      if (o.lr_weight > 0) TrainSoftmax(x, y, rows, K, o, &m.lr_weights_);
    } catch (...) {
      lr_failure = std::current_exception();
    }
  };
  const bool lr_beside = o.lr_weight > 0 && o.threads > 1;
  if (lr_beside) lr_thread = std::thread(train_lr);
  m.weights_.assign(rows * K, 0.0f);
  // Classes are independent: spread them over threads (each writes its own
  // column of weights_, so the result does not depend on the thread count).
  std::atomic<size_t> next{0};
  std::atomic<int> done{0};
  std::atomic<int64_t> passes{0};
  std::mutex progress_mu;
  std::exception_ptr failure;
  auto worker = [&] {
    try {
      for (size_t k; (k = next++) < K;) {
        passes += SolveOneVsRest(x, sq_norm, y, static_cast<int>(k), rows, K, o, m.weights_.data());
        const int d = ++done;
        if (progress) {
          std::lock_guard<std::mutex> lock(progress_mu);
          progress(d, static_cast<int>(K), static_cast<double>(passes) / d);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(progress_mu);
      if (!failure) failure = std::current_exception();
      next = K;
    }
  };
  const int threads = std::clamp(o.threads, 1, 64);
  std::vector<std::thread> pool;
  for (int t = lr_beside ? 2 : 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (lr_thread.joinable()) {
    lr_thread.join();
  } else {
    train_lr();
  }
  if (failure) std::rethrow_exception(failure);
  if (lr_failure) std::rethrow_exception(lr_failure);
  return m;
}

void Model::Scores(std::string_view text, std::vector<float>* out) const {
  const size_t K = labels_.size();
  out->assign(K, 0.0f);
  if (K == 0) return;
  thread_local std::vector<std::pair<uint32_t, float>> x;
  thread_local std::vector<float> sentence;
  Features(text, &x, &sentence);
  float* z = out->data();
  for (const auto& [c, v] : x) {
    const float* w = &weights_[static_cast<size_t>(c) * K];
    for (size_t k = 0; k < K; ++k) z[k] += v * w[k];
  }
  const bool lr = !lr_weights_.empty() && opt_.lr_weight > 0;
  const bool nn = !nn_label_.empty() && opt_.knn_weight > 0;
  if (lr || nn) Ensemble(x, lr, nn, z);  // else the SVM alone: raw scores
  if (emb_dims_ > 0 && oos_ >= 0) {
    // Far from every in-scope intent's centroid: more out of scope.
    const auto D = static_cast<size_t>(emb_dims_);
    float near = 0.0f;
    if (!sentence.empty() &&
        std::any_of(sentence.begin(), sentence.end(), [](float v) { return v != 0.0f; })) {
      thread_local std::vector<float> cos;
      cos.assign(K, 0.0f);
      for (size_t d = 0; d < D; ++d) {
        const float e = sentence[d];
        const float* c = &emb_centroids_[d * K];
        for (size_t k = 0; k < K; ++k) cos[k] += e * c[k];
      }
      near = -std::numeric_limits<float>::infinity();
      for (size_t k = 0; k < K; ++k)
        if (static_cast<int>(k) != oos_) near = std::max(near, cos[k]);
    }
    float& zo = z[static_cast<size_t>(oos_)];
    zo = static_cast<float>(opt_.emb_oos_scale) * zo +
         static_cast<float>(opt_.emb_oos_weight) * (1.0f - near);
  }
}

void Model::Ensemble(const std::vector<std::pair<uint32_t, float>>& x, bool lr, bool nn,
                     float* z) const {
  const size_t K = labels_.size();
  auto log_softmax = [](float* s, size_t n, float t) {
    float mx = -std::numeric_limits<float>::infinity();
    for (size_t k = 0; k < n; ++k) mx = std::max(mx, t * s[k]);
    double sum = 0;
    for (size_t k = 0; k < n; ++k) sum += std::exp(t * s[k] - mx);
    const auto log_sum = static_cast<float>(std::log(sum)) + mx;
    for (size_t k = 0; k < n; ++k) s[k] = t * s[k] - log_sum;
  };
  log_softmax(z, K, static_cast<float>(opt_.svm_temperature));
  if (lr) {
    thread_local std::vector<float> u;
    u.assign(K, 0.0f);
    for (const auto& [c, v] : x) {
      const float* w = &lr_weights_[static_cast<size_t>(c) * K];
      for (size_t k = 0; k < K; ++k) u[k] += v * w[k];
    }
    log_softmax(u.data(), K, 1.0f);
    const auto a = static_cast<float>(opt_.lr_weight);
    for (size_t k = 0; k < K; ++k) z[k] += a * u[k];
  }
  if (nn) {
    // Cosine to every training text sharing a (not too common) feature, via
    // the inverted index; the best per class.
    thread_local std::vector<float> sim;
    thread_local std::vector<uint32_t> touched;
    thread_local std::vector<float> best;
    sim.resize(nn_label_.size(), 0.0f);
    touched.clear();
    const auto bias = static_cast<uint32_t>(columns_.size() - 1);
    const auto max_df = static_cast<uint32_t>(opt_.knn_max_df);
    for (const auto& [c, v] : x) {
      if (c >= bias) continue;  // the bias and the sentence vector
      const uint32_t lo = post_start_[c], hi = post_start_[c + 1];
      if (hi - lo > max_df) continue;
      for (uint32_t j = lo; j < hi; ++j) {
        const uint32_t t = post_text_[j];
        if (sim[t] == 0.0f) touched.push_back(t);
        sim[t] += v * post_val_[j];
      }
    }
    best.assign(K, 0.0f);
    for (uint32_t t : touched) {
      float& b = best[static_cast<size_t>(nn_label_[t])];
      b = std::max(b, sim[t]);
      sim[t] = 0.0f;
    }
    const auto a = static_cast<float>(opt_.knn_weight);
    for (size_t k = 0; k < K; ++k) z[k] += a * best[k];
  }
}

void Model::Probabilities(std::string_view text, std::vector<float>* probs) const {
  Scores(text, probs);
  if (probs->empty()) return;
  std::vector<float>& z = *probs;
  const auto t = static_cast<float>(opt_.temperature);
  const float mx = *std::max_element(z.begin(), z.end());
  float sum = 0;
  for (float& zk : z) sum += (zk = std::exp(t * (zk - mx)));
  for (float& zk : z) zk /= sum;
}

Prediction Model::Decide(const std::vector<float>& probs, double t) const {
  Prediction p;
  if (probs.empty()) return p;
  p.top = static_cast<int>(std::max_element(probs.begin(), probs.end()) - probs.begin());
  p.confidence = probs[static_cast<size_t>(p.top)];
  p.label = p.top;
  // The best in-scope intent against out of scope.
  int best = -1;
  for (size_t k = 0; k < probs.size(); ++k)
    if (static_cast<int>(k) != oos_ && (best < 0 || probs[k] > probs[static_cast<size_t>(best)]))
      best = static_cast<int>(k);
  if (best < 0) return p;  // only an oos class
  const float pb = probs[static_cast<size_t>(best)];
  p.in_scope = oos_ >= 0 ? pb / std::max(pb + probs[static_cast<size_t>(oos_)], 1e-30f) : pb;
  if (p.top != oos_ && p.in_scope < t) {
    p.rejected = true;
    p.label = oos_;  // -1 when there is no oos class: "no intent"
  }
  return p;
}

Prediction Model::Predict(std::string_view text) const {
  thread_local std::vector<float> probs;
  Probabilities(text, &probs);
  return Decide(probs, opt_.threshold);
}

// Layout (little-endian as written by this machine):
//   magic, u32 version, options, u32 K, K labels, i32 oos, u32 rows,
//   rows x u32 bucket (row order; the last is the bias), rows x K f32 weights;
//   then (version 3) the ensemble: f64 svm_temperature, lr_weight,
//   knn_weight, i32 knn_max_df, u8 has softmax regression [rows x K f32],
//   u32 n 1-NN texts, (n + 1) x u32 offsets, nnz x u32 rows, nnz x f32
//   values, n x i32 labels.
// Version 4 (with embeddings) adds u32 dims after the buckets (the weights
// then have rows + dims rows) and at the end f64 emb_weight, emb_oos_scale,
// emb_oos_weight, emb_sif, u32 words, the words (u32 length, bytes), words x
// f32 scale, words x dims i8, dims x f32 principal component, dims x K f32
// centroids. A model without embeddings is written as version 3.
void Model::Save(std::ostream& out) const {
  out.write(kMagic, sizeof kMagic);
  Put(out, emb_dims_ > 0 ? kFormatVersionEmb : kFormatVersion);
  Put(out, static_cast<int32_t>(opt_.hash_bits));
  Put(out, static_cast<int32_t>(opt_.char_min));
  Put(out, static_cast<int32_t>(opt_.char_max));
  Put(out, static_cast<int32_t>(opt_.span_min));
  Put(out, static_cast<int32_t>(opt_.span_max));
  Put(out, static_cast<uint8_t>(opt_.word_bigrams));
  Put(out, opt_.threshold);
  Put(out, opt_.temperature);
  PutStr(out, opt_.oos_label);
  Put(out, static_cast<uint32_t>(labels_.size()));
  for (const auto& l : labels_) PutStr(out, l);
  Put(out, static_cast<int32_t>(oos_));
  std::vector<uint32_t> buckets(columns_.size());
  for (const auto& [b, c] : columns_) buckets[c] = b;
  Put(out, static_cast<uint32_t>(buckets.size()));
  out.write(reinterpret_cast<const char*>(buckets.data()),
            static_cast<std::streamsize>(buckets.size() * sizeof(uint32_t)));
  if (emb_dims_ > 0) Put(out, static_cast<uint32_t>(emb_dims_));
  out.write(reinterpret_cast<const char*>(weights_.data()),
            static_cast<std::streamsize>(weights_.size() * sizeof(float)));
  auto put_vec = [&out](const auto& v) {
    out.write(reinterpret_cast<const char*>(v.data()),
              static_cast<std::streamsize>(v.size() * sizeof(v[0])));
  };
  Put(out, opt_.svm_temperature);
  Put(out, opt_.lr_weight);
  Put(out, opt_.knn_weight);
  Put(out, static_cast<int32_t>(opt_.knn_max_df));
  Put(out, static_cast<uint8_t>(!lr_weights_.empty()));
  put_vec(lr_weights_);
  Put(out, static_cast<uint32_t>(nn_label_.size()));
  if (!nn_label_.empty()) {
    put_vec(nn_start_);
    put_vec(nn_col_);
    put_vec(nn_val_);
    put_vec(nn_label_);
  }
  if (emb_dims_ > 0) {
    Put(out, opt_.emb_weight);
    Put(out, opt_.emb_oos_scale);
    Put(out, opt_.emb_oos_weight);
    Put(out, opt_.emb_sif);
    Put(out, static_cast<uint32_t>(emb_words_.size()));
    for (const auto& w : emb_words_) PutStr(out, w);
    put_vec(emb_scale_);
    put_vec(emb_q_);
    put_vec(emb_pc_);
    put_vec(emb_centroids_);
  }
}

Model Model::Load(std::istream& in, const std::string& what) {
  char magic[sizeof kMagic] = {};
  in.read(magic, sizeof magic);
  if (!in || std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    throw std::runtime_error(what + ": not an intent model file");
  }
  Reader r(in, what);
  const auto version = r.Get<uint32_t>();
  if (version != kFormatVersion && version != kFormatVersionEmb) {
    throw std::runtime_error(what + ": intent model format version " + std::to_string(version) +
                             " is not supported (this build reads " +
                             std::to_string(kFormatVersion) + " and " +
                             std::to_string(kFormatVersionEmb) + "); retrain");
  }
  Model m;
  m.opt_.hash_bits = r.Get<int32_t>();
  m.opt_.char_min = r.Get<int32_t>();
  m.opt_.char_max = r.Get<int32_t>();
  m.opt_.span_min = r.Get<int32_t>();
  m.opt_.span_max = r.Get<int32_t>();
  m.opt_.word_bigrams = r.Get<uint8_t>() != 0;
  m.opt_.threshold = r.Get<double>();
  m.opt_.temperature = r.Get<double>();
  m.opt_.oos_label = r.Str();
  if (m.opt_.hash_bits < 10 || m.opt_.hash_bits > 30 || m.opt_.char_min < 1 ||
      m.opt_.char_max > 8 || m.opt_.span_max > 8 ||
      !(m.opt_.threshold >= 0 && m.opt_.threshold <= 1) ||
      !(m.opt_.temperature > 0 && m.opt_.temperature < 1e6)) {
    r.Fail("bad options");
  }
  const auto K = r.Get<uint32_t>();
  if (K == 0 || K > 100000) r.Fail("bad label count");
  for (uint32_t k = 0; k < K; ++k) m.labels_.push_back(r.Str());
  m.oos_ = r.Get<int32_t>();
  if (m.oos_ < -1 || m.oos_ >= static_cast<int32_t>(K)) r.Fail("bad oos index");
  const auto rows = r.Get<uint32_t>();
  if (rows == 0 || rows > (1u << 30) / K) r.Fail("bad feature count");
  std::vector<uint32_t> buckets(rows);
  in.read(reinterpret_cast<char*>(buckets.data()), static_cast<std::streamsize>(rows * 4));
  if (version == kFormatVersionEmb) {
    const auto dims = r.Get<uint32_t>();
    if (dims < 1 || dims > static_cast<uint32_t>(kMaxDims)) r.Fail("bad embedding dimensions");
    if (rows + dims > (1u << 30) / K) r.Fail("bad feature count");
    m.emb_dims_ = static_cast<int>(dims);
  }
  m.weights_.resize((static_cast<size_t>(rows) + static_cast<size_t>(m.emb_dims_)) * K);
  in.read(reinterpret_cast<char*>(m.weights_.data()),
          static_cast<std::streamsize>(m.weights_.size() * sizeof(float)));
  if (!in) r.Fail("truncated");
  for (uint32_t c = 0; c < rows; ++c) m.columns_.emplace(buckets[c], c);
  if (m.columns_.size() != rows || m.columns_.count(kBiasBucket) == 0 ||
      m.columns_.at(kBiasBucket) != rows - 1) {
    r.Fail("bad feature table");
  }
  for (float w : m.weights_)
    if (!std::isfinite(w)) r.Fail("non-finite weight");
  auto get_vec = [&](auto* v, size_t count) {
    v->resize(count);
    in.read(reinterpret_cast<char*>(v->data()),
            static_cast<std::streamsize>(count * sizeof((*v)[0])));
    if (!in) r.Fail("truncated");
  };
  m.opt_.svm_temperature = r.Get<double>();
  m.opt_.lr_weight = r.Get<double>();
  m.opt_.knn_weight = r.Get<double>();
  m.opt_.knn_max_df = r.Get<int32_t>();
  if (!(m.opt_.svm_temperature > 0 && m.opt_.svm_temperature < 1e6) ||
      !(m.opt_.lr_weight >= 0 && m.opt_.lr_weight < 1e6) ||
      !(m.opt_.knn_weight >= 0 && m.opt_.knn_weight < 1e6) || m.opt_.knn_max_df < 1) {
    r.Fail("bad ensemble options");
  }
  if (r.Get<uint8_t>() != 0) {
    get_vec(&m.lr_weights_, m.weights_.size());
    for (float w : m.lr_weights_)
      if (!std::isfinite(w)) r.Fail("non-finite weight");
  }
  const auto n = r.Get<uint32_t>();
  if (n > (1u << 26)) r.Fail("bad 1-NN text count");
  if (n > 0) {
    get_vec(&m.nn_start_, size_t{n} + 1);
    if (m.nn_start_[0] != 0 || !std::is_sorted(m.nn_start_.begin(), m.nn_start_.end()) ||
        m.nn_start_[n] > (1u << 30)) {
      r.Fail("bad 1-NN offsets");
    }
    get_vec(&m.nn_col_, m.nn_start_[n]);
    get_vec(&m.nn_val_, m.nn_start_[n]);
    get_vec(&m.nn_label_, n);
    for (uint32_t c : m.nn_col_)
      if (c >= rows - 1) r.Fail("bad 1-NN feature");
    for (float v : m.nn_val_)
      if (!std::isfinite(v)) r.Fail("non-finite 1-NN value");
    for (int32_t l : m.nn_label_)
      if (l < 0 || l >= static_cast<int32_t>(K)) r.Fail("bad 1-NN label");
    m.BuildIndex();
  }
  if (m.emb_dims_ > 0) {
    const auto D = static_cast<size_t>(m.emb_dims_);
    m.opt_.emb_weight = r.Get<double>();
    m.opt_.emb_oos_scale = r.Get<double>();
    m.opt_.emb_oos_weight = r.Get<double>();
    m.opt_.emb_sif = r.Get<double>();
    for (double v : {m.opt_.emb_weight, m.opt_.emb_oos_scale, m.opt_.emb_oos_weight})
      if (!(v >= 0 && v < 1e6)) r.Fail("bad embedding options");
    const auto words = r.Get<uint32_t>();
    if (words > (1u << 26)) r.Fail("bad embedding word count");
    m.emb_words_.reserve(words);
    for (uint32_t i = 0; i < words; ++i) {
      m.emb_words_.push_back(r.Str(255));
      if (!m.emb_index_.emplace(m.emb_words_.back(), i).second) r.Fail("duplicate embedding word");
    }
    get_vec(&m.emb_scale_, words);
    get_vec(&m.emb_q_, size_t{words} * D);
    get_vec(&m.emb_pc_, D);
    get_vec(&m.emb_centroids_, D * K);
    for (const auto* v : {&m.emb_scale_, &m.emb_pc_, &m.emb_centroids_})
      for (float x : *v)
        if (!std::isfinite(x)) r.Fail("non-finite embedding value");
  }
  return m;
}

double ChooseTemperature(const Model& model, const std::vector<Example>& held) {
  std::vector<std::vector<float>> scores(held.size());
  std::vector<int> gold(held.size());
  for (size_t i = 0; i < held.size(); ++i) {
    model.Scores(held[i].text, &scores[i]);
    gold[i] = model.index_of(held[i].label);
  }
  double best_t = model.temperature(), best = std::numeric_limits<double>::infinity();
  for (double t : {0.25, 0.35, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0,
                   20.0, 24.0, 32.0}) {
    double loss = 0;
    int n = 0;
    for (size_t i = 0; i < held.size(); ++i) {
      if (gold[i] < 0) continue;  // a label the model never saw
      const auto& z = scores[i];
      const double mx = *std::max_element(z.begin(), z.end());
      double sum = 0;
      for (float v : z) sum += std::exp(t * (v - mx));
      loss += std::log(sum) - t * (z[static_cast<size_t>(gold[i])] - mx);
      ++n;
    }
    if (n > 0 && loss / n < best) {
      best = loss / n;
      best_t = t;
    }
  }
  return best_t;
}

double OosRecallTarget(const Options& o, size_t n_oos) {
  if (o.oos_recall_target > 0 || n_oos == 0) return o.oos_recall_target;
  // The smallest k / n whose Wilson score interval (95%, z = 1.96) has its
  // lower end at or above the floor.
  const double n = static_cast<double>(n_oos), z2 = 1.96 * 1.96;
  for (size_t k = 0; k <= n_oos; ++k) {
    const double p = static_cast<double>(k) / n;
    const double lower =
        (p + z2 / (2 * n) - 1.96 * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n);
    if (lower >= o.oos_recall_floor) return p;
  }
  return 1.0;
}

double ChooseThreshold(const Model& model, const std::vector<Example>& held) {
  const int oos = model.oos_index();
  std::vector<float> probs;
  std::vector<double> oos_scores;  // in_scope scores of held-out oos texts the model calls in scope
  size_t n_oos = 0;
  for (const Example& e : held) {
    if (e.label != model.options().oos_label) continue;
    ++n_oos;
    model.Probabilities(e.text, &probs);
    const Prediction p = model.Decide(probs, 0.0);
    if (p.label >= 0 && p.label != oos) oos_scores.push_back(p.in_scope);
  }
  if (n_oos == 0) return 0;
  // Caught without a threshold: those the oos class wins.
  const size_t caught = n_oos - oos_scores.size();
  const auto need = static_cast<size_t>(
      std::ceil(OosRecallTarget(model.options(), n_oos) * static_cast<double>(n_oos) - 1e-9));
  if (caught >= need) return 0;
  // Rejecting the (need - caught) lowest-scoring ones: a threshold just above
  // the highest of them.
  std::sort(oos_scores.begin(), oos_scores.end());
  const size_t k = std::min(need - caught, oos_scores.size());
  const double t = std::nextafter(static_cast<float>(oos_scores[k - 1]), 2.0f);
  return std::min(t, 1.0);
}

Model TrainCalibrated(const std::vector<Example>& examples, const Options& options,
                      const ProgressFn& progress) {
  std::unordered_map<std::string, std::vector<size_t>> by_label;
  std::vector<std::string> order;
  for (size_t i = 0; i < examples.size(); ++i) {
    auto& v = by_label[examples[i].label];
    if (v.empty()) order.push_back(examples[i].label);
    v.push_back(i);
  }
  std::mt19937_64 rng(options.seed);
  std::vector<Example> fit, held;
  for (const auto& label : order) {
    auto& idx = by_label[label];
    std::shuffle(idx.begin(), idx.end(), rng);
    const size_t n_held = idx.size() / 10;
    for (size_t k = 0; k < idx.size(); ++k) (k < n_held ? held : fit).push_back(examples[idx[k]]);
  }
  Options o = options;  // word vectors read once for both trainings
  if (!o.vectors && !o.embeddings.empty())
    o.vectors = std::make_shared<const WordVectors>(WordVectors::Read(o.embeddings));
  double threshold = options.threshold, temperature = options.temperature;
  if (!held.empty() && !fit.empty()) {
    Model probe = Model::Train(fit, o);
    temperature = ChooseTemperature(probe, held);
    probe.set_temperature(temperature);
    threshold = ChooseThreshold(probe, held);
  }
  Model m = Model::Train(examples, o, progress);
  m.set_temperature(temperature);
  m.set_threshold(threshold);
  return m;
}

}  // namespace tailor::intent
