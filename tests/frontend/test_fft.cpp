#include <asrkit/frontend/fft.hpp>

#include <asrkit/core/rng.hpp>

#include <cmath>
#include <complex>
#include <vector>

#include "../test_util.hpp"

TEST_CASE("RealFft matches a direct DFT for even, odd-factor and power-of-two sizes", "[frontend][fft]") {
  asrkit::Rng rng(9);
  for (asrkit::index_t n : {8, 320, 400, 512, 30}) {
    std::vector<double> x(static_cast<std::size_t>(n));
    for (auto& v : x) v = rng.normal();
    asrkit::RealFft<double> fft(n);
    REQUIRE(fft.bins() == n / 2 + 1);
    const auto& X = fft.forward(x.data());
    for (asrkit::index_t k = 0; k <= n / 2; ++k) {
      std::complex<double> direct = 0;
      for (asrkit::index_t t = 0; t < n; ++t)
        direct += x[static_cast<std::size_t>(t)] * std::polar(1.0, -2 * M_PI * static_cast<double>(k * t) / static_cast<double>(n));
      REQUIRE(std::abs(X[static_cast<std::size_t>(k)] - direct) < 1e-9 * static_cast<double>(n));
    }
    std::vector<double> mag(static_cast<std::size_t>(n / 2 + 1)), pow(mag.size());
    fft.spectrum(x.data(), mag.data(), 1);
    fft.spectrum(x.data(), pow.data(), 2);
    for (std::size_t k = 0; k < mag.size(); ++k) CHECK(pow[k] == Approx(mag[k] * mag[k]));
  }
  REQUIRE_THROWS_ID(asrkit::RealFft<float>(1), asrkit::ValueError, "[asrkit.frontend.2]");
}
