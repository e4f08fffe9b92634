#include <asrkit/train/manifest.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <asrkit/io/wav.hpp>

#include "../test_util.hpp"

using asrkit::ManifestOptions;
using asrkit::read_manifest;
using asrkit::Utterance;
using asrkit::write_manifest;

namespace {
// A fresh directory with a.wav and b.wav (0.1 s of silence each).
std::string make_dir(const std::string& name) {
  const std::string dir = asrkit_test::data_path(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/wav");
  asrkit::Tensor<float> s({1600});
  asrkit::write_wav(dir + "/wav/a.wav", s, 16000);
  asrkit::write_wav(dir + "/wav/b.wav", s, 16000);
  return dir;
}
void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}
}  // namespace

TEST_CASE("manifest reads JSONL, resolves paths, ignores extra keys", "[train][manifest]") {
  const std::string dir = make_dir("manifest_read");
  write_text(dir + "/m.jsonl",
             "{\"audio\": \"wav/a.wav\", \"duration\": 0.1, \"text\": \"hi there\", "
             "\"speaker\": \"s1\", \"extra\": [1, 2]}\n"
             "\n"
             "{\"text\": \"caf\xc3\xa9\", \"duration\": 2, \"audio\": \"" + dir +
                 "/wav/b.wav\"}\r\n");
  const std::vector<Utterance> u = read_manifest(dir + "/m.jsonl");
  REQUIRE(u.size() == 2);
  CHECK(u[0].audio == dir + "/wav/a.wav");
  CHECK(u[0].duration == 0.1);
  CHECK(u[0].text == "hi there");
  CHECK(u[0].speaker == "s1");
  CHECK(u[1].audio == dir + "/wav/b.wav");
  CHECK(u[1].duration == 2.0);
  CHECK(u[1].text == "caf\xc3\xa9");
  CHECK(u[1].speaker.empty());
}

TEST_CASE("manifest errors name file and line", "[train][manifest]") {
  const std::string dir = make_dir("manifest_errors");
  const std::string m = dir + "/m.jsonl";
  const std::string good = "{\"audio\": \"wav/a.wav\", \"duration\": 1, \"text\": \"a\"}\n";
  REQUIRE_THROWS_ID(read_manifest(dir + "/nope.jsonl"), asrkit::IoError, "[asrkit.manifest.1]");
  write_text(m, good + "{\"audio\": \"wav/a.wav\", \"duration\": 1, \"text\": \"a\"\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError,
                    "[asrkit.manifest.2] manifest " + m + ":2: is not valid JSON");
  write_text(m, "[1, 2]\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError, "must be a JSON object, got array");
  write_text(m, good + good + "{\"audio\": \"wav/a.wav\", \"text\": \"a\"}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError,
                    "[asrkit.manifest.3] manifest " + m + ":3: missing required key \"duration\"");
  write_text(m, "{\"audio\": \"wav/a.wav\", \"duration\": \"1\", \"text\": \"a\"}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError,
                    ":1: key \"duration\" must be a number, got string");
  write_text(m, "{\"audio\": \"wav/a.wav\", \"duration\": 1, \"text\": \"a\", \"speaker\": 3}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError,
                    "key \"speaker\" must be a string, got number");
  write_text(m, "{\"audio\": \"wav/a.wav\", \"duration\": -0.5, \"text\": \"a\"}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError,
                    "[asrkit.manifest.4] manifest " + m +
                        ":1: \"duration\" must be finite and >= 0 seconds, got -0.5");
  write_text(m, good + "{\"audio\": \"wav/c.wav\", \"duration\": 1, \"text\": \"a\"}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::IoError,
                    "[asrkit.manifest.5] manifest " + m + ":2: audio file '" + dir +
                        "/wav/c.wav' does not exist");
  CHECK(read_manifest(m, ManifestOptions{false, false}).size() == 2);  // check_files off
  write_text(m, "{\"audio\": \"wav/a.wav\", \"duration\": 1, \"text\": \"\xff\"}\n");
  REQUIRE_THROWS_ID(read_manifest(m), asrkit::FormatError, "[asrkit.manifest.2]");
}

TEST_CASE("manifest skip_bad drops and reports bad lines", "[train][manifest]") {
  const std::string dir = make_dir("manifest_skip");
  const std::string m = dir + "/m.jsonl";
  write_text(m,
             "{\"audio\": \"wav/a.wav\", \"duration\": 1, \"text\": \"a\"}\n"
             "not json\n"
             "{\"audio\": \"wav/zz.wav\", \"duration\": 1, \"text\": \"a\"}\n"
             "{\"audio\": \"wav/b.wav\", \"duration\": -1, \"text\": \"b\"}\n"
             "{\"audio\": \"wav/b.wav\", \"duration\": 3, \"text\": \"b\"}\n");
  std::vector<std::string> skipped;
  const auto u = read_manifest(m, ManifestOptions{true, true}, &skipped);
  REQUIRE(u.size() == 2);
  CHECK(u[1].duration == 3.0);
  REQUIRE(skipped.size() == 3);
  CHECK(skipped[0] == m + ":2: is not valid JSON (or not valid UTF-8)");
  CHECK(skipped[1].rfind(m + ":3: audio file", 0) == 0);
  CHECK(skipped[2].rfind(m + ":4: \"duration\"", 0) == 0);
  CHECK(read_manifest(m, ManifestOptions{true, true}).size() == 2);  // no report wanted
}

TEST_CASE("manifest round-trips through write_manifest", "[train][manifest]") {
  const std::string dir = make_dir("manifest_write");
  std::vector<Utterance> u = {{dir + "/wav/a.wav", 1.25, "hello \"world\"", "spk"},
                              {dir + "/wav/b.wav", 0.5, "na\xc3\xafve", ""}};
  write_manifest(dir + "/out.jsonl", u);
  std::ifstream in(dir + "/out.jsonl");
  std::string first;
  std::getline(in, first);
  CHECK(first ==
        "{\"audio\":\"wav/a.wav\",\"duration\":1.25,\"speaker\":\"spk\","
        "\"text\":\"hello \\\"world\\\"\"}");
  const auto back = read_manifest(dir + "/out.jsonl");
  REQUIRE(back.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(back[i].audio == u[i].audio);
    CHECK(back[i].duration == u[i].duration);
    CHECK(back[i].text == u[i].text);
    CHECK(back[i].speaker == u[i].speaker);
  }
  u[1].duration = -1;
  REQUIRE_THROWS_ID(write_manifest(dir + "/bad.jsonl", u), asrkit::ValueError,
                    "[asrkit.manifest.6] write_manifest");
  u[1].duration = 1;
  u[1].text = "\xff";
  REQUIRE_THROWS_ID(write_manifest(dir + "/bad.jsonl", u), asrkit::ValueError,
                    "not valid UTF-8");
  REQUIRE_THROWS_ID(write_manifest(dir + "/no/such/dir/x.jsonl", {}), asrkit::IoError,
                    "[asrkit.manifest.1]");
}
