// asrkit/train/manifest.hpp - JSONL training manifests: one utterance per line.
//
//   {"audio": "wav/utt1.wav", "duration": 2.35, "text": "hello world", "speaker": "s1"}
//
//   std::vector<std::string> skipped;
//   auto utts = asrkit::read_manifest("train.jsonl", {/*check_files=*/true, /*skip_bad=*/true},
//                                     &skipped);
//   asrkit::write_manifest("sorted.jsonl", utts);
//
// "audio" is relative to the manifest's directory unless absolute; read_manifest returns it
// resolved (so the result is usable from any working directory), write_manifest makes it
// relative again when it lies under the new manifest's directory. "speaker" is optional; other
// keys are ignored. Blank lines are allowed. Line numbers in messages count from 1.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include <asrkit/core/error.hpp>

namespace asrkit {

struct Utterance {
  std::string audio;     ///< path of the WAV file (resolved by read_manifest)
  double duration = 0;   ///< seconds, >= 0
  std::string text;      ///< transcript, UTF-8
  std::string speaker;   ///< empty when the manifest gives none
};

struct ManifestOptions {
  /// Check that every audio file exists (a missing one is an error, or skipped with skip_bad).
  bool check_files = true;
  /// Skip malformed lines and missing files instead of throwing.
  bool skip_bad = false;
};

namespace detail {
namespace manifest {

namespace fs = std::filesystem;

// One problem with one line; `io` marks a missing file (IoError) rather than a malformed line.
struct LineError {
  std::string id;
  std::string message;
  bool io = false;
};

inline const char* json_type(const nlohmann::json& v) {
  return v.is_discarded() ? "invalid" : v.type_name();
}

// Parses one line into `out`; returns an empty id on success (no exceptions: skip_bad is the
// common path on dirty corpora).
inline LineError parse_line(const std::string& line, const fs::path& base, bool check_files,
                            Utterance& out) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return {"manifest.2", "is not valid JSON (or not valid UTF-8)"};
  if (!j.is_object())
    return {"manifest.2", detail::str("must be a JSON object, got ", json_type(j))};

  auto field = [&](const char* key, bool required, auto is_type, const char* type,
                   const nlohmann::json*& value) -> LineError {
    const auto it = j.find(key);
    value = nullptr;
    if (it == j.end()) {
      if (required) return {"manifest.3", detail::str("missing required key \"", key, "\"")};
      return {};
    }
    if (!is_type(*it))
      return {"manifest.3",
              detail::str("key \"", key, "\" must be a ", type, ", got ", it->type_name())};
    value = &*it;
    return {};
  };
  const auto is_string = [](const nlohmann::json& v) { return v.is_string(); };
  const auto is_number = [](const nlohmann::json& v) { return v.is_number(); };
  const nlohmann::json *audio, *duration, *text, *speaker;
  for (LineError e : {field("audio", true, is_string, "string", audio),
                      field("duration", true, is_number, "number", duration),
                      field("text", true, is_string, "string", text),
                      field("speaker", false, is_string, "string", speaker)})
    if (!e.id.empty()) return e;

  Utterance u;
  u.audio = audio->get<std::string>();
  if (u.audio.empty()) return {"manifest.3", "key \"audio\" must be a non-empty path, got \"\""};
  u.duration = duration->get<double>();
  if (!(u.duration >= 0.0) || !std::isfinite(u.duration))
    return {"manifest.4", detail::str("\"duration\" must be finite and >= 0 seconds, got ",
                                      u.duration)};
  u.text = text->get<std::string>();
  if (speaker) u.speaker = speaker->get<std::string>();

  const fs::path p = fs::u8path(u.audio);
  u.audio = (p.is_absolute() ? p : (base / p).lexically_normal()).u8string();
  if (check_files) {
    std::error_code ec;
    if (!fs::is_regular_file(fs::u8path(u.audio), ec))
      return {"manifest.5", detail::str("audio file '", u.audio, "' does not exist"), true};
  }
  out = std::move(u);
  return {};
}

}  // namespace manifest
}  // namespace detail

/// Reads a JSONL manifest. IoError "manifest.1" if it cannot be opened; a malformed line throws
/// FormatError "manifest.2/3/4" and a missing audio file IoError "manifest.5" (message: file,
/// line, what was expected and found). With options.skip_bad those lines are dropped instead
/// and, if `skipped` is given, one "file:line: reason" entry per dropped line is appended.
inline std::vector<Utterance> read_manifest(const std::string& path,
                                            const ManifestOptions& options = {},
                                            std::vector<std::string>* skipped = nullptr) {
  namespace fs = std::filesystem;
  std::ifstream in(fs::u8path(path), std::ios::binary);
  if (!in) throw IoError("manifest.1", detail::str("cannot open manifest '", path, "'"));
  const fs::path base = fs::u8path(path).parent_path();

  std::vector<Utterance> out;
  std::string line;
  for (long number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Utterance u;
    const detail::manifest::LineError e =
        detail::manifest::parse_line(line, base, options.check_files, u);
    if (e.id.empty()) {
      out.push_back(std::move(u));
      continue;
    }
    const std::string where = detail::str(path, ":", number);
    if (options.skip_bad) {
      if (skipped) skipped->push_back(where + ": " + e.message);
      continue;
    }
    const std::string msg = detail::str("manifest ", where, ": ", e.message);
    if (e.id == "manifest.2") throw FormatError("manifest.2", msg);
    if (e.id == "manifest.3") throw FormatError("manifest.3", msg);
    if (e.id == "manifest.4") throw FormatError("manifest.4", msg);
    throw IoError("manifest.5", msg);
  }
  if (in.bad()) throw IoError("manifest.1", detail::str("error reading manifest '", path, "'"));
  return out;
}

/// Writes utterances as JSONL (keys sorted, one object per line, UTF-8 kept as is). "speaker"
/// is omitted when empty. Audio paths under the manifest's directory are written relative to
/// it. ValueError "manifest.6" for an utterance that read_manifest would reject (empty audio
/// path, negative or non-finite duration, invalid UTF-8); IoError "manifest.1" on write errors.
inline void write_manifest(const std::string& path, const std::vector<Utterance>& utterances) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::absolute(fs::u8path(path), ec).parent_path().lexically_normal();
  std::string text;
  for (std::size_t i = 0; i < utterances.size(); ++i) {
    const Utterance& u = utterances[i];
    if (u.audio.empty() || !(u.duration >= 0.0) || !std::isfinite(u.duration))
      throw ValueError("manifest.6", detail::str("write_manifest '", path, "': utterance ", i,
                                                 " needs a non-empty audio path and a finite "
                                                 "duration >= 0, got audio='", u.audio,
                                                 "' duration=", u.duration));
    std::string audio = u.audio;
    const fs::path abs = fs::absolute(fs::u8path(u.audio), ec).lexically_normal();
    const fs::path rel = abs.lexically_relative(dir);
    if (!ec && !rel.empty() && *rel.begin() != "..") audio = rel.u8string();
    nlohmann::json j = {{"audio", audio}, {"duration", u.duration}, {"text", u.text}};
    if (!u.speaker.empty()) j["speaker"] = u.speaker;
    try {
      text += j.dump();
    } catch (const nlohmann::json::exception&) {
      throw ValueError("manifest.6", detail::str("write_manifest '", path, "': utterance ", i,
                                                 " (audio '", u.audio,
                                                 "') has text or speaker that is not valid UTF-8"));
    }
    text += '\n';
  }
  std::ofstream out(fs::u8path(path), std::ios::binary | std::ios::trunc);
  if (!out) throw IoError("manifest.1", detail::str("cannot open '", path, "' for writing"));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw IoError("manifest.1", detail::str("error writing manifest '", path, "'"));
}

}  // namespace asrkit
