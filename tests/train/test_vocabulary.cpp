#include <asrkit/train/vocabulary.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "../test_util.hpp"

using asrkit::OnUnknown;
using asrkit::Vocabulary;

namespace {
void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
std::string read_text(const std::string& path) {
  const auto b = asrkit_test::read_bytes(path);
  return std::string(b.begin(), b.end());
}
}  // namespace

TEST_CASE("english vocabulary: layout, encode, decode", "[train][vocab]") {
  const Vocabulary v = Vocabulary::english();
  CHECK(v.size() == 29);
  CHECK(v.blank() == 0);
  CHECK(v.token(0) == "<blank>");
  CHECK(v.token(1) == " ");
  CHECK(v.token(2) == "'");
  CHECK(v.token(3) == "a");
  CHECK(v.token(28) == "z");
  CHECK(v.encode("it's a") == std::vector<std::int32_t>{11, 22, 2, 21, 1, 3});
  CHECK(v.decode(std::vector<std::int32_t>{11, 0, 22, 2, 21}) == "it's");
  CHECK(v.decode(v.encode("hello world")) == "hello world");
  CHECK(v.encode("").empty());
  CHECK(v.contains("q"));
  CHECK_FALSE(v.contains("Q"));
  CHECK_FALSE(v.contains("<blank>"));
}

TEST_CASE("vocabulary file format is stable", "[train][vocab]") {
  const std::string path = asrkit_test::data_path("vocab_en.txt");
  Vocabulary::english().save(path);
  std::string expected = "<blank>\n<space>\n'\n";
  for (char c = 'a'; c <= 'z'; ++c) expected += std::string(1, c) + "\n";
  CHECK(read_text(path) == expected);
  const Vocabulary back = Vocabulary::load(path);
  CHECK(back.size() == 29);
  CHECK(back.encode("ok") == Vocabulary::english().encode("ok"));

  write_text(path, "<blank>\r\n<space>\r\n\xc3\xa9\r\nx\r\n");  // CRLF and UTF-8
  const Vocabulary u = Vocabulary::load(path);
  CHECK(u.size() == 4);
  CHECK(u.encode("x \xc3\xa9") == std::vector<std::int32_t>{3, 1, 2});
  CHECK(u.decode(std::vector<int>{2, 1, 3}) == "\xc3\xa9 x");
}

TEST_CASE("vocabulary load errors", "[train][vocab]") {
  const std::string path = asrkit_test::data_path("vocab_bad.txt");
  REQUIRE_THROWS_ID(Vocabulary::load(asrkit_test::data_path("no_such_vocab.txt")),
                    asrkit::IoError, "[asrkit.vocab.1]");
  write_text(path, "");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError,
                    "[asrkit.vocab.2] vocabulary '" + path +
                        "': the first token (id 0) must be <blank>, got an empty vocabulary");
  write_text(path, "a\n<blank>\n");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError, "must be <blank>, got 'a'");
  write_text(path, "<blank>\na\nb\na\n");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError,
                    "[asrkit.vocab.3] vocabulary '" + path + "': token 3 'a' duplicates token 1");
  write_text(path, "<blank>\n<space>\n \n");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError, "token 2 ' ' duplicates token 1");
  write_text(path, "<blank>\na\n\nb\n");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError,
                    "[asrkit.vocab.4] vocabulary '" + path + "': token 2 is empty");
  write_text(path, "<blank>\n\xc3\n");
  REQUIRE_THROWS_ID(Vocabulary::load(path), asrkit::FormatError, "not valid UTF-8");
}

TEST_CASE("encode names unknown characters, skip policy", "[train][vocab]") {
  const Vocabulary v = Vocabulary::english();
  REQUIRE_THROWS_ID(v.encode("Hi"), asrkit::ValueError,
                    "[asrkit.vocab.5] encode: character 'H' at position 0 (byte 0) of \"Hi\" is "
                    "not in the vocabulary (29 tokens)");
  REQUIRE_THROWS_ID(v.encode("caf\xc3\xa9!"), asrkit::ValueError,
                    "character '\xc3\xa9' (U+00E9) at position 3 (byte 3)");
  REQUIRE_THROWS_ID(v.encode("a\tb"), asrkit::ValueError, "character '\\t' (U+0009) at position 1");
  REQUIRE_THROWS_ID(v.encode(std::string("a\x01", 2)), asrkit::ValueError,
                    "character U+0001 at position 1");
  CHECK(v.encode("Hi, caf\xc3\xa9!", OnUnknown::skip) == v.encode("i caf"));
  REQUIRE_THROWS_ID(v.encode("ab\xc3"), asrkit::ValueError,
                    "[asrkit.vocab.6] encode: invalid UTF-8 at byte 2 (0xC3)");
  REQUIRE_THROWS_ID(v.encode("\xc0\xaf", OnUnknown::skip), asrkit::ValueError, "[asrkit.vocab.6]");
  const std::string long_text(500, 'Q');
  try {
    v.encode(long_text);
    FAIL("expected vocab.5");
  } catch (const asrkit::ValueError& e) {
    CHECK(std::string(e.what()).size() < 300);  // the text is shortened in the message
  }
  REQUIRE_THROWS_ID(v.decode(std::vector<std::int32_t>{1, 29}), asrkit::ValueError,
                    "[asrkit.vocab.7] decode: id 29 at position 1 is outside [0, 29)");
  REQUIRE_THROWS_ID(v.token(-1), asrkit::ValueError, "[asrkit.vocab.7]");
}

TEST_CASE("Vocabulary::characters", "[train][vocab]") {
  const Vocabulary v = Vocabulary::characters("ab \xe4\xb8\xad");
  CHECK(v.size() == 5);
  CHECK(v.encode("\xe4\xb8\xad a") == std::vector<std::int32_t>{4, 3, 1});
  const std::string path = asrkit_test::data_path("vocab_chars.txt");
  v.save(path);
  CHECK(read_text(path) == "<blank>\na\nb\n<space>\n\xe4\xb8\xad\n");
  REQUIRE_THROWS_ID(Vocabulary::characters("aba"), asrkit::ValueError,
                    "[asrkit.vocab.8] Vocabulary::characters: 'a' appears twice");
  REQUIRE_THROWS_ID(Vocabulary::characters("a\nb"), asrkit::ValueError, "[asrkit.vocab.8]");
  REQUIRE_THROWS_ID(Vocabulary::characters("\xff"), asrkit::ValueError, "[asrkit.vocab.8]");
  CHECK(Vocabulary::characters("").size() == 1);
}
