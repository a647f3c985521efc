#include "learning/random.h"

namespace tailor::learning {
namespace detail {
namespace {

// Ziggurat for the standard normal with 128 layers (Doornik 2005, "An
// improved ziggurat method to generate normal random samples").
constexpr int kLayers = 128;
constexpr double kR = 3.442619855899;
constexpr double kV = 9.91256303526217e-3;

Ziggurat MakeZiggurat() {
  Ziggurat z;
  double f = std::exp(-0.5 * kR * kR);
  z.x[0] = kV / f;
  z.x[1] = kR;
  z.x[kLayers] = 0;
  for (int i = 2; i < kLayers; ++i) {
    z.x[i] = std::sqrt(-2 * std::log(kV / z.x[i - 1] + f));
    f = std::exp(-0.5 * z.x[i] * z.x[i]);
  }
  for (int i = 0; i < kLayers; ++i) z.ratio[i] = z.x[i + 1] / z.x[i];
  return z;
}

}  // namespace

const Ziggurat kZiggurat = MakeZiggurat();

}  // namespace detail

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
  for (uint64_t& s : s_) s = SplitMix64(&seed);
}

double Rng::NormalSlow(unsigned i, double u) {
  const detail::Ziggurat& z = detail::kZiggurat;
  for (;;) {
    if (std::fabs(u) < z.ratio[i]) return u * z.x[i];
    if (i == 0) {
      // The tail beyond R (Marsaglia 1964).
      double x, y;
      do {
        x = std::log(UniformPositive()) / detail::kR;
        y = std::log(UniformPositive());
      } while (-2 * y < x * x);
      return u < 0 ? x - detail::kR : detail::kR - x;
    }
    // The wedge between the layer's rectangle and the density.
    const double x = u * z.x[i];
    const double f0 = std::exp(-0.5 * (z.x[i] * z.x[i] - x * x));
    const double f1 = std::exp(-0.5 * (z.x[i + 1] * z.x[i + 1] - x * x));
    if (f1 + Uniform() * (f0 - f1) < 1.0) return x;
    const uint64_t bits = Next();
    i = static_cast<unsigned>(bits & (detail::kLayers - 1));
    u = 2.0 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1.0;
  }
}

GammaShape MakeGammaShape(double shape) {
  shape = ClampShape(shape);
  GammaShape g;
  g.boost = shape < 1;
  g.cube = shape >= kCubeShape;
  g.inv_shape = 1 / shape;
  g.d = (g.boost ? shape + 1 : shape) - 1.0 / 3.0;
  g.c = 1 / std::sqrt(9 * g.d);
  return g;
}

BetaShape MakeBetaShape(double alpha, double beta) {
  return {MakeGammaShape(alpha), MakeGammaShape(beta)};
}

}  // namespace tailor::learning
