// The chatbot intent classifier shared by the intent plugin and `tailor eval
// intent`: hashed word and character n-gram features, an ensemble of
// one-vs-rest linear SVMs (L2-regularised squared hinge, solved exactly by
// dual coordinate descent as in LIBLINEAR), a softmax regression (a few
// AdaGrad epochs) and a cosine 1-nearest-neighbour per class (inverted
// index), with softmax-calibrated probabilities, and
// out-of-scope detection (an "oos" class when the training data has one, plus
// a threshold on the top intent's probability against out of scope).
//
// Thread safety: a trained Model is immutable; Predict/Probabilities may run
// concurrently. Training and Load build a new Model.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tailor::intent {

struct Example {
  std::string text;
  std::string label;
};

// Reads a CSV with a header holding (at least) columns "text" and "label",
// RFC 4180 quoting. Throws std::runtime_error naming FILE:LINE on bad input.
std::vector<Example> ReadCsv(const std::string& path);

// Pretrained word vectors as written by tools/fetch_embeddings.py
// ("tailor-word-vectors" version 1): words (most frequent first) with int8
// vectors, component j of word i being scale[i] x q[i x dims + j].
struct WordVectors {
  int dims = 0;
  std::vector<std::string> words;
  std::vector<float> scale;
  std::vector<int8_t> q;
  // Throws std::runtime_error naming path on a missing or malformed file.
  static WordVectors Read(const std::string& path);
};

struct Options {
  int hash_bits = 20;  // n-grams are hashed into 2^hash_bits buckets
  int char_min = 2;    // character n-grams of these lengths inside " word "
  int char_max = 5;
  int span_min = 3;          // character n-grams across words, over " w1 w2 ... "
  int span_max = 0;          // (span_max < span_min: none, the default: no gain on CLINC150 val)
  bool word_bigrams = true;  // word unigrams always; bigrams optional
  int min_count = 1;         // buckets seen in fewer training texts are dropped
  double c = 2.0;            // SVM cost (inverse regularisation), per class
  double epsilon = 0.1;      // dual solver stopping tolerance
  int max_passes = 1000;     // dual solver passes per class at most
  int threads = 2;           // classes trained in parallel (results do not depend on it)
  uint64_t seed = 1;         // example order
  std::string oos_label = "oos";
  // Ensemble score of class k (see Model::Scores):
  //   log softmax(svm_temperature x SVM scores)_k
  //   + lr_weight x log softmax(softmax regression)_k
  //   + knn_weight x max cosine to a training text of class k.
  // A weight of 0 leaves that member out (both 0: the SVM alone). Chosen on
  // CLINC150 val / oos_val (see README).
  double svm_temperature = 8.0;
  double lr_weight = 1.0;
  int lr_epochs = 5;     // AdaGrad passes over the data
  double lr_rate = 0.2;  // AdaGrad step size
  double knn_weight = 4.0;
  int knn_max_df = 300;  // features in more training texts are left out of the 1-NN cosine
  // Softmax temperature of the probabilities (p = softmax(temperature x
  // ensemble scores)); TrainCalibrated fits it on held-out data.
  double temperature = 1.0;
  // A text is out of scope when P(top intent) / (P(top intent) + P(oos))
  // (without an oos class: P(top intent)) is below this.
  double threshold = 0.0;
  // TrainCalibrated / ChooseThreshold: the smallest threshold whose oos
  // recall on held-out data reaches oos_recall_target (the operating point:
  // how much out of scope traffic to catch, at the least cost to in-scope
  // accuracy). 0 (the default): the smallest held-out recall whose 95%
  // Wilson lower bound is at least oos_recall_floor (60% with 100 held-out
  // oos texts, 90% with 10), so that unseen traffic keeps the floor.
  double oos_recall_target = 0.0;
  double oos_recall_floor = 0.5;
  // Pretrained word vectors (a WordVectors file; "" = none, the default, and
  // then none of the emb_ options apply). Train reads them (or takes
  // `vectors` when set) and the model keeps what it needs: the file's
  // embedding_words most frequent words plus the training texts' words. A
  // text's sentence vector is the SIF-weighted sum of its words' vectors
  // (weight emb_sif / (emb_sif + p(word)), p from the training texts), less
  // its projection on the training vectors' first principal component, unit
  // length; it is appended, times emb_weight, to the n-gram features of the
  // SVMs and the softmax regression (not the 1-NN), and the oos class's
  // ensemble score becomes
  //   emb_oos_scale x score + emb_oos_weight x (1 - max cosine of the
  //   sentence vector to an in-scope intent's centroid)
  // (far from every intent: more out of scope). Chosen on CLINC150 val.
  std::string embeddings;
  std::shared_ptr<const WordVectors> vectors;  // preloaded; Train does not keep it
  int embedding_words = 100000;
  double emb_weight = 0.5;
  double emb_sif = 1e-3;
  double emb_oos_scale = 0.5;
  double emb_oos_weight = 4.0;
};

struct Prediction {
  int label = -1;          // index into labels(); the oos label when rejected
  int top = -1;            // the most probable class before the threshold
  float confidence = 0.0;  // probability of `top`
  float in_scope = 0.0;    // the score the threshold applies to (see Options)
  bool rejected = false;   // true when the threshold (not the model) said oos
};

// Called as classes finish with (classes done, classes, mean solver passes).
using ProgressFn = std::function<void(int, int, double)>;

class Model {
 public:
  Model() = default;

  // Trains on examples (labels in first-seen order). Throws
  // std::invalid_argument for empty data or bad options.
  static Model Train(const std::vector<Example>& examples, const Options& options,
                     const ProgressFn& progress = {});

  bool trained() const { return !labels_.empty(); }
  const std::vector<std::string>& labels() const { return labels_; }
  // -1 when the training data had no oos class.
  int oos_index() const { return oos_; }
  int index_of(std::string_view label) const;
  const Options& options() const { return opt_; }
  size_t features() const { return columns_.size(); }
  // Dimensions of the sentence vector (0: no embeddings) and the words the
  // model has vectors for.
  int embedding_dims() const { return emb_dims_; }
  size_t embedding_words() const { return emb_index_.size(); }

  double threshold() const { return opt_.threshold; }
  void set_threshold(double t) { opt_.threshold = t; }
  double temperature() const { return opt_.temperature; }
  void set_temperature(double t) { opt_.temperature = t; }

  // Ensemble scores (see Options; with both member weights 0 the raw SVM
  // scores), and class probabilities (softmax of temperature x scores), for
  // text into *out (size labels().size()).
  void Scores(std::string_view text, std::vector<float>* out) const;
  void Probabilities(std::string_view text, std::vector<float>* probs) const;
  Prediction Predict(std::string_view text) const;
  // The decision for already computed probabilities under threshold t.
  Prediction Decide(const std::vector<float>& probs, double t) const;

  // Binary, versioned; Load throws std::runtime_error naming `what` (a path).
  void Save(std::ostream& out) const;
  static Model Load(std::istream& in, const std::string& what);

 private:
  // (row, value) of text's known buckets, unit length, plus the bias row,
  // then (with embeddings) emb_weight x the sentence vector in the rows after
  // the bias; the sentence vector (unit length or zero) into *sentence.
  void Features(std::string_view text, std::vector<std::pair<uint32_t, float>>* out,
                std::vector<float>* sentence) const;
  // The sentence vector of tokens (see Options), dims entries; false (and
  // zeros) when no token has a vector.
  bool Sentence(const std::vector<std::string>& tokens, float* out) const;
  void AppendSentence(const float* e, std::vector<std::pair<uint32_t, float>>* row) const;
  // Scores: the SVM's log-softmax plus the softmax regression and 1-NN
  // members, over z (the raw SVM scores on entry).
  void Ensemble(const std::vector<std::pair<uint32_t, float>>& x, bool lr, bool nn, float* z) const;
  // Train's embedding step: the kept words, the principal component and the
  // centroids from the training texts' tokens and labels; their sentence
  // vectors (texts x dims) into *sentences.
  void BuildEmbeddings(const WordVectors& wv, const std::vector<std::vector<std::string>>& toks,
                       const std::vector<int>& y, std::vector<float>* sentences);

  Options opt_;
  std::vector<std::string> labels_;
  int oos_ = -1;
  std::unordered_map<uint32_t, uint32_t> columns_;  // bucket -> row of weights_
  std::vector<float> weights_;                      // rows x K, row-major; last row = bias
  std::vector<float> lr_weights_;                   // softmax regression, same layout; may be empty
  // 1-NN member: the training texts' feature rows (CSR, bias left out, unit
  // length), their labels, and the inverted index (per feature row: the
  // texts having it), rebuilt on Load.
  std::vector<uint32_t> nn_start_, nn_col_;
  std::vector<float> nn_val_;
  std::vector<int32_t> nn_label_;
  std::vector<uint32_t> post_start_, post_text_;
  std::vector<float> post_val_;
  void BuildIndex();
  // Embeddings (emb_dims_ == 0: none): the rows after the bias row of
  // weights_ / lr_weights_ hold the sentence vector's weights. Per word a
  // scale (quantisation step x SIF weight) and dims int8 components; the
  // removed principal component; the in-scope intents' unit centroids
  // (dims x K, the oos column zero).
  int emb_dims_ = 0;
  std::vector<std::string> emb_words_;
  std::unordered_map<std::string, uint32_t> emb_index_;
  std::vector<float> emb_scale_;
  std::vector<int8_t> emb_q_;
  std::vector<float> emb_pc_;
  std::vector<float> emb_centroids_;
};

// The held-out oos recall ChooseThreshold aims at with n_oos held-out oos
// texts (options.oos_recall_target, or the Wilson rule when that is 0).
double OosRecallTarget(const Options& options, size_t n_oos);

// The softmax temperature that minimises the log loss of held-out examples
// (in-scope and oos alike), from a fixed grid.
double ChooseTemperature(const Model& model, const std::vector<Example>& held);

// The smallest threshold at which the model's oos recall on held-out
// examples reaches options().oos_recall_target (each held-out score is a
// candidate). 0 when the held-out data has no oos example.
double ChooseThreshold(const Model& model, const std::vector<Example>& held);

// Trains on a stratified nine tenths, chooses the temperature and then the
// threshold on the tenth held out, retrains on all examples and sets both.
Model TrainCalibrated(const std::vector<Example>& examples, const Options& options,
                      const ProgressFn& progress = {});

// Tokenises like the model does (lowercase ASCII, split on non-alphanumerics;
// bytes >= 0x80 are kept inside words). Exposed for tests.
std::vector<std::string> Tokens(std::string_view text);

}  // namespace tailor::intent
