#include "decision/diversify.h"

#include <gtest/gtest.h>

#include <vector>

namespace tailor {
namespace {

std::vector<size_t> Order(const std::vector<DiversifyPick>& picks) {
  std::vector<size_t> out;
  for (const auto& p : picks) out.push_back(p.from);
  return out;
}

// Five candidates; 0, 1 and 2 are near-duplicates of each other, 3 and 4
// are unrelated to everything.
std::vector<float> Similarities() {
  std::vector<float> s(25, 0.0f);
  for (size_t i : {0, 1, 2})
    for (size_t j : {0, 1, 2}) s[i * 5 + j] = i == j ? 1.0f : 0.9f;
  return s;
}

TEST(Diversify, ZeroLambdaKeepsTheRanking) {
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.5};
  const auto picks = Diversify(scores, Similarities(), 0.0, 3);
  EXPECT_EQ(Order(picks), (std::vector<size_t>{0, 1, 2, 3, 4}));
  for (const auto& p : picks) EXPECT_EQ(p.penalty, 0.0);
}

TEST(Diversify, NearDuplicatesMakeRoomForOtherItems) {
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.5};
  // Penalty weight 0.5 * 0.9 = 0.45: item 1 (0.8 - 0.405) falls below 3 and 4.
  const auto picks = Diversify(scores, Similarities(), 0.5, 3);
  EXPECT_EQ(Order(picks), (std::vector<size_t>{0, 3, 4, 1, 2}));
  EXPECT_EQ(picks[1].similarity, 0.0);
  // The rest keep their order and carry no penalty: they were not picked.
  EXPECT_EQ(picks[3].penalty, 0.0);

  // With room for four, item 1 comes back, penalised for its likeness to 0.
  const auto four = Diversify(scores, Similarities(), 0.5, 4);
  EXPECT_EQ(Order(four), (std::vector<size_t>{0, 3, 4, 1, 2}));
  EXPECT_NEAR(four[3].penalty, 0.5 * 0.9 * 0.9, 1e-6);
  EXPECT_NEAR(four[3].similarity, 0.9, 1e-6);
  EXPECT_EQ(four[3].similar_to, 0u);
}

TEST(Diversify, LambdaIsRelativeToTheBestScore) {
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.5};
  std::vector<double> scaled;
  for (double s : scores) scaled.push_back(s * 40);
  for (double lambda : {0.05, 0.2, 0.5})
    EXPECT_EQ(Order(Diversify(scores, Similarities(), lambda, 4)),
              Order(Diversify(scaled, Similarities(), lambda, 4)))
        << lambda;
}

TEST(Diversify, SmallLambdaOnlyReordersNearTies) {
  // 0 and 1 are alike; a penalty of 0.05 x 1.0 moves 1 below the unrelated
  // items within 0.05 of it, and no further.
  std::vector<float> s(16, 0.0f);
  s[0 * 4 + 1] = s[1 * 4 + 0] = 1.0f;
  EXPECT_EQ(Order(Diversify(std::vector<double>{1.0, 0.80, 0.795, 0.79}, s, 0.05, 4)),
            (std::vector<size_t>{0, 2, 3, 1}));
  EXPECT_EQ(Order(Diversify(std::vector<double>{1.0, 0.90, 0.795, 0.79}, s, 0.05, 4)),
            (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(Diversify, EmptyAndShortLists) {
  EXPECT_TRUE(Diversify({}, {}, 0.5, 10).empty());
  const std::vector<double> one = {0.3};
  const std::vector<float> s = {1.0f};
  const auto picks = Diversify(one, s, 0.5, 10);
  ASSERT_EQ(picks.size(), 1u);
  EXPECT_EQ(picks[0].from, 0u);
}

}  // namespace
}  // namespace tailor
