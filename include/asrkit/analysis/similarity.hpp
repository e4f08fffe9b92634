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

/// SVCCA of every pair of layers (each [N, D_l], the same N data points): an L x L symmetric table.
template <class T>
std::vector<std::vector<SvccaResult>> similarity_results(const std::vector<Tensor<T>>& layers,
                                                         const SvccaOptions& options = {}) {
  detail::check_options(options);
  const std::size_t count = layers.size();
  for (std::size_t l = 0; l < count; ++l) {
    const std::string name = "layers[" + std::to_string(l) + "]";
    if (l > 0 && layers[l].rank() == 2 && layers[0].rank() == 2 && layers[l].dim(0) != layers[0].dim(0))
      throw ShapeError("svcca.2", detail::str("argument ", name, " must hold the same data points (rows) as layers[0]: "
                                              "layers[0] has shape ", layers[0].shape().str(), ", ", name,
                                              " has shape ", layers[l].shape().str()));
    detail::check_activations(layers[l].view(), name.c_str());
  }
  const detail::SerialEigen serial;
  std::vector<SvdReduction> red(count);
  std::vector<Eigen::MatrixXd> cov(count);
  for (std::size_t l = 0; l < count; ++l) {
    const std::string name = "layers[" + std::to_string(l) + "]";
    red[l].rows = layers[l].dim(0);
    red[l].mean = column_means(layers[l].view(), name.c_str());
    cov[l] = covariance(layers[l].view(), red[l].mean);
  }
  // One eigensolver per layer, the layers shared among the threads.
  parallel_for(static_cast<index_t>(count), [&](index_t l) {
    detail::reduce_covariance<T>(red[static_cast<std::size_t>(l)], cov[static_cast<std::size_t>(l)], options);
  });
  cov.clear();
  std::vector<Tensor<T>> proj;
  for (std::size_t l = 0; l < count; ++l) proj.push_back(project(layers[l].view(), red[l].mean, red[l].basis));
  std::vector<std::vector<SvccaResult>> out(count, std::vector<SvccaResult>(count));
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t j = i; j < count; ++j) {
      const Eigen::MatrixXd cross =
          i == j ? red[i].reduced
                 : cross_covariance<T>(proj[i].view(), Eigen::VectorXd::Zero(red[i].kept()), proj[j].view(),
                                       Eigen::VectorXd::Zero(red[j].kept()));
      out[i][j] = detail::svcca_from_reductions(red[i], red[j], cross, options);
      if (j != i) out[j][i] = detail::svcca_from_reductions(red[j], red[i], cross.transpose(), options);
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
