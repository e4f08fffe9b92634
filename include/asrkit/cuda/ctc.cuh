// asrkit/cuda/ctc.cuh - the CTC loss of loss/ctc.hpp on an NVIDIA GPU (nvcc, ASRKIT_WITH_CUDA).
//
//   asrkit::CtcProblem<float, asrkit::Cuda> p{dev_acts.view(), targets, input_lengths, target_lengths};
//   float loss = asrkit::ctc_loss(p, opt, dev_grad.view(), host_losses.view(), ws, ws_bytes, stream);
//
// Same options, gradient convention and results as the CPU version (the test suite checks that
// they agree); acts and grad live on the device, targets and lengths on the host (as in
// warp-ctc), the workspace on the device. There is no label-length limit: each item's lattice
// is walked by one block whose threads stride over the 2L+1 states. Every sum is a fixed-order
// tree or serial loop (no atomics), so results are deterministic.
//
// Kernels: (1) per frame: fused log-softmax normaliser + the emissions of the lattice states;
// (2) per item: alpha recursion and the loss; (3) per item: beta recursion; (4) per frame:
// gradient row (softmax term, minus the state posteriors gamma), zeros past the input length.
#pragma once

#include <asrkit/cuda/memory.cuh>
#include <asrkit/loss/ctc.hpp>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace asrkit {
namespace cuda {
namespace detail {

/// Tuning knobs, kept on the CUDA side only.
struct CtcPolicy {
  static constexpr int kRowThreads = 256;      // threads per frame (softmax, gradient row)
  static constexpr int kLatticeThreads = 256;  // threads per item (alpha / beta over states)
};

struct CtcItemDesc {
  long long label_offset;  // into the device copy of the concatenated labels
  long long scratch;       // element offset of the item's region: e, alpha, beta (T x S), norm (T)
  int frames, length, feasible;
  double scale;            // gradient scale through the reduction
};

inline long long ctc_item_elems(long long frames, long long length) {
  return 3 * frames * (2 * length + 1) + frames;
}

template <class T>
__device__ inline T log_zero() { return T(-1e30); }

template <class T>
__device__ inline T lse3(T a, T b, T c) {
  const T m = fmax(fmax(a, b), c);
  return m + log(exp(a - m) + exp(b - m) + exp(c - m));
}

__device__ inline int state_label(const std::int32_t* labels, int s, int blank) {
  return (s & 1) ? labels[s >> 1] : blank;
}

// Fixed-order tree reduction over the block (blockDim.x a power of two).
template <class T, class Op>
__device__ T block_reduce(T v, T* shared, Op op) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] = op(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  const T r = shared[0];
  __syncthreads();
  return r;
}

// Per-frame kernels run one block per (t, b) row on a flat grid (x holds up to 2^31 - 1 blocks;
// a 2-D grid would cap B or T at 65535).
__device__ inline void row_of_block(int batch, int& t, int& b) {
  t = static_cast<int>(blockIdx.x / static_cast<unsigned>(batch));
  b = static_cast<int>(blockIdx.x % static_cast<unsigned>(batch));
}

// (1) grid T * B: normaliser and emissions of frame t of item b. A NaN or +inf log-prob records
// the smallest offending t * B + b in *bad (atomicMin keeps the report deterministic).
template <class T>
__global__ void ctc_emissions(const T* acts, int batch, int vocab, int blank, bool logits,
                              const CtcItemDesc* items, const std::int32_t* labels, T* scratch,
                              unsigned long long* bad) {
  __shared__ T shared[CtcPolicy::kRowThreads];
  int t, b;
  row_of_block(batch, t, b);
  const CtcItemDesc it = items[b];
  if (t >= it.frames || !it.feasible) return;
  const T* x = acts + (static_cast<long long>(t) * batch + b) * vocab;
  const int S = 2 * it.length + 1;
  T* e = scratch + it.scratch;
  T* norm = e + 3LL * it.frames * S;
  T lse = 0;
  if (logits) {
    T m = -INFINITY;
    for (int k = threadIdx.x; k < vocab; k += blockDim.x) m = fmax(m, x[k]);
    m = block_reduce(m, shared, [](T a, T c) { return fmax(a, c); });
    T sum = 0;
    for (int k = threadIdx.x; k < vocab; k += blockDim.x) sum += exp(x[k] - m);
    sum = block_reduce(sum, shared, [](T a, T c) { return a + c; });
    lse = m + log(sum);
  }
  if (threadIdx.x == 0) norm[t] = lse;
  const std::int32_t* lab = labels + it.label_offset;
  const unsigned long long where = static_cast<unsigned long long>(t) * batch + b;
  if (threadIdx.x == 0 && !(fabs(lse) < INFINITY)) atomicMin(bad, where);
  for (int s = threadIdx.x; s < S; s += blockDim.x) {
    const T v = x[state_label(lab, s, blank)] - lse;
    if (isnan(v) || v == INFINITY) atomicMin(bad, where);
    e[static_cast<long long>(t) * S + s] = fmax(v, log_zero<T>());
  }
}

// (2) grid B: alpha_t(s) = e_t(s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) + skip)
// (Graves et al. 2006, eq. 6), one frame per step, threads striding over the states; the loss.
template <class T>
__global__ void ctc_alpha(const CtcItemDesc* items, const std::int32_t* labels, int blank,
                          bool zero_infinity, T* scratch, T* losses) {
  const int b = blockIdx.x;
  const CtcItemDesc it = items[b];
  const T inf = INFINITY;
  if (!it.feasible) {
    if (threadIdx.x == 0) losses[b] = zero_infinity ? T(0) : inf;
    return;
  }
  if (it.frames == 0) {  // empty target, empty input: probability 1
    if (threadIdx.x == 0) losses[b] = 0;
    return;
  }
  const int S = 2 * it.length + 1;
  const T* e = scratch + it.scratch;
  T* alpha = const_cast<T*>(e) + static_cast<long long>(it.frames) * S;
  const std::int32_t* lab = labels + it.label_offset;
  for (int s = threadIdx.x; s < S; s += blockDim.x) alpha[s] = s < 2 ? e[s] : log_zero<T>();
  __syncthreads();
  for (int t = 1; t < it.frames; ++t) {
    const T* prev = alpha + static_cast<long long>(t - 1) * S;
    T* cur = alpha + static_cast<long long>(t) * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
      const T a1 = s >= 1 ? prev[s - 1] : log_zero<T>();
      const bool skip = s >= 2 && (s & 1) && lab[s >> 1] != lab[(s >> 1) - 1];
      const T a2 = skip ? prev[s - 2] : log_zero<T>();
      cur[s] = e[static_cast<long long>(t) * S + s] + lse3(prev[s], a1, a2);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const T* last = alpha + static_cast<long long>(it.frames - 1) * S;
    T log_p = last[S - 1];
    if (S > 1) {
      const T m = fmax(last[S - 1], last[S - 2]);
      log_p = m + log(exp(last[S - 1] - m) + exp(last[S - 2] - m));
    }
    const bool dead = log_p <= log_zero<T>() / 2;
    losses[b] = dead ? (zero_infinity ? T(0) : inf) : -log_p;
  }
}

// (3) grid B: beta_t(s) = log p(frames t+1.. | state s at t), excluding frame t's emission.
template <class T>
__global__ void ctc_beta(const CtcItemDesc* items, const std::int32_t* labels, T* scratch) {
  const CtcItemDesc it = items[blockIdx.x];
  if (!it.feasible || it.frames == 0) return;
  const int S = 2 * it.length + 1;
  const T* e = scratch + it.scratch;
  T* beta = const_cast<T*>(e) + 2LL * it.frames * S;
  const std::int32_t* lab = labels + it.label_offset;
  T* last = beta + static_cast<long long>(it.frames - 1) * S;
  for (int s = threadIdx.x; s < S; s += blockDim.x) last[s] = s >= S - 2 ? T(0) : log_zero<T>();
  __syncthreads();
  for (int t = it.frames - 1; t >= 1; --t) {
    const T* next = beta + static_cast<long long>(t) * S;
    const T* et = e + static_cast<long long>(t) * S;
    T* cur = beta + static_cast<long long>(t - 1) * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
      const T u0 = next[s] + et[s];
      const T u1 = s + 1 < S ? next[s + 1] + et[s + 1] : log_zero<T>();
      const bool skip = s + 2 < S && ((s + 2) & 1) && lab[(s + 2) >> 1] != lab[((s + 2) >> 1) - 1];
      const T u2 = skip ? next[s + 2] + et[s + 2] : log_zero<T>();
      cur[s] = lse3(u0, u1, u2);
    }
    __syncthreads();
  }
}

// (4) grid T * B: gradient row of frame t of item b (the convention of loss/ctc.hpp).
template <class T>
__global__ void ctc_grad(const T* acts, int batch, int vocab, int blank, bool softmax_term,
                         const CtcItemDesc* items, const std::int32_t* labels, const T* scratch,
                         const T* losses, T* grad) {
  int t, b;
  row_of_block(batch, t, b);
  const CtcItemDesc it = items[b];
  const long long row = (static_cast<long long>(t) * batch + b) * vocab;
  T* g = grad + row;
  const T loss = losses[b];
  const int S = 2 * it.length + 1;
  const T* e = scratch + it.scratch;
  const T* norm = e + 3LL * it.frames * S;
  // Infeasible items, and items whose every path has probability zero, report +inf (or 0 with
  // zero_infinity) and get a zero gradient, as on the CPU.
  const T* alpha = e + static_cast<long long>(it.frames) * S;
  bool alive = t < it.frames && it.feasible && isfinite(loss);
  if (alive) {
    const T* last = alpha + static_cast<long long>(it.frames - 1) * S;
    const T m = S > 1 ? fmax(last[S - 1], last[S - 2]) : last[0];
    alive = m > log_zero<T>() / 2;
  }
  const T scale = static_cast<T>(it.scale);
  for (int k = threadIdx.x; k < vocab; k += blockDim.x)
    g[k] = alive && softmax_term ? exp(acts[row + k] - norm[t]) * scale : T(0);
  __syncthreads();
  if (!alive || threadIdx.x != 0) return;
  // One thread subtracts the posteriors in state order: repeated labels share a slot, and a
  // serial sum keeps the result deterministic. gamma_t(s) = exp(alpha + beta + loss).
  const T* a = alpha + static_cast<long long>(t) * S;
  const T* be = e + 2LL * it.frames * S + static_cast<long long>(t) * S;
  const std::int32_t* lab = labels + it.label_offset;
  for (int s = 0; s < S; ++s) g[state_label(lab, s, blank)] -= scale * exp(a[s] + be[s] + loss);
}

inline std::size_t align_up(std::size_t n) { return (n + 255) / 256 * 256; }

/// ctc_workspace_size without the argument checks (for callers that have validated).
template <class T>
std::size_t ctc_workspace_bytes(const CtcProblem<T, Cuda>& p) {
  const index_t batch = p.acts.dim(1);
  long long elems = 0, labels = 0;
  for (index_t b = 0; b < batch; ++b) {
    elems += cuda::detail::ctc_item_elems(p.input_lengths.data()[b], p.target_lengths.data()[b]);
    labels += p.target_lengths.data()[b];
  }
  return align_up(sizeof(CtcItemDesc) * static_cast<std::size_t>(batch)) +
         align_up(sizeof(std::int32_t) * static_cast<std::size_t>(labels)) +
         align_up(sizeof(T) * static_cast<std::size_t>(batch)) + align_up(sizeof(unsigned long long)) +
         sizeof(T) * static_cast<std::size_t>(elems);
}

}  // namespace detail
}  // namespace cuda

/// Device workspace bytes for ctc_loss on CUDA (item descriptors, labels, lattice scratch).
template <class T>
std::size_t ctc_workspace_size(const CtcProblem<T, Cuda>& p, const CtcOptions& opt) {
  ctc_validate(p, opt);
  return cuda::detail::ctc_workspace_bytes(p);
}

/// CTC loss and gradient on the GPU: acts and grad on the device; targets, lengths and `losses`
/// on the host. Synchronises `stream` before returning the reduced loss.
template <class T>
T ctc_loss(const CtcProblem<T, Cuda>& p, const CtcOptions& opt, TensorView<T, Cuda> grad = {},
           TensorView<T> losses = {}, void* workspace = nullptr, std::size_t workspace_bytes = 0,
           cudaStream_t stream = nullptr) {
  static_assert(std::is_floating_point_v<T>, "ctc_loss: T must be float or double");
  using cuda::check;
  using Desc = cuda::detail::CtcItemDesc;
  const index_t batch = ctc_validate(p, opt);
  const index_t max_t = p.acts.dim(0), vocab = p.acts.dim(2);
  const bool want_grad = grad.data() != nullptr;
  if (want_grad) check_shape(grad.shape(), p.acts.shape(), "ctc_loss grad");
  if (losses.data() != nullptr) check_shape(losses.shape(), Shape{batch}, "ctc_loss losses");
  const std::size_t needed = cuda::detail::ctc_workspace_bytes(p);
  cuda::DeviceBuffer<unsigned char> owned;
  if (workspace == nullptr) {
    owned = cuda::DeviceBuffer<unsigned char>(needed);
    workspace = owned.data();
  } else if (workspace_bytes < needed) {
    throw ValueError("ctc.8", detail::str("workspace holds ", workspace_bytes,
                                          " bytes, ctc_workspace_size() asks for ", needed));
  }
  if (batch == 0) return T(0);

  // Host side: item descriptors and the labels in concatenated form.
  std::vector<index_t> label_offsets(static_cast<std::size_t>(batch + 1));
  ::asrkit::detail::ctc_label_offsets(p.target_lengths, label_offsets.data());
  std::vector<Desc> items(static_cast<std::size_t>(batch));
  std::vector<std::int32_t> labels;
  long long scratch = 0;
  for (index_t b = 0; b < batch; ++b) {
    const auto lab = ::asrkit::detail::ctc_labels_of(p, b, label_offsets.data());
    const int frames = p.input_lengths.data()[b];
    items[static_cast<std::size_t>(b)] = {static_cast<long long>(labels.size()), scratch, frames,
                                          static_cast<int>(lab.length),
                                          frames >= ::asrkit::detail::ctc_needed_frames(lab),
                                          ::asrkit::detail::ctc_item_scale(opt, lab.length, batch)};
    labels.insert(labels.end(), lab.data, lab.data + lab.length);
    scratch += cuda::detail::ctc_item_elems(frames, lab.length);
  }
  // Device side: [descs][labels][losses][bad-frame flag][scratch], each 256-byte aligned.
  using cuda::detail::align_up;
  auto* base = static_cast<unsigned char*>(workspace);
  auto* d_items = reinterpret_cast<Desc*>(base);
  base += align_up(sizeof(Desc) * items.size());
  auto* d_labels = reinterpret_cast<std::int32_t*>(base);
  base += align_up(sizeof(std::int32_t) * labels.size());
  auto* d_losses = reinterpret_cast<T*>(base);
  base += align_up(sizeof(T) * static_cast<std::size_t>(batch));
  auto* d_bad = reinterpret_cast<unsigned long long*>(base);
  base += align_up(sizeof(unsigned long long));
  T* d_scratch = reinterpret_cast<T*>(base);
  const unsigned long long no_bad = ~0ull;
  check(cudaMemcpyAsync(d_items, items.data(), sizeof(Desc) * items.size(), cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync ctc items");
  if (!labels.empty())
    check(cudaMemcpyAsync(d_labels, labels.data(), sizeof(std::int32_t) * labels.size(),
                          cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync ctc labels");
  check(cudaMemcpyAsync(d_bad, &no_bad, sizeof(no_bad), cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync ctc flag");

  using Policy = cuda::detail::CtcPolicy;
  if (max_t * batch > std::numeric_limits<int>::max())
    throw ShapeError("ctc.1", detail::str("CUDA ctc_loss handles T * B <= 2^31 - 1 frames, got ",
                                          max_t * batch));
  const auto rows = static_cast<unsigned>(max_t * batch);  // 0 when T = 0: no per-frame launch
  const bool logits = opt.input == CtcInput::logits;
  if (rows > 0) {
    cuda::detail::ctc_emissions<T><<<rows, Policy::kRowThreads, 0, stream>>>(
        p.acts.data(), static_cast<int>(batch), static_cast<int>(vocab), opt.blank, logits, d_items,
        d_labels, d_scratch, d_bad);
    check(cudaGetLastError(), "ctc_emissions launch");
  }
  cuda::detail::ctc_alpha<T><<<static_cast<unsigned>(batch), Policy::kLatticeThreads, 0, stream>>>(
      d_items, d_labels, opt.blank, opt.zero_infinity, d_scratch, d_losses);
  check(cudaGetLastError(), "ctc_alpha launch");
  if (want_grad && rows > 0) {
    cuda::detail::ctc_beta<T><<<static_cast<unsigned>(batch), Policy::kLatticeThreads, 0, stream>>>(
        d_items, d_labels, d_scratch);
    check(cudaGetLastError(), "ctc_beta launch");
    cuda::detail::ctc_grad<T><<<rows, Policy::kRowThreads, 0, stream>>>(
        p.acts.data(), static_cast<int>(batch), static_cast<int>(vocab), opt.blank,
        logits || opt.gradient == CtcGradient::logits, d_items, d_labels, d_scratch, d_losses, grad.data());
    check(cudaGetLastError(), "ctc_grad launch");
  }
  std::vector<T> host_losses(static_cast<std::size_t>(batch));
  unsigned long long bad = no_bad;
  check(cudaMemcpyAsync(host_losses.data(), d_losses, sizeof(T) * host_losses.size(), cudaMemcpyDeviceToHost, stream),
        "cudaMemcpyAsync ctc losses");
  check(cudaMemcpyAsync(&bad, d_bad, sizeof(bad), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync ctc flag");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize ctc");
  if (bad != no_bad)
    throw ValueError("ctc.7", detail::str("acts of batch item ", bad % static_cast<unsigned long long>(batch),
                                          " at frame ", bad / static_cast<unsigned long long>(batch),
                                          " contain NaN or +inf log-probabilities (or NaN/inf logits)"));
  if (losses.data() != nullptr) std::copy(host_losses.begin(), host_losses.end(), losses.data());
  return ::asrkit::detail::ctc_reduce(host_losses.data(), opt, p.target_lengths);
}

}  // namespace asrkit
