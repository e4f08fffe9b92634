// asrkit/train/loader.hpp - batches prepared on a background thread while the model trains.
//
//   asrkit::Loader loader(utts, vocab, [](const asrkit::Audio& a) { return fbank(a); },
//                         sampler.epoch(e), /*queue_depth=*/2);
//   while (auto batch = loader.next()) train_step(*batch);
//   log("waited ", loader.wait_seconds(), " s for data");   // ~0: the GPU never idled
//
// One worker std::thread reads the WAVs, computes features with the given function, encodes
// the transcripts and builds the padded batches (make_batch) in the order given, pushing them
// into a queue of at most `queue_depth` batches (so memory stays bounded when the consumer is
// slow). next() blocks until a batch is ready and returns nullopt at the end of the epoch. An
// exception in the worker ends the epoch: the batches before it are still delivered, then
// next() rethrows it (an asrkit error as the same class, id "loader.3", the message naming the
// batch and the audio file; anything else as is). The destructor stops the worker and joins
// it, also mid-epoch. The feature function runs on the worker thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asrkit/core/error.hpp>
#include <asrkit/core/shape.hpp>
#include <asrkit/core/tensor.hpp>
#include <asrkit/io/wav.hpp>
#include <asrkit/train/batch.hpp>
#include <asrkit/train/manifest.hpp>
#include <asrkit/train/vocabulary.hpp>

namespace asrkit {

struct LoaderOptions {
  /// Batches prepared ahead of the consumer (>= 1).
  index_t queue_depth = 2;
  /// What to do with transcript characters outside the vocabulary.
  OnUnknown on_unknown = OnUnknown::error;
};

class Loader {
 public:
  using FeatureFn = std::function<Tensor<float>(const Audio&)>;

  /// `batches` holds manifest indices (e.g. SortaGradSampler::epoch). ValueError "loader.1"
  /// for queue_depth < 1 or an empty feature function, "loader.2" for an index outside the
  /// manifest or an empty batch. The worker starts at once.
  Loader(std::vector<Utterance> manifest, Vocabulary vocabulary, FeatureFn features,
         std::vector<std::vector<index_t>> batches, const LoaderOptions& options = {})
      : manifest_(std::move(manifest)), vocabulary_(std::move(vocabulary)),
        features_(std::move(features)), batches_(std::move(batches)), options_(options) {
    if (options_.queue_depth < 1 || !features_)
      throw ValueError("loader.1", detail::str("Loader: needs queue_depth >= 1 and a feature "
                                               "function, got queue_depth=", options_.queue_depth,
                                               features_ ? "" : " and an empty function"));
    for (std::size_t b = 0; b < batches_.size(); ++b) {
      if (batches_[b].empty())
        throw ValueError("loader.2", detail::str("Loader: batch ", b, " is empty"));
      for (index_t i : batches_[b])
        if (i < 0 || i >= static_cast<index_t>(manifest_.size()))
          throw ValueError("loader.2", detail::str("Loader: batch ", b, " has index ", i,
                                                   ", outside the manifest's [0, ",
                                                   manifest_.size(), ")"));
    }
    worker_ = std::thread([this] { run(); });
  }

  Loader(std::vector<Utterance> manifest, Vocabulary vocabulary, FeatureFn features,
         std::vector<std::vector<index_t>> batches, index_t queue_depth)
      : Loader(std::move(manifest), std::move(vocabulary), std::move(features),
               std::move(batches), LoaderOptions{queue_depth, OnUnknown::error}) {}

  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  ~Loader() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    not_full_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  /// The next batch, in the order given; nullopt once the epoch is over. Blocks while the
  /// worker is still preparing it; rethrows the worker's error (once, after the batches that
  /// came before it).
  std::optional<Batch<float>> next() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (queue_.empty() && !done_) {
      const auto start = std::chrono::steady_clock::now();
      not_empty_.wait(lock, [this] { return !queue_.empty() || done_; });
      wait_seconds_ +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++idle_waits_;
    }
    if (!queue_.empty()) {
      Batch<float> batch = std::move(queue_.front());
      queue_.pop_front();
      ++delivered_;
      lock.unlock();
      not_full_.notify_one();
      return batch;
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return std::nullopt;
  }

  /// Seconds next() spent blocked waiting for the worker, in total.
  double wait_seconds() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return wait_seconds_;
  }
  /// Calls of next() that found no batch ready and had to wait.
  index_t idle_waits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_waits_;
  }
  /// Batches handed out so far.
  index_t delivered() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return delivered_;
  }
  /// Batches in the epoch.
  index_t size() const noexcept { return static_cast<index_t>(batches_.size()); }

 private:
  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_;
  }

  Batch<float> load(std::size_t b, index_t& current) {
    const std::vector<index_t>& items = batches_[b];
    std::vector<Tensor<float>> feats;
    std::vector<std::vector<std::int32_t>> labels;
    feats.reserve(items.size());
    labels.reserve(items.size());
    for (index_t i : items) {
      current = i;
      const Utterance& u = manifest_[static_cast<std::size_t>(i)];
      feats.push_back(features_(read_wav(u.audio)));
      labels.push_back(vocabulary_.encode(u.text, options_.on_unknown));
    }
    current = -1;
    Batch<float> batch = make_batch(feats, labels);
    batch.indices = items;
    return batch;
  }

  // Rethrows an asrkit error as the same class with the batch and file in the message.
  [[noreturn]] void rethrow_with_context(std::size_t b, index_t current) {
    const std::string where =
        current >= 0 ? detail::str("Loader: batch ", b, ", utterance ", current, " ('",
                                   manifest_[static_cast<std::size_t>(current)].audio, "'): ")
                     : detail::str("Loader: batch ", b, ": ");
    try {
      throw;
    } catch (const FormatError& e) {
      throw FormatError("loader.3", where + e.what());
    } catch (const IoError& e) {
      throw IoError("loader.3", where + e.what());
    } catch (const ValueError& e) {
      throw ValueError("loader.3", where + e.what());
    } catch (const ShapeError& e) {
      throw ShapeError("loader.3", where + e.what());
    } catch (const Error& e) {
      throw Error("loader.3", where + e.what());
    }
  }

  void run() {
    std::exception_ptr error;
    for (std::size_t b = 0; b < batches_.size() && !error; ++b) {
      if (stopping()) return;
      index_t current = -1;
      std::optional<Batch<float>> batch;
      try {
        try {
          batch = load(b, current);
        } catch (...) {
          rethrow_with_context(b, current);
        }
      } catch (...) {
        error = std::current_exception();
        break;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      not_full_.wait(lock, [this] {
        return stop_ || static_cast<index_t>(queue_.size()) < options_.queue_depth;
      });
      if (stop_) return;
      queue_.push_back(std::move(*batch));
      lock.unlock();
      not_empty_.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = error;
      done_ = true;
    }
    not_empty_.notify_all();
  }

  std::vector<Utterance> manifest_;
  Vocabulary vocabulary_;
  FeatureFn features_;
  std::vector<std::vector<index_t>> batches_;
  LoaderOptions options_;

  mutable std::mutex mutex_;  // guards everything below except worker_
  std::condition_variable not_empty_, not_full_;
  std::deque<Batch<float>> queue_;
  bool stop_ = false, done_ = false;
  std::exception_ptr error_;
  double wait_seconds_ = 0.0;
  index_t idle_waits_ = 0, delivered_ = 0;

  std::thread worker_;  // last: starts after every other member exists
};

}  // namespace asrkit
