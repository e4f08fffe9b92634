// asrkit's RNN, GRU, LSTM and BN-RNN against PyTorch (tests/reference/recurrent_reference.py):
// torch.nn.RNN / GRU / LSTM on packed variable-length batches, and explicit-loop reference
// modules for DS2's conventions (z weighting the candidate, reset before U_h, clipped ReLU,
// shared input weights with summed directions, sequence-wise BN). Weights are loaded by their
// state_dict names; output, input gradient and every parameter gradient are compared (and BN's
// running statistics after the step), in float and double.
#include <asrkit/io/safetensors.hpp>
#include <asrkit/nn/recurrent.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "../test_util.hpp"

using asrkit::index_t;
using asrkit::Tensor;

namespace {

constexpr index_t kF = 5, kH = 6;

template <class T>
double max_err(const Tensor<T>& got, const Tensor<T>& want) {
  REQUIRE(got.shape() == want.shape());
  double scale = 1e-3, worst = 0;
  for (index_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(double(want.data()[i])));
  for (index_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::fabs(double(got.data()[i]) - double(want.data()[i])));
  return worst / scale;  // relative to the largest reference magnitude
}

template <class T>
double tolerance() {
  return std::is_same_v<T, double> ? 1e-12 : 2e-6;
}

template <class T, class Layer>
void compare(const std::string& name, Layer& layer) {
  INFO("case " << name << (std::is_same_v<T, double> ? " f64" : " f32"));
  const std::string tag = std::is_same_v<T, double> ? "f64" : "f32";
  const auto file = asrkit::SafetensorsFile::open(
      asrkit_test::data_path("recurrent_" + name + "_" + tag + ".safetensors"));
  int loaded = 0;
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("parameter " << n);
    const auto v = file.template read<T>(n);
    REQUIRE(v.shape() == p.value.shape());
    p.value = v;
    p.zero_grad();
    ++loaded;
  });
  int grads_in_file = 0;
  for (const auto& n : file.names()) grads_in_file += n.rfind("grad.", 0) == 0 ? 1 : 0;
  CHECK(loaded == grads_in_file);  // every PyTorch parameter has a counterpart
  const auto x = file.template read<T>("input");
  const auto lengths = file.template read<std::int32_t>("lengths");
  const auto y = layer.forward_train(x, lengths);
  CHECK(max_err(y, file.template read<T>("output")) < tolerance<T>());
  if (!layer.options().input_batch_norm)
    CHECK(max_err(layer.forward(x, lengths), file.template read<T>("output")) < tolerance<T>());
  const auto dx = layer.backward(file.template read<T>("grad_output"));
  CHECK(max_err(dx, file.template read<T>("grad_input")) < tolerance<T>());
  layer.for_each_parameter([&](const std::string& n, asrkit::Parameter<T>& p) {
    INFO("grad." << n);
    CHECK(max_err(p.grad, file.template read<T>("grad." + n)) < tolerance<T>());
  });
  layer.for_each_buffer([&](const std::string& n, auto& b) {
    using B = typename std::decay_t<decltype(b)>::value_type;
    if constexpr (std::is_floating_point_v<B>) {
      INFO("after." << n);
      CHECK(max_err(b, file.template read<T>("after." + n)) < tolerance<T>());
    }
  });
}

template <class T>
void run_all() {
  using asrkit::RecurrentActivation;
  using asrkit::RecurrentMerge;
  {
    asrkit::RNN<T> rnn(kF, kH);
    compare<T>("rnn_tanh", rnn);
    asrkit::RNNOptions o;
    o.activation = RecurrentActivation::relu;
    o.bidirectional = true;
    asrkit::RNN<T> relu(kF, kH, o);
    compare<T>("rnn_relu_bi", relu);
    asrkit::RNNOptions c;
    c.activation = RecurrentActivation::clipped_relu;
    c.clip = 0.8;
    c.bidirectional = true;
    c.merge = RecurrentMerge::sum;
    asrkit::RNN<T> crelu(kF, kH, c);
    compare<T>("rnn_crelu_bi_sum", crelu);
    asrkit::RNNOptions bn;
    bn.activation = RecurrentActivation::clipped_relu;
    bn.bidirectional = true;
    bn.share_input_weights = true;
    bn.merge = RecurrentMerge::sum;
    asrkit::BatchNormRNN<T> bnrnn(kF, kH, bn);
    compare<T>("bnrnn_ds2", bnrnn);
  }
  {
    asrkit::GRU<T> gru(kF, kH);
    compare<T>("gru", gru);
    asrkit::GRUOptions bi;
    bi.bidirectional = true;
    asrkit::GRU<T> gru_bi(kF, kH, bi);
    compare<T>("gru_bi", gru_bi);
    asrkit::GRUOptions ds2;
    ds2.update = asrkit::GRUUpdate::ds2;
    asrkit::GRU<T> gru_ds2(kF, kH, ds2);
    compare<T>("gru_ds2", gru_ds2);
    ds2.bidirectional = true;
    ds2.share_input_weights = true;
    ds2.merge = RecurrentMerge::sum;
    ds2.candidate = RecurrentActivation::clipped_relu;
    ds2.clip = 0.9;
    asrkit::GRU<T> gru_shared(kF, kH, ds2);
    compare<T>("gru_ds2_bi_shared_sum_crelu", gru_shared);
    asrkit::GRUOptions before;
    before.reset = asrkit::GRUReset::before;
    asrkit::GRU<T> gru_before(kF, kH, before);
    compare<T>("gru_before", gru_before);
    before.update = asrkit::GRUUpdate::ds2;
    before.bidirectional = true;
    asrkit::GRU<T> gru_before_bi(kF, kH, before);
    compare<T>("gru_before_ds2_bi", gru_before_bi);
    asrkit::GRUOptions bn;
    bn.bidirectional = true;
    bn.input_batch_norm = true;
    asrkit::GRU<T> bngru(kF, kH, bn);
    compare<T>("bngru_bi", bngru);
  }
  {
    asrkit::LSTM<T> lstm(kF, kH);
    compare<T>("lstm", lstm);
    asrkit::LSTMOptions bi;
    bi.bidirectional = true;
    asrkit::LSTM<T> lstm_bi(kF, kH, bi);
    compare<T>("lstm_bi", lstm_bi);
    asrkit::LSTMOptions nb;
    nb.bias = false;
    asrkit::LSTM<T> lstm_nb(kF, kH, nb);
    compare<T>("lstm_nobias", lstm_nb);
  }
}

}  // namespace

TEST_CASE("Recurrent layers match PyTorch (double)", "[parity][recurrent]") { run_all<double>(); }
TEST_CASE("Recurrent layers match PyTorch (float)", "[parity][recurrent]") { run_all<float>(); }
