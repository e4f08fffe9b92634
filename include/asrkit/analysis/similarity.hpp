// asrkit/analysis/similarity.hpp - the layer-by-layer SVCCA matrix S_ij = SVCCA(X^(i), X^(j))
// (SPECS §8.3, strategy 3; Raghu et al. 2017, Fig. 4).
//
//   std::vector<asrkit::Tensor<float>> layers = ...;        // each [N, D_l], the same N frames
//   auto s = asrkit::analysis::similarity_matrix(layers);  // L x L, s[i][j] = SVCCA mean
//   auto all = asrkit::analysis::similarity_results(layers);  // every SvccaResult
//
// Each layer is summarised once (means, covariance eigenpairs, kept basis U_l) and projected once,
// P_l = (X_l - mu_l) U_l [N, k_l]; a pair then costs one k_i x k_j product over N
// (analysis/svcca.hpp for the method). The projections are held in T: L·N·max(k) values.
#pragma once

#include <Eigen/Dense>

#include <string>
#include <utility>
#include <vector>

#include <asrkit/analysis/covariance.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>

namespace asrkit {
namespace analysis {

/// Which number of an SvccaResult a similarity matrix holds.
enum class SimilarityValue { mean, mean_squared, thresholded_mean, pwcca };

inline double similarity_value(const SvccaResult& r, SimilarityValue v) {
  switch (v) {
    case SimilarityValue::mean_squared: return r.mean_squared;
    case SimilarityValue::thresholded_mean: return r.thresholded_mean;
    case SimilarityValue::pwcca: return r.pwcca;
    case SimilarityValue::mean: break;
  }
  return r.mean;
}

namespace detail {

/// Every layer's reduction (means, covariance eigenpairs) and its projection onto the kept
/// directions, computed once, for the layers flagged in `used`.
template <class T>
struct LayerReductions {
  std::vector<SvdReduction> red;
  std::vector<Tensor<T>> proj;

  LayerReductions(const std::vector<Tensor<T>>& layers, const std::vector<bool>& used, const SvccaOptions& options)
      : red(layers.size()), proj(layers.size()) {
    check_options(options);
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const std::string name = "layers[" + std::to_string(l) + "]";
      if (l > 0 && layers[l].rank() == 2 && layers[0].rank() == 2 && layers[l].dim(0) != layers[0].dim(0))
        throw ShapeError("svcca.2", str("argument ", name, " must hold the same data points (rows) as layers[0]: "
                                        "layers[0] has shape ", layers[0].shape().str(), ", ", name,
                                        " has shape ", layers[l].shape().str()));
      check_activations(layers[l].view(), name.c_str());
    }
    std::vector<Eigen::MatrixXd> cov(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
      if (!used[l]) continue;
      const std::string name = "layers[" + std::to_string(l) + "]";
      red[l].rows = layers[l].dim(0);
      red[l].mean = column_means(layers[l].view(), name.c_str());
      cov[l] = covariance(layers[l].view(), red[l].mean);
    }
    // One eigensolver per layer, the layers shared among the threads.
    parallel_for(static_cast<index_t>(layers.size()), [&](index_t l) {
      const auto i = static_cast<std::size_t>(l);
      if (used[i]) reduce_covariance<T>(red[i], cov[i], options);
    });
    for (std::size_t l = 0; l < layers.size(); ++l)
      if (used[l]) proj[l] = project(layers[l].view(), red[l].mean, red[l].basis);
  }

  /// The reduced cross-covariance of layers i and j (i's reduced covariance when i == j).
  Eigen::MatrixXd cross(std::size_t i, std::size_t j) const {
    if (i == j) return red[i].reduced;
    return cross_covariance<T>(proj[i].view(), Eigen::VectorXd::Zero(red[i].kept()), proj[j].view(),
                               Eigen::VectorXd::Zero(red[j].kept()));
  }
};

}  // namespace detail

/// SVCCA of the requested pairs (i, j) of layers (each [N, D_l], the same N data points), in
/// order; a layer's reduction is computed once however many pairs it is in (only layers in some
/// pair are reduced).
template <class T>
std::vector<SvccaResult> svcca_pairs(const std::vector<Tensor<T>>& layers,
                                     const std::vector<std::pair<std::size_t, std::size_t>>& pairs,
                                     const SvccaOptions& options = {}) {
  std::vector<bool> used(layers.size(), false);
  for (const auto& [i, j] : pairs) {
    if (i >= layers.size() || j >= layers.size())
      throw ValueError("svcca.6", detail::str("svcca_pairs: pair (", i, ", ", j, ") names a layer outside [0, ",
                                              layers.size(), ")"));
    used[i] = used[j] = true;
  }
  const detail::SerialEigen serial;
  const detail::LayerReductions<T> lr(layers, used, options);
  std::vector<SvccaResult> out;
  for (const auto& [i, j] : pairs) out.push_back(detail::svcca_from_reductions(lr.red[i], lr.red[j], lr.cross(i, j), options));
  return out;
}

/// SVCCA of every pair of layers (each [N, D_l], the same N data points): an L x L symmetric table.
template <class T>
std::vector<std::vector<SvccaResult>> similarity_results(const std::vector<Tensor<T>>& layers,
                                                         const SvccaOptions& options = {}) {
  const std::size_t count = layers.size();
  const detail::SerialEigen serial;
  const detail::LayerReductions<T> lr(layers, std::vector<bool>(count, true), options);
  std::vector<std::vector<SvccaResult>> out(count, std::vector<SvccaResult>(count));
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t j = i; j < count; ++j) {
      const Eigen::MatrixXd cross = lr.cross(i, j);
      out[i][j] = detail::svcca_from_reductions(lr.red[i], lr.red[j], cross, options);
      if (j != i) out[j][i] = detail::svcca_from_reductions(lr.red[j], lr.red[i], cross.transpose(), options);
    }
  return out;
}

/// The L x L matrix of one SvccaResult number (by default the SVCCA mean) for every pair of layers.
template <class T>
std::vector<std::vector<double>> similarity_matrix(const std::vector<Tensor<T>>& layers,
                                                   const SvccaOptions& options = {},
                                                   SimilarityValue value = SimilarityValue::mean) {
  const auto results = similarity_results(layers, options);
  std::vector<std::vector<double>> out(results.size(), std::vector<double>(results.size()));
  for (std::size_t i = 0; i < results.size(); ++i)
    for (std::size_t j = 0; j < results.size(); ++j) out[i][j] = similarity_value(results[i][j], value);
  return out;
}

}  // namespace analysis
}  // namespace asrkit
