// asrkit/decode/token_trie.hpp - a trie over token ids, the index behind lexicons and hotwords.
//
//   asrkit::TokenTrie trie;
//   std::int32_t node = trie.insert({3, 1, 20});          // the node reached by spelling 3 1 20
//   std::int32_t next = trie.child(TokenTrie::root, 3);   // -1 when no word continues that way
//
// Children are kept sorted by token, so a lookup is a binary search over the few children a node
// has, whatever the vocabulary size (a dense V-wide table per node would not fit V = 5000).
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
    const auto& c = children_[static_cast<std::size_t>(node)];
    const auto it = std::lower_bound(c.begin(), c.end(), std::make_pair(token, none));
    return it != c.end() && it->first == token ? it->second : none;
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
  std::vector<std::vector<std::pair<std::int32_t, std::int32_t>>> children_;  // (token, node), sorted
};

}  // namespace asrkit
