// The metrics behind the README's model figures, against values computed by
// hand: AUC (plugins/dna/tabular.cc: `tailor eval propensity`, the DNA fit
// report) and HR / precision / recall / nDCG / AP at k (tools/eval/: `tailor
// eval recs`).
#include <gtest/gtest.h>

#include <cmath>

#include "dna/tabular.h"
#include "ranking_metrics.h"

namespace tailor {
namespace {

using dna::Auc;
using eval::RankingScores;
using eval::ScoreRanking;

// AUC = the share of (positive, negative) pairs ranked right, a tie half.
TEST(AucMetric, CountsCorrectlyOrderedPairs) {
  // Positives 0.9 and 0.4, negatives 0.1 and 0.6: 0.9 beats both, 0.4 beats
  // 0.1 only: 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(Auc({1, 0, 1, 0}, {0.9, 0.1, 0.4, 0.6}), 0.75);
  EXPECT_DOUBLE_EQ(Auc({1, 0, 1, 0}, {0.9, 0.1, 0.8, 0.2}), 1.0);
  EXPECT_DOUBLE_EQ(Auc({0, 1, 0, 1}, {0.9, 0.1, 0.8, 0.2}), 0.0);
}

TEST(AucMetric, TiesCountHalf) {
  // Positive 0.5 ties negative 0.5 (1/2) and beats 0.2 (1); positive 0.8
  // beats both (2): 3.5 of 4.
  EXPECT_DOUBLE_EQ(Auc({1, 0, 1, 0}, {0.5, 0.5, 0.8, 0.2}), 0.875);
  // A tie across several of each: positive 0.3 ties two negatives at 0.3
  // (1/2 + 1/2) and beats 0.1 (1); positive 0.7 beats all three: 5 of 6.
  EXPECT_NEAR(Auc({1, 1, 0, 0, 0}, {0.3, 0.7, 0.3, 0.3, 0.1}), 5.0 / 6.0, 1e-12);
  // Every score equal: no better than chance.
  EXPECT_DOUBLE_EQ(Auc({1, 0, 0, 1, 0}, {0.4, 0.4, 0.4, 0.4, 0.4}), 0.5);
}

TEST(AucMetric, OneClassOnlyIsChance) {
  EXPECT_DOUBLE_EQ(Auc({1, 1, 1}, {0.1, 0.5, 0.9}), 0.5);
  EXPECT_DOUBLE_EQ(Auc({0, 0}, {0.1, 0.9}), 0.5);
}

TEST(RankingMetrics, SeveralRelevantItemsAtRanksTwoAndFour) {
  // Relevant 20, 40 and 99 (never ranked); hits at ranks 2 and 4 of 5.
  RankingScores m = ScoreRanking({10, 20, 30, 40, 50}, {20, 40, 99}, 5);
  EXPECT_DOUBLE_EQ(m.hr, 1.0);
  EXPECT_DOUBLE_EQ(m.precision, 0.4);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  // DCG = 1/log2(3) + 1/log2(5) = 1.0616063; the ideal list has 3 hits:
  // 1 + 1/log2(3) + 1/2 = 2.1309298.
  EXPECT_NEAR(m.ndcg, 0.4981892575, 1e-9);
  // AP: precision 1/2 at rank 2 and 2/4 at rank 4, over min(3, 5) = 3.
  EXPECT_NEAR(m.ap, 1.0 / 3.0, 1e-12);
}

TEST(RankingMetrics, PerfectAndLateHits) {
  RankingScores top = ScoreRanking({1, 2, 3}, {1, 2}, 3);
  EXPECT_DOUBLE_EQ(top.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(top.ap, 1.0);
  EXPECT_DOUBLE_EQ(top.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(top.recall, 1.0);
  // One of two relevant, at rank 3: (1/log2(4)) / (1 + 1/log2(3)) = 0.3065736.
  RankingScores late = ScoreRanking({7, 8, 1}, {1, 2}, 3);
  EXPECT_NEAR(late.ndcg, 0.3065735964, 1e-9);
  EXPECT_NEAR(late.ap, (1.0 / 3.0) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(late.hr, 1.0);
}

TEST(RankingMetrics, MoreRelevantThanKIsIdealAtK) {
  // Five relevant, k = 2, both shown are relevant: a perfect list at k.
  RankingScores m = ScoreRanking({1, 2}, {1, 2, 3, 4, 5}, 2);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.ap, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 0.4);
}

TEST(RankingMetrics, NothingRelevantInTheListScoresZero) {
  RankingScores m = ScoreRanking({1, 2, 3}, {7}, 3);
  EXPECT_EQ(m.hr, 0.0);
  EXPECT_EQ(m.precision, 0.0);
  EXPECT_EQ(m.recall, 0.0);
  EXPECT_EQ(m.ndcg, 0.0);
  EXPECT_EQ(m.ap, 0.0);
}

TEST(RankingMetrics, NoRelevantItemAtAllIsZeroNotNaN) {
  RankingScores m = ScoreRanking({1, 2, 3}, {}, 3);
  EXPECT_EQ(m.hr, 0.0);
  EXPECT_EQ(m.recall, 0.0);
  EXPECT_EQ(m.ndcg, 0.0);  // 0/0 would be NaN and poison the average
  EXPECT_EQ(m.ap, 0.0);
}

TEST(RankingMetrics, OnlyTheFirstKCountAndAShortListIsNotExcused) {
  // A hit at rank 4 is outside k = 3.
  EXPECT_EQ(ScoreRanking({1, 2, 3, 4}, {4}, 3).hr, 0.0);
  // One item shown where k = 3: precision still divides by k.
  RankingScores m = ScoreRanking({5}, {5}, 3);
  EXPECT_DOUBLE_EQ(m.precision, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.hr, 1.0);
}

}  // namespace
}  // namespace tailor
