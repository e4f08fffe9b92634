// asrkit's cca / svcca / pwcca / similarity_matrix against the numpy reference of
// tests/reference/svcca_reference.py (cca_core semantics computed on the data: np.cov, pinv, eigh,
// svd; SVCCA through an SVD of the raw centred activations). asrkit works from covariances, so
// this checks that route as well as the numbers.
#include <asrkit/analysis/cca.hpp>
#include <asrkit/analysis/similarity.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/io/safetensors.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;
namespace an = asrkit::analysis;

namespace {

const char* const kCases[] = {"random_tall", "random_square", "correlated_tall", "correlated_square", "offset", "low_rank"};

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-9 : 2e-4;
}

std::vector<double> values(const asrkit::SafetensorsFile& f, const std::string& name) {
  const auto t = f.read<double>(name);
  return std::vector<double>(t.data(), t.data() + t.numel());
}
double value(const asrkit::SafetensorsFile& f, const std::string& name) { return values(f, name).at(0); }

void check_rho(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("rho[" << i << "]");
    CHECK(got[i] == Approx(want[i]).margin(tol));
  }
}

// mean, mean², thresholded mean of a result against "<prefix>.*"
void check_summary(const an::CcaResult& r, const asrkit::SafetensorsFile& f, const std::string& prefix, double tol) {
  check_rho(r.rho, values(f, prefix + ".rho"), tol);
  CHECK(r.mean == Approx(value(f, prefix + ".mean")).margin(tol));
  CHECK(r.mean_squared == Approx(value(f, prefix + ".mean_squared")).margin(tol));
  CHECK(r.thresholded_mean == Approx(value(f, prefix + ".thresholded_mean")).margin(tol));
}

template <class T>
void check_case(const std::string& name) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  INFO("case " << name << " " << tag);
  const auto f = asrkit::SafetensorsFile::open(asrkit_test::data_path("svcca_" + name + "_" + tag + ".safetensors"));
  const Tensor<T> x = f.read<T>("x"), y = f.read<T>("y");
  const double tol = tolerance<T>();

  // low_rank's raw covariance has a condition number near 1e6 and 8 canonical correlations within
  // 1e-4 of 1 (ill-determined singular vectors, hence PWCCA weights): raw CCA there is not
  // well-posed in float, which is why SVCCA reduces first. Its SVCCA numbers are checked below.
  if (name != "low_rank") {
    const an::CcaResult c = an::cca(x, y);
    check_summary(c, f, "cca", tol);
    CHECK(c.threshold_index == static_cast<index_t>(value(f, "cca.threshold_index")));
    CHECK(an::pwcca(x, y) == Approx(value(f, "cca.pwcca")).margin(tol));
  }

  const an::SvccaResult s = an::svcca(x, y);
  const auto kept = values(f, "svcca.kept");
  REQUIRE(s.kept_x == static_cast<index_t>(kept[0]));
  REQUIRE(s.kept_y == static_cast<index_t>(kept[1]));
  check_summary(s, f, "svcca", tol);
  CHECK(s.pwcca == Approx(value(f, "svcca.pwcca")).margin(tol));

  // The similarity matrix's off-diagonal entry is the same SVCCA (cached reductions, projections).
  const auto m = an::similarity_matrix(std::vector<Tensor<T>>{x, y});
  CHECK(m[0][1] == Approx(value(f, "svcca.mean")).margin(tol));
  CHECK(m[1][0] == Approx(value(f, "svcca.mean")).margin(tol));
}

}  // namespace

TEST_CASE("CCA, SVCCA and PWCCA match the numpy reference (double)", "[parity][svcca]") {
  for (const char* name : kCases) check_case<double>(name);
}

TEST_CASE("CCA, SVCCA and PWCCA match the numpy reference (float)", "[parity][svcca]") {
  for (const char* name : kCases) check_case<float>(name);
}
