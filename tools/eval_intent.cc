// `tailor eval intent`: the intent plugin's classifier on a labelled train /
// test pair (CSV text,label; label "oos" = out of scope). Reports accuracy,
// in-scope accuracy, oos recall, macro F1, training time and the median
// predict latency per text, for the served model (with its confidence
// threshold) and for the same model without the threshold (the baseline).
//
// The softmax temperature and the threshold are chosen on held-out data,
// never on the test file: on --val when given, otherwise on a stratified 10%
// carved from --train (the model is then retrained on all of --train).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "commands.h"
#include "common/time.h"
#include "intent/intent_model.h"
#include "runtime.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct EvalIntentArgs {
  std::string train, test, val, json_out;
  intent::Options opt;
  double threshold = -1;  // < 0: choose on validation data
};

struct Metrics {
  double accuracy = 0, in_scope_accuracy = 0, oos_recall = 0, macro_f1 = 0;
  int64_t n = 0, n_in = 0, n_oos = 0;
};

// Label names per example (model's label index -> name; -1 = "no intent").
Metrics Score(const std::vector<intent::Example>& data, const std::vector<std::string>& pred,
              const std::string& oos) {
  Metrics m;
  std::map<std::string, std::array<int64_t, 3>> c;  // label -> tp, fp, fn
  int64_t right = 0, right_in = 0, right_oos = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const std::string& gold = data[i].label;
    const bool ok = pred[i] == gold;
    right += ok;
    if (gold == oos) {
      ++m.n_oos;
      right_oos += ok;
    } else {
      ++m.n_in;
      right_in += ok;
    }
    if (ok) {
      ++c[gold][0];
    } else {
      ++c[pred[i]][1];
      ++c[gold][2];
    }
  }
  m.n = static_cast<int64_t>(data.size());
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / b : 0.0; };
  m.accuracy = ratio(right, m.n);
  m.in_scope_accuracy = ratio(right_in, m.n_in);
  m.oos_recall = ratio(right_oos, m.n_oos);
  // Macro F1 over the labels present in the gold data (a predicted label
  // that never occurs in gold only costs precision elsewhere).
  double f1 = 0;
  int labels = 0;
  std::set<std::string> gold_labels;
  for (const auto& e : data) gold_labels.insert(e.label);
  for (const auto& l : gold_labels) {
    const auto& [tp, fp, fn] = c[l];
    const double denom = 2.0 * tp + fp + fn;
    f1 += denom > 0 ? 2.0 * tp / denom : 0;
    ++labels;
  }
  m.macro_f1 = labels ? f1 / labels : 0;
  return m;
}

std::vector<std::string> Names(const intent::Model& model,
                               const std::vector<std::vector<float>>& probs, double t) {
  std::vector<std::string> out;
  out.reserve(probs.size());
  const std::string& oos = model.options().oos_label;
  for (const auto& p : probs) {
    const intent::Prediction d = model.Decide(p, t);
    out.push_back(d.label >= 0 ? model.labels()[static_cast<size_t>(d.label)] : oos);
  }
  return out;
}

std::vector<std::vector<float>> AllProbs(const intent::Model& model,
                                         const std::vector<intent::Example>& data) {
  std::vector<std::vector<float>> out(data.size());
  for (size_t i = 0; i < data.size(); ++i) model.Probabilities(data[i].text, &out[i]);
  return out;
}

intent::Model TrainVerbose(const std::vector<intent::Example>& data, const intent::Options& opt,
                           const char* what, double* seconds) {
  std::cerr << "training on " << data.size() << " " << what << " examples\n";
  const int64_t t0 = mono_ns();
  intent::Model m = intent::Model::Train(data, opt, [](int k, int n, double passes) {
    if (k % 10 != 0 && k != n) return;
    std::fprintf(stderr, "\r  intents %d/%d  (%.0f solver passes each)", k, n, passes);
    if (k == n) std::fputc('\n', stderr);
  });
  if (seconds) *seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  return m;
}

json ToJson(const Metrics& m) {
  return {{"accuracy", m.accuracy},
          {"in_scope_accuracy", m.in_scope_accuracy},
          {"oos_recall", m.oos_recall},
          {"macro_f1", m.macro_f1}};
}

void RunEvalIntent(const EvalIntentArgs& a) {
  std::vector<intent::Example> train, test, val;
  try {
    train = intent::ReadCsv(a.train);
    test = intent::ReadCsv(a.test);
    if (!a.val.empty()) val = intent::ReadCsv(a.val);
  } catch (const std::exception& e) {
    Fail(e.what(), 2);
  }
  intent::Options opt = a.opt;
  if (!opt.embeddings.empty()) {  // read once for every training below
    try {
      opt.vectors =
          std::make_shared<const intent::WordVectors>(intent::WordVectors::Read(opt.embeddings));
    } catch (const std::exception& e) {
      Fail(e.what(), 2);
    }
  }
  double threshold = a.threshold;
  double train_seconds = 0;
  intent::Model model;
  std::string threshold_from = "--threshold";
  // Temperature, then threshold, on held-out examples for a model that never
  // saw them.
  double recall_target = opt.oos_recall_target;
  auto calibrate = [&](intent::Model& probe, const std::vector<intent::Example>& held) {
    const auto n_oos =
        static_cast<size_t>(std::count_if(held.begin(), held.end(), [&](const intent::Example& e) {
          return e.label == opt.oos_label;
        }));
    recall_target = intent::OosRecallTarget(opt, n_oos);
    probe.set_temperature(intent::ChooseTemperature(probe, held));
    if (threshold < 0) threshold = intent::ChooseThreshold(probe, held);
    return probe.temperature();
  };
  if (!val.empty()) {
    model = TrainVerbose(train, opt, "training", &train_seconds);
    calibrate(model, val);
    if (a.threshold < 0) threshold_from = a.val;
  } else {
    // Carve a stratified 10% of each label, choose there, retrain on all.
    std::map<std::string, std::vector<size_t>> by_label;
    for (size_t i = 0; i < train.size(); ++i) by_label[train[i].label].push_back(i);
    std::mt19937_64 rng(opt.seed);
    std::vector<intent::Example> fit, held;
    for (auto& [label, idx] : by_label) {
      std::shuffle(idx.begin(), idx.end(), rng);
      const size_t n_held = idx.size() / 10;
      for (size_t k = 0; k < idx.size(); ++k) (k < n_held ? held : fit).push_back(train[idx[k]]);
    }
    intent::Model probe = TrainVerbose(fit, opt, "fit (90% of train)", nullptr);
    const double temperature = calibrate(probe, held);
    if (a.threshold < 0) threshold_from = "10% of " + a.train;
    model = TrainVerbose(train, opt, "training", &train_seconds);
    model.set_temperature(temperature);
  }
  model.set_threshold(threshold);
  std::cerr << "threshold " << threshold << " (chosen on " << threshold_from << ", oos recall "
            << recall_target << " there), temperature " << model.temperature() << "; "
            << model.labels().size() << " labels, " << model.features() << " features";
  if (model.embedding_dims() > 0) {
    std::cerr << ", " << model.embedding_dims() << "-d sentence vectors over "
              << model.embedding_words() << " words";
  }
  std::cerr << "\n";

  // Latency: one Predict per text, as the plugin calls it.
  std::vector<double> us;
  us.reserve(test.size());
  std::vector<std::string> served;
  served.reserve(test.size());
  const std::string& oos = opt.oos_label;
  for (const auto& e : test) {
    const int64_t t0 = mono_ns();
    const intent::Prediction p = model.Predict(e.text);
    us.push_back(static_cast<double>(mono_ns() - t0) / 1e3);
    served.push_back(p.label >= 0 ? model.labels()[static_cast<size_t>(p.label)] : oos);
  }
  std::sort(us.begin(), us.end());
  const double predict_us = us.empty() ? 0 : us[us.size() / 2];
  const double predict_p99_us = us.empty() ? 0 : us[us.size() * 99 / 100];
  const Metrics m = Score(test, served, oos);
  const Metrics base = Score(test, Names(model, AllProbs(model, test), 0.0), oos);

  std::printf("%-28s %9s %9s %9s %9s\n", "model", "accuracy", "in-scope", "oos rec", "macro F1");
  auto row = [](const char* name, const Metrics& x) {
    std::printf("%-28s %9.4f %9.4f %9.4f %9.4f\n", name, x.accuracy, x.in_scope_accuracy,
                x.oos_recall, x.macro_f1);
  };
  row("served (threshold)", m);
  row("baseline (no threshold)", base);
  Metrics val_m, val_base;
  if (!val.empty()) {  // where the threshold was chosen: optimistic by construction
    const auto vp = AllProbs(model, val);
    val_m = Score(val, Names(model, vp, threshold), oos);
    val_base = Score(val, Names(model, vp, 0.0), oos);
    row("val: served (threshold)", val_m);
    row("val: baseline", val_base);
  }
  std::printf(
      "test: %lld texts (%lld in scope, %lld oos); threshold %.3f; train %.2f s; "
      "predict %.1f us/text (median), %.1f us (p99)\n",
      static_cast<long long>(m.n), static_cast<long long>(m.n_in), static_cast<long long>(m.n_oos),
      threshold, train_seconds, predict_us, predict_p99_us);

  if (!a.json_out.empty()) {
    json out = ToJson(m);
    out["train_seconds"] = train_seconds;
    out["predict_us"] = predict_us;
    out["predict_p99_us"] = predict_p99_us;
    out["threshold"] = threshold;
    out["temperature"] = model.temperature();
    out["oos_recall_target"] = recall_target;
    out["oos_recall_floor"] = opt.oos_recall_floor;
    out["threshold_chosen_on"] = threshold_from;
    out["baseline_no_threshold"] = ToJson(base);
    if (!val.empty()) {
      out["val"] = ToJson(val_m);
      out["val_baseline_no_threshold"] = ToJson(val_base);
    }
    out["test"] = {{"texts", m.n}, {"in_scope", m.n_in}, {"oos", m.n_oos}};
    out["model"] = {{"labels", model.labels().size()},
                    {"features", model.features()},
                    {"classifier",
                     "one-vs-rest linear SVM (squared hinge, dual CD) + softmax regression "
                     "(AdaGrad) + cosine 1-NN per class"},
                    {"c", opt.c},
                    {"svm_temperature", opt.svm_temperature},
                    {"lr_weight", opt.lr_weight},
                    {"lr_epochs", opt.lr_epochs},
                    {"knn_weight", opt.knn_weight},
                    {"knn_max_df", opt.knn_max_df},
                    {"hash_bits", opt.hash_bits},
                    {"char_ngrams", {opt.char_min, opt.char_max}},
                    {"span_ngrams", {opt.span_min, opt.span_max}},
                    {"word_bigrams", opt.word_bigrams}};
    if (model.embedding_dims() > 0) {
      out["model"]["embeddings"] = {{"file", opt.embeddings},
                                    {"dims", model.embedding_dims()},
                                    {"words", model.embedding_words()},
                                    {"emb_weight", opt.emb_weight},
                                    {"emb_sif", opt.emb_sif},
                                    {"emb_oos_scale", opt.emb_oos_scale},
                                    {"emb_oos_weight", opt.emb_oos_weight}};
    }
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) Fail("cannot write " + a.json_out);
  }
}

}  // namespace

void RegisterEvalIntent(CLI::App& eval) {
  auto a = std::make_shared<EvalIntentArgs>();
  CLI::App* c = eval.add_subcommand("intent", "Intent classifier: accuracy, oos recall, latency");
  c->add_option("--train", a->train, "training CSV (text,label)")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--test", a->test, "test CSV (text,label)")->required()->check(CLI::ExistingFile);
  c->add_option("--val", a->val, "validation CSV for the threshold (default: 10% of --train)")
      ->check(CLI::ExistingFile);
  c->add_option("--json", a->json_out, "write the metrics as JSON here");
  c->add_option("--threshold", a->threshold, "fixed confidence threshold (skips choosing one)")
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--c", a->opt.c, "SVM cost (inverse regularisation)")->capture_default_str();
  c->add_option("--oos-recall", a->opt.oos_recall_target,
                "oos recall the threshold is chosen to reach on the held-out data (0: the "
                "smallest whose 95% Wilson lower bound reaches --oos-recall-floor)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--oos-recall-floor", a->opt.oos_recall_floor,
                "with --oos-recall 0: the oos recall to keep with 95% confidence")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  c->add_option("--lr-weight", a->opt.lr_weight,
                "ensemble weight of the softmax regression (0: off)")
      ->capture_default_str();
  c->add_option("--lr-epochs", a->opt.lr_epochs, "softmax regression AdaGrad passes")
      ->capture_default_str();
  c->add_option("--knn-weight", a->opt.knn_weight, "ensemble weight of the 1-NN cosine (0: off)")
      ->capture_default_str();
  c->add_option("--knn-max-df", a->opt.knn_max_df,
                "features in more training texts are left out of the 1-NN cosine")
      ->capture_default_str();
  c->add_option("--svm-temperature", a->opt.svm_temperature,
                "temperature of the SVM's log-softmax in the ensemble")
      ->capture_default_str();
  c->add_option("--hash-bits", a->opt.hash_bits, "log2 of the hashed feature space")
      ->capture_default_str();
  c->add_option("--min-count", a->opt.min_count, "drop features seen in fewer examples")
      ->capture_default_str();
  c->add_option("--char-min", a->opt.char_min, "shortest character n-gram within words")
      ->capture_default_str();
  c->add_option("--char-max", a->opt.char_max, "longest character n-gram within words")
      ->capture_default_str();
  c->add_option("--span-min", a->opt.span_min, "shortest character n-gram across words")
      ->capture_default_str();
  c->add_option("--span-max", a->opt.span_max,
                "longest character n-gram across words (< --span-min: none)")
      ->capture_default_str();
  c->add_flag("--bigrams,!--no-bigrams", a->opt.word_bigrams, "word bigrams");
  c->add_option("--embeddings", a->opt.embeddings,
                "word vectors (tools/fetch_embeddings.py) for sentence-vector features")
      ->check(CLI::ExistingFile);
  c->add_option("--embedding-words", a->opt.embedding_words,
                "with --embeddings: the file's most frequent words the model keeps (plus the "
                "training words)")
      ->capture_default_str();
  c->add_option("--emb-weight", a->opt.emb_weight,
                "with --embeddings: scale of the sentence vector among the features")
      ->capture_default_str();
  c->add_option("--emb-sif", a->opt.emb_sif, "with --embeddings: SIF weight a / (a + p(word))")
      ->capture_default_str();
  c->add_option("--emb-oos-scale", a->opt.emb_oos_scale,
                "with --embeddings: factor on the oos class's ensemble score")
      ->capture_default_str();
  c->add_option("--emb-oos-weight", a->opt.emb_oos_weight,
                "with --embeddings: weight of (1 - max cosine to an intent centroid) added to "
                "the oos class's score")
      ->capture_default_str();
  c->add_option("--threads", a->opt.threads, "classes trained in parallel")->capture_default_str();
  c->callback([a] { RunEvalIntent(*a); });
}

}  // namespace tailor::cli
