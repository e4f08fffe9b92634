// asrkit's BNLSTM and ResidualLSTM against the explicit-loop torch modules of
// tests/reference/bn_lstm_reference.py: parameters and buffers are loaded by their asrkit names
// (for_each_parameter / for_each_buffer), then one training forward/backward with variable
// lengths is compared (output, input gradient, every parameter gradient, the running statistics
// after it) and an inference forward on a longer batch (T = 7 > T_max = 5: clamped statistics).
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/bn_lstm.hpp>
#include <asrkit/nn/residual_lstm.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {

// Largest |got - want| relative to the largest reference magnitude (at least 1e-3).
template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want) {
  REQUIRE(got.shape() == want.shape());
  double scale = 1e-3, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i)
    scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-10 : 1e-4;
}

template <class T, class Layer>
void compare(const std::string& name, Layer& layer) {
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  INFO("case " << name << " " << tag);
  const auto file = asrkit::SafetensorsFile::open(
      asrkit_test::data_path("bn_lstm_" + name + "_" + tag + ".safetensors"));
  int params = 0, buffers = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("parameter " << n);
    REQUIRE(file.contains(n));
    p.value = file.template read<T>(n);
    p.zero_grad();
    ++params;
  });
  layer.for_each_buffer([&](const std::string& n, auto& b) {
    INFO("buffer " << n);
    using B = typename std::decay_t<decltype(b)>::value_type;
    REQUIRE(file.contains(n));
    const auto v = file.template read<B>(n);
    REQUIRE(v.numel() == b.numel());  // rank-0 counts: the reader may give shape [1]
    std::copy(v.data(), v.data() + v.numel(), b.data());
    ++buffers;
  });
  const auto x = file.template read<T>("input");
  const auto lengths = file.template read<std::int32_t>("lengths");
  const auto y = layer.forward_train(x, lengths);
  CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
  const auto dx = layer.backward(file.template read<T>("grad_output"));
  CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("grad." << n);
    CHECK(max_err(p.grad, file.template read<T>("grad." + n)) < tolerance<T>());
  });
  layer.for_each_buffer([&](const std::string& n, auto& b) {
    INFO("after." << n);
    using B = typename std::decay_t<decltype(b)>::value_type;
    const auto want = file.template read<B>("after." + n);
    if constexpr (std::is_integral_v<B>) {
      REQUIRE(want.numel() == b.numel());
      CHECK(std::equal(want.data(), want.data() + want.numel(), b.data()));
    } else {
      CHECK(max_err(b, Tensor<B>(want.reshape(b.shape()))) < tolerance<T>());
    }
  });
  const auto y_eval = layer.forward(file.template read<T>("x_eval"),
                                    file.template read<std::int32_t>("lengths_eval"));
  CHECK(max_err(y_eval, file.template read<T>("output_eval")) < tolerance<T>());
  // Every parameter and buffer the reference saved was used.
  int saved_grads = 0, saved_after = 0;
  for (const auto& n : file.names()) {
    saved_grads += n.rfind("grad.", 0) == 0 ? 1 : 0;
    saved_after += n.rfind("after.", 0) == 0 ? 1 : 0;
  }
  CHECK(saved_grads == params);
  CHECK(saved_after == buffers);
}

template <class T>
void bnlstm(const std::string& name, bool bidirectional, asrkit::BNLSTMInputNorm input_norm) {
  asrkit::BNLSTMOptions o;
  o.max_steps = 5;
  o.bidirectional = bidirectional;
  o.input_norm = input_norm;
  asrkit::BNLSTM<T> layer(3, 3, o);
  compare<T>(name, layer);
}

template <class T>
void reslstm(const std::string& name, index_t input, bool bidirectional, bool peepholes) {
  asrkit::ResidualLSTMOptions o;
  o.cell_size = 3;
  o.output_size = 2;
  o.peepholes = peepholes;
  o.bidirectional = bidirectional;
  asrkit::ResidualLSTM<T> layer(input, o);
  compare<T>(name, layer);
}

template <class T>
void run_all() {
  bnlstm<T>("bnlstm", false, asrkit::BNLSTMInputNorm::per_step);
  bnlstm<T>("bnlstm_bi", true, asrkit::BNLSTMInputNorm::per_step);
  bnlstm<T>("bnlstm_seq_bi", true, asrkit::BNLSTMInputNorm::sequence);
  reslstm<T>("reslstm_proj", 3, false, true);
  reslstm<T>("reslstm_proj_bi", 3, true, true);
  reslstm<T>("reslstm_identity", 2, false, true);
  reslstm<T>("reslstm_nopeep", 3, false, false);
}

}  // namespace

TEST_CASE("BN-LSTM and residual LSTM match the torch reference modules (double)",
          "[parity][bn_lstm]") {
  run_all<double>();
}

TEST_CASE("BN-LSTM and residual LSTM match the torch reference modules (float)",
          "[parity][bn_lstm]") {
  run_all<float>();
}
