#include <asrkit/io/arpa.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../small_arpa.hpp"
#include "../test_util.hpp"

using asrkit::ArpaModel;
using asrkit::FormatError;
using asrkit::parse_arpa;

namespace {


std::uint32_t id_of(const ArpaModel& m, const std::string& w) {
  for (std::size_t i = 0; i < m.words.size(); ++i)
    if (m.words[i] == w) return static_cast<std::uint32_t>(i);
  FAIL("word not in the model: " << w);
  return 0;
}

// Index of an n-gram given as words, or npos.
std::uint32_t find(const ArpaModel& m, const std::vector<std::string>& words) {
  std::vector<std::uint32_t> ids;
  for (const std::string& w : words) ids.push_back(id_of(m, w));
  return m.orders[words.size() - 1].find(ids.data());
}

void check_model(const ArpaModel& m) {
  REQUIRE(m.order() == 3);
  REQUIRE(m.words == std::vector<std::string>{"<s>", "a", "b", "c", "</s>", "<unk>"});
  REQUIRE(m.orders[0].size() == 6);
  REQUIRE(m.orders[1].size() == 4);
  REQUIRE(m.orders[2].size() == 2);
  CHECK(m.orders[0].log10_prob[1] == -0.7f);
  CHECK(m.orders[0].log10_backoff[1] == -0.3f);
  CHECK(m.orders[0].log10_backoff[4] == 0.f);  // </s>: no back-off given
  const std::uint32_t ab = find(m, {"a", "b"});
  REQUIRE(ab != asrkit::detail::IdTupleTable::npos);
  CHECK(m.orders[1].log10_prob[ab] == -0.3f);
  CHECK(m.orders[1].log10_backoff[ab] == -0.15f);
  const std::uint32_t abc = find(m, {"a", "b", "c"});
  REQUIRE(abc != asrkit::detail::IdTupleTable::npos);
  CHECK(m.orders[2].log10_prob[abc] == -0.2f);
  CHECK(find(m, {"b", "a"}) == asrkit::detail::IdTupleTable::npos);
  CHECK(find(m, {"a", "b", "a"}) == asrkit::detail::IdTupleTable::npos);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
  return s;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const std::size_t p = s.find(from);
  REQUIRE(p != std::string::npos);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("parse_arpa reads a hand-written trigram model", "[arpa]") {
  check_model(parse_arpa(kModel));
}

TEST_CASE("parse_arpa accepts the whitespace variants real tools write", "[arpa]") {
  const std::string base = kModel;
  SECTION("CRLF line ends") { check_model(parse_arpa(replace_all(base, "\n", "\r\n"))); }
  SECTION("spaces instead of tabs, runs of blanks") {
    check_model(parse_arpa(replace_all(replace_all(base, "\t", "  "), " a", " \t a")));
  }
  SECTION("trailing blanks and extra blank lines") {
    check_model(parse_arpa(replace_all(base, "\n", " \t\n\n")));
  }
  SECTION("text before \\data\\, no final newline, nothing after \\end\\ but blanks") {
    std::string s = "This model was made by hand.\n\\1-grams: not yet\n" + base;
    s.pop_back();
    check_model(parse_arpa(s));
  }
  SECTION("IRSTLM-style counts: 'ngram  1=        6', 'ngram 2 = 4'") {
    std::string s = replace_once(base, "ngram 1=6", "ngram  1=        6");
    check_model(parse_arpa(replace_once(s, "ngram 2=4", "ngram\t2 = 4")));
  }
  SECTION("indented lines, '+' signs, exponents, -inf") {
    std::string s = replace_once(base, "-0.6\tb c", "  -6e-1 b c  +0");
    s = replace_once(s, "-2.0\t<unk>", "-inf <unk>");
    const ArpaModel m = parse_arpa(s);
    CHECK(m.orders[1].log10_prob[2] == -0.6f);
    CHECK(std::isinf(m.orders[0].log10_prob[5]));
    CHECK(m.orders[0].log10_prob[5] < 0);
  }
  SECTION("back-off on the highest order is accepted") {
    check_model(parse_arpa(replace_once(base, "-0.2\ta b c", "-0.2\ta b c\t0")));
  }
  SECTION("empty orders") {
    const ArpaModel m =
        parse_arpa("\\data\\\nngram 1=0\nngram 2=0\n\\1-grams:\n\\2-grams:\n\\end\\\n");
    CHECK(m.order() == 2);
    CHECK(m.words.empty());
  }
}

TEST_CASE("parse_arpa rejects malformed files with a pinned id and line", "[arpa]") {
  const std::string base = kModel;
  SECTION("arpa.1: no \\data\\") {
    REQUIRE_THROWS_ID(parse_arpa(""), FormatError, "[asrkit.arpa.1]");
    REQUIRE_THROWS_ID(parse_arpa("ngram 1=2\n\\1-grams:\n"), FormatError, "[asrkit.arpa.1]");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\data\\", "\\dat\\")), FormatError,
                      "[asrkit.arpa.1] ARPA: no '\\data\\' line in 23 lines");
  }
  SECTION("arpa.2: a malformed count line, or none") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2=four")), FormatError,
                      "[asrkit.arpa.2] ARPA line 3: expected 'ngram N=count'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2 4")), FormatError,
                      "[asrkit.arpa.2] ARPA line 3");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2=-4")), FormatError,
                      "[asrkit.arpa.2] ARPA line 3");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2=99999999999999")),
                      FormatError, "[asrkit.arpa.2] ARPA line 3");
    REQUIRE_THROWS_ID(parse_arpa("\\data\\\n\\1-grams:\n\\end\\\n"), FormatError,
                      "[asrkit.arpa.2] ARPA line 2: expected 'ngram 1=count' after '\\data\\', "
                      "found '\\1-grams:'");
    REQUIRE_THROWS_ID(parse_arpa("\\data\\\n"), FormatError, "found the end of the text");
  }
  SECTION("arpa.3: orders in \\data\\ out of sequence") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 4=4")), FormatError,
                      "[asrkit.arpa.3] ARPA line 3: expected 'ngram 2=count'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 1=6\n", "")), FormatError,
                      "[asrkit.arpa.3] ARPA line 2: expected 'ngram 1=count'");
    std::string deep = "\\data\\\n";
    for (int n = 1; n <= 33; ++n) deep += "ngram " + std::to_string(n) + "=0\n";
    REQUIRE_THROWS_ID(parse_arpa(deep), FormatError, "[asrkit.arpa.3] ARPA line 34");
  }
  SECTION("arpa.4: sections out of order or missing") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\2-grams:", "\\3-grams:")), FormatError,
                      "[asrkit.arpa.4] ARPA line 14: expected '\\2-grams:'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\1-grams:", "\\2-grams:")), FormatError,
                      "[asrkit.arpa.4] ARPA line 6: expected '\\1-grams:'");
    const std::size_t tri = base.find("\\3-grams:");
    REQUIRE_THROWS_ID(parse_arpa(base.substr(0, tri) + "\\end\\\n"), FormatError,
                      "[asrkit.arpa.4] ARPA line 20: expected '\\3-grams:' (sections in order "
                      "1.. 3 as declared in '\\data\\'), found '\\end\\'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\end\\", "\\4-grams:")), FormatError,
                      "[asrkit.arpa.4] ARPA line 23: expected '\\end\\'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\1-grams:", "1-grams:")), FormatError,
                      "[asrkit.arpa.4] ARPA line 6: expected '\\1-grams:' after the counts");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\2-grams:", "\\2-grams")), FormatError,
                      "[asrkit.arpa.4] ARPA line 14");
  }
  SECTION("arpa.5: non-numeric probabilities or back-offs") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", "x0.7\ta")), FormatError,
                      "[asrkit.arpa.5] ARPA line 8: expected a log10 probability (a number or "
                      "-inf), found 'x0.7'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", "nan\ta")), FormatError,
                      "[asrkit.arpa.5] ARPA line 8");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", "inf\ta")), FormatError,
                      "[asrkit.arpa.5] ARPA line 8");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", "-1e99\ta")), FormatError,
                      "[asrkit.arpa.5] ARPA line 8");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", "-0.7.1\ta")), FormatError,
                      "[asrkit.arpa.5] ARPA line 8");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.4\t<s> a", "<s> a")), FormatError,
                      "[asrkit.arpa.5] ARPA line 15");
  }
  SECTION("arpa.6: wrong number of words") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.3\ta b\t-0.15", "-0.3\ta")), FormatError,
                      "[asrkit.arpa.6] ARPA line 16: a 2-gram line needs a log10 probability, "
                      "2 words and an optional numeric back-off; too few words");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.6\tb c", "-0.6\tb c a")), FormatError,
                      "[asrkit.arpa.6] ARPA line 17");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.3\ta b", "-0.3\ta b c -0.1")), FormatError,
                      "too many fields");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.2\ta b c", "-0.2\ta b")), FormatError,
                      "[asrkit.arpa.6] ARPA line 22");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.8\tb\t-0.2", "-0.8")), FormatError,
                      "[asrkit.arpa.6] ARPA line 9");
  }
  SECTION("arpa.7: counts that do not match the entries") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2=5")), FormatError,
                      "[asrkit.arpa.7] ARPA line 20: '\\data\\' declares 5 2-grams, the "
                      "'\\2-grams:' section has 4");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 2=4", "ngram 2=3")), FormatError,
                      "[asrkit.arpa.7] ARPA line 18: '\\data\\' declares 3 2-grams, the "
                      "section has more");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "ngram 3=2", "ngram 3=3")), FormatError,
                      "[asrkit.arpa.7] ARPA line 23");
  }
  SECTION("arpa.8: duplicate n-grams") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.9\tc", "-0.9\ta")), FormatError,
                      "[asrkit.arpa.8] ARPA line 10: duplicate 1-gram 'a'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.5\tb </s>", "-0.5\ta  b")), FormatError,
                      "[asrkit.arpa.8] ARPA line 18: duplicate 2-gram '-0.5\ta  b'");
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.2\ta b c", "-0.2\t<s> a b")), FormatError,
                      "[asrkit.arpa.8] ARPA line 22");
  }
  SECTION("arpa.9: words that are not unigrams") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.6\tb c", "-0.6\tb d")), FormatError,
                      "[asrkit.arpa.9] ARPA line 17: word 'd' of a 2-gram is not among the "
                      "1-grams");
  }
  SECTION("arpa.10: truncated (no \\end\\)") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "\\end\\\n", "")), FormatError,
                      "[asrkit.arpa.10] ARPA: the text ends at line 22 without '\\end\\' "
                      "(truncated file?) inside the '\\3-grams:' section");
    REQUIRE_THROWS_ID(parse_arpa("\\data\\\nngram 1=1\n"), FormatError, "[asrkit.arpa.10]");
  }
  SECTION("control bytes are escaped in messages") {
    REQUIRE_THROWS_ID(parse_arpa(replace_once(base, "-0.7\ta", std::string("\x01-0.7\ta"))),
                      FormatError, "found '\\x01-0.7'");
  }
}

TEST_CASE("every prefix of a valid ARPA file parses or throws FormatError", "[arpa]") {
  for (const std::string& text : {std::string(kModel), replace_all(kModel, "\n", "\r\n")}) {
    int parsed = 0;
    for (std::size_t n = 0; n <= text.size(); ++n) {
      CAPTURE(n);
      try {
        const ArpaModel m = parse_arpa(std::string_view(text.data(), n));
        check_model(m);
        ++parsed;
      } catch (const FormatError&) {
      }
    }
    // Only the prefixes that end after "\end\" parse.
    CHECK(parsed == static_cast<int>(text.size() - text.find("\\end\\") - 4));
  }
}

TEST_CASE("read_arpa reads a file and reports I/O errors", "[arpa]") {
  const std::string path = asrkit_test::data_path("test_arpa_model.arpa");
  const std::string text = kModel;
  asrkit_test::write_bytes(path, std::vector<unsigned char>(text.begin(), text.end()));
  check_model(asrkit::read_arpa(path));
  REQUIRE_THROWS_ID(asrkit::read_arpa(asrkit_test::data_path("no_such_model.arpa")),
                    asrkit::IoError, "[asrkit.io.1] cannot open");
}

TEST_CASE("huge declared counts are only a hint", "[arpa]") {
  const std::string text = "\\data\\\nngram 1=1099511627776\n\\1-grams:\n-1 a\n\\end\\\n";
  REQUIRE_THROWS_ID(parse_arpa(text), FormatError, "[asrkit.arpa.7]");
}
