// Fast, deterministic random numbers for the exploration policies.
//
// A decision draws hundreds to thousands of Beta variates (its own pick plus
// the Monte Carlo draws behind its propensities), so the generator and the
// samplers are built for speed, not generality:
//   - Rng: xoshiro256++ (Blackman and Vigna 2019) seeded through splitmix64,
//     so any 64-bit seed (0 included) gives a well-mixed state; 32 bytes of
//     state on the stack instead of std::mt19937's 2.5 KB per decision.
//   - Normal(): a 128-layer ziggurat (Marsaglia and Tsang 2000, in the
//     double-precision form of Doornik 2005); one 64-bit draw in ~99% of calls.
//   - Gamma: Marsaglia and Tsang (2000) with the squeeze; shape < 1 by
//     Gamma(a + 1) * U^(1/a). From shape 5 on, the method's proposal
//     d (1 + c z)^3 is returned without the accept/reject step (a
//     Wilson-Hilferty cube of one normal, with the exact mean): one normal
//     instead of a normal, a uniform and a test, at a total variation
//     distance from Gamma(a) of about 0.02 / a (0.44% at 5, 0.06% at 32,
//     0.02% at 100; computed by numerical integration). Beta(a, b) =
//     X / (X + Y). The shape constants are computed once per candidate
//     (GammaShape / BetaShape), not once per draw.
//   The policies' propensities are estimated with the same samplers as
//   their decisions, so this approximation never makes a logged propensity
//   disagree with the policy that was run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tailor::learning {

// Advances *state and returns the next splitmix64 output.
uint64_t SplitMix64(uint64_t* state);

namespace detail {
// The ziggurat's 128 layers (random.cc): x[0] is the base layer's width,
// x[1] = R, x[128] = 0; ratio[i] = x[i + 1] / x[i], the share of layer i
// that lies inside the density.
struct Ziggurat {
  double x[129];
  double ratio[128];
};
extern const Ziggurat kZiggurat;
}  // namespace detail

class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t Next() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // (0, 1]: safe to take the log of.
  double UniformPositive() { return static_cast<double>((Next() >> 11) + 1) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is
  // below 2^-32 for the n a policy sees).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>(((Next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }
  // Standard normal. The fast path (one draw, ~99% of calls) is inline so
  // that the generator's state stays in registers in the policies' loops.
  double Normal() {
    const uint64_t bits = Next();
    const unsigned i = static_cast<unsigned>(bits & 127);                        // bits 0..6
    const double u = 2.0 * (static_cast<double>(bits >> 11) * 0x1.0p-53) - 1.0;  // bits 11..63
    if (std::fabs(u) < detail::kZiggurat.ratio[i]) [[likely]]
      return u * detail::kZiggurat.x[i];
    return NormalSlow(i, u);
  }

 private:
  // The base layer's tail and the wedges; draws again when rejected.
  double NormalSlow(unsigned i, double u);
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Gamma(shape, 1) with its Marsaglia-Tsang constants.
struct GammaShape {
  double d = 2.0 / 3.0;  // shape' - 1/3, shape' = shape (or shape + 1 when boosted)
  double c = 0;          // 1 / sqrt(9 d)
  double inv_shape = 1;  // 1 / shape, for the shape < 1 boost
  bool boost = false;    // shape < 1: draw Gamma(shape + 1) * U^(1/shape)
  bool cube = false;     // shape >= kCubeShape: the proposal alone
};
inline constexpr double kCubeShape = 5;

// Shapes are clamped to [0.01, 1e12], NaN reads 0.01 (a posterior outside
// that is a bug upstream; the clamp keeps the draw finite).
inline double ClampShape(double shape) {
  return !(shape >= 0.01) ? 0.01 : (shape > 1e12 ? 1e12 : shape);
}
GammaShape MakeGammaShape(double shape);

inline double SampleGamma(const GammaShape& g, Rng& rng) {
  if (g.cube) {
    // v <= 0 needs z <= -sqrt(9 d) <= -6.7 sigma at shape 5: clamp, do not loop.
    const double v = std::max(1 + g.c * rng.Normal(), 0.0);
    return g.d * v * v * v;
  }
  double r;
  for (;;) {
    double x, v;
    do {
      x = rng.Normal();
      v = 1 + g.c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.UniformPositive();
    const double x2 = x * x;
    // The squeeze accepts ~98% without a log.
    if (u < 1 - 0.0331 * x2 * x2 || std::log(u) < 0.5 * x2 + g.d * (1 - v + std::log(v))) {
      r = g.d * v;
      break;
    }
  }
  if (g.boost) r *= std::exp(std::log(rng.UniformPositive()) * g.inv_shape);
  return r;
}

struct BetaShape {
  GammaShape a, b;
};
BetaShape MakeBetaShape(double alpha, double beta);

// Beta(alpha, beta) in [0, 1].
inline double SampleBeta(const BetaShape& s, Rng& rng) {
  const double x = SampleGamma(s.a, rng);
  const double y = SampleGamma(s.b, rng);
  const double sum = x + y;
  // Both underflow only for shapes near the 0.01 floor, where the mass sits
  // at 0 and 1; 0.5 keeps the draw finite.
  return sum > 0 ? x / sum : 0.5;
}

}  // namespace tailor::learning
