// asrkit/decode/token_trie.hpp - a trie over token ids, the index behind lexicons and hotwords.
//
//   asrkit::TokenTrie trie;
//   std::int32_t node = trie.insert({3, 1, 20});          // the node reached by spelling 3 1 20
//   std::int32_t next = trie.child(TokenTrie::root, 3);   // -1 when no word continues that way
//
// Edges live in one open-addressing hash table keyed by (node, token), so a lookup is a hash and a
// probe or two whatever the vocabulary size (a dense V-wide table per node would not fit
// V = 5000); per-node child lists are kept for walking the trie.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace asrkit {

class TokenTrie {
 public:
  static constexpr std::int32_t root = 0;
  static constexpr std::int32_t none = -1;

  TokenTrie() : children_(1) {}

  std::int32_t size() const noexcept { return static_cast<std::int32_t>(children_.size()); }

  /// The child of `node` along `token`, or `none`.
  std::int32_t child(std::int32_t node, std::int32_t token) const {
    if (edges_.empty()) return none;
    const std::uint64_t key = edge_key(node, token);
    for (std::size_t i = slot_of(key);; i = (i + 1) & (edges_.size() - 1)) {
      if (edges_[i].child == none) return none;
      if (edges_[i].key == key) return edges_[i].child;
    }
  }

  /// The node reached by `tokens` from the root, created as needed.
  template <class Tokens>
  std::int32_t insert(const Tokens& tokens) {
    std::int32_t node = root;
    for (std::int32_t token : tokens) {
      auto& c = children_[static_cast<std::size_t>(node)];
      const auto it = std::lower_bound(c.begin(), c.end(), std::make_pair(token, none));
      if (it != c.end() && it->first == token) {
        node = it->second;
      } else {
        const std::int32_t id = size();
        c.insert(it, {token, id});
        children_.emplace_back();
        add_edge(edge_key(node, token), id);
        node = id;
      }
    }
    return node;
  }

  /// Visits nodes children-first (every child before its parent), e.g. to pull values up.
  template <class F>
  void for_each_bottom_up(F&& f) const {
    // Children always get larger ids than their parent, so descending id order is bottom-up.
    for (std::int32_t n = size() - 1; n >= 0; --n) f(n, children_[static_cast<std::size_t>(n)]);
  }

 private:
  struct Edge {
    std::uint64_t key = 0;
    std::int32_t child = none;
  };
  static std::uint64_t edge_key(std::int32_t node, std::int32_t token) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(node)) << 32) | static_cast<std::uint32_t>(token);
  }
  std::size_t slot_of(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);  // the top bits (Fibonacci hashing)
  }
  void add_edge(std::uint64_t key, std::int32_t child) {
    if (2 * (edge_count_ + 1) > edges_.size()) {  // keep the load <= 1/2
      std::vector<Edge> old(std::max<std::size_t>(16, 2 * edges_.size()));
      old.swap(edges_);
      shift_ = 64;
      for (std::size_t n = edges_.size(); n > 1; n >>= 1) --shift_;
      for (const Edge& e : old)
        if (e.child != none) place(e);
    }
    place({key, child});
    ++edge_count_;
  }
  void place(const Edge& e) {
    std::size_t i = slot_of(e.key);
    while (edges_[i].child != none) i = (i + 1) & (edges_.size() - 1);
    edges_[i] = e;
  }

  std::vector<std::vector<std::pair<std::int32_t, std::int32_t>>> children_;  // (token, node), sorted
  std::vector<Edge> edges_;
  std::size_t edge_count_ = 0;
  int shift_ = 64;
};

}  // namespace asrkit
