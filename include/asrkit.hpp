// asrkit.hpp - the CPU umbrella header: everything asrkit offers without CUDA.
//
// CUDA specialisations live in <asrkit/cuda/...> and are included explicitly by .cu files;
// this header never pulls them in, so a CPU-only build needs no CUDA toolkit.
#pragma once

#include <asrkit/core/config.hpp>
#include <asrkit/core/error.hpp>
#include <asrkit/core/device.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/core/threading.hpp>
#include <asrkit/core/rng.hpp>

#include <asrkit/io/dtype.hpp>
#include <asrkit/io/safetensors.hpp>
#include <asrkit/io/wav.hpp>
#include <asrkit/io/sndfile.hpp>  // empty unless ASRKIT_WITH_SNDFILE (link asrkit::sndfile)
#include <asrkit/io/arpa.hpp>
#include <asrkit/io/png.hpp>
#include <asrkit/ops/gemm.hpp>
#include <asrkit/ops/packed_gemm.hpp>
#include <asrkit/ops/conv.hpp>
#include <asrkit/ops/activation.hpp>
#include <asrkit/ops/softmax.hpp>
#include <asrkit/ops/reduce.hpp>
#include <asrkit/ops/depthwise_conv1d.hpp>
#include <asrkit/nn/parameter.hpp>
#include <asrkit/nn/init.hpp>
#include <asrkit/nn/input_cache.hpp>
#include <asrkit/nn/linear.hpp>
#include <asrkit/nn/conv.hpp>
#include <asrkit/nn/activation.hpp>
#include <asrkit/nn/batch_norm.hpp>
#include <asrkit/nn/layer_norm.hpp>
#include <asrkit/nn/dropout.hpp>
#include <asrkit/nn/sequential.hpp>
#include <asrkit/nn/recurrent.hpp>
#include <asrkit/nn/bn_lstm.hpp>
#include <asrkit/nn/residual_lstm.hpp>
#include <asrkit/nn/row_conv.hpp>
#include <asrkit/nn/random_walk.hpp>
#include <asrkit/nn/positional_encoding.hpp>
#include <asrkit/nn/attention.hpp>
#include <asrkit/nn/depthwise_conv1d.hpp>
#include <asrkit/nn/pointwise_conv1d.hpp>
#include <asrkit/nn/feed_forward.hpp>
#include <asrkit/nn/conformer_conv.hpp>
#include <asrkit/nn/stochastic_depth.hpp>
#include <asrkit/nn/transformer_block.hpp>
#include <asrkit/nn/conformer_block.hpp>
#include <asrkit/nn/encoder.hpp>
#include <asrkit/nn/subsampling.hpp>

#include <asrkit/loss/ctc.hpp>

#include <asrkit/decode/emissions.hpp>
#include <asrkit/decode/greedy.hpp>
#include <asrkit/decode/tokens.hpp>
#include <asrkit/decode/token_trie.hpp>
#include <asrkit/decode/lexicon.hpp>
#include <asrkit/decode/align.hpp>
#include <asrkit/decode/beam_search.hpp>
#include <asrkit/decode/ngram.hpp>
#include <asrkit/decode/metrics.hpp>
#include <asrkit/analysis/covariance.hpp>
#include <asrkit/analysis/cca.hpp>
#include <asrkit/analysis/symmetric_eigen.hpp>
#include <asrkit/analysis/svcca.hpp>
#include <asrkit/analysis/similarity.hpp>
#include <asrkit/analysis/activations.hpp>
#include <asrkit/analysis/heatmap.hpp>
#include <asrkit/transform/fold_batch_norm.hpp>
#include <asrkit/transform/fusionformer.hpp>
#include <asrkit/transform/fold_recurrent.hpp>
#include <asrkit/transform/depth_pruning.hpp>

#include <asrkit/frontend/window.hpp>
#include <asrkit/frontend/fft.hpp>
#include <asrkit/frontend/stft.hpp>
#include <asrkit/frontend/mel.hpp>
#include <asrkit/frontend/kaldi.hpp>
#include <asrkit/frontend/resample.hpp>
#include <asrkit/frontend/normalize.hpp>
#include <asrkit/frontend/augment.hpp>

#include <asrkit/train/manifest.hpp>
#include <asrkit/train/vocabulary.hpp>
#include <asrkit/train/batch.hpp>
#include <asrkit/train/sortagrad.hpp>
#include <asrkit/train/loader.hpp>
#include <asrkit/train/progress.hpp>
#include <asrkit/train/optimizer.hpp>
#include <asrkit/train/schedule.hpp>
#include <asrkit/train/clip.hpp>
#include <asrkit/train/checkpoint.hpp>
