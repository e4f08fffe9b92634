// examples/cli.hpp - the command-line conventions shared by asrkit's tools (not part of the
// library): --help / -h prints the usage and exits 0; a bad argument prints "<tool>: <what>" and
// the usage to stderr and exits 2; option values are read and checked in one place.
//
//   const asrkit_cli::Tool kTool{"asrkit-fold", kUsage};
//   asrkit_cli::Arguments args(argc, argv, kTool);
//   while (args.next()) {
//     if (args.flag() == "--in") a.in = args.value();
//     else if (args.flag() == "--alpha") a.alpha = args.number();
//     else args.error("unknown option " + args.flag());
//   }
//   return kTool.guarded([&] { return run(a); });   // exceptions: message + exit code 1
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace asrkit_cli {

struct Tool {
  const char* name;
  const char* usage;

  [[noreturn]] void error(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n\n%s", name, what.c_str(), usage);
    std::exit(2);
  }

  /// f()'s exit code; an exception becomes "<tool>: <what>" on stderr and exit code 1.
  template <class F>
  int guarded(F&& f) const {
    try {
      return f();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", name, e.what());
      return 1;
    }
  }

  /// `text` as a number, or a usage error naming `flag`.
  double number(const std::string& flag, const std::string& text) const {
    char* end = nullptr;
    const double x = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') error(flag + " expects a number, got \"" + text + "\"");
    return x;
  }
};

/// Walks argv[1..]: next() steps to the following argument (a flag or a positional one), value()
/// consumes the argument after the current flag.
class Arguments {
 public:
  Arguments(int argc, char** argv, const Tool& tool) : argc_(argc), argv_(argv), tool_(tool) {}

  bool next() {
    if (++i_ >= argc_) return false;
    flag_ = argv_[i_];
    if (flag_ == "--help" || flag_ == "-h") {
      std::fputs(tool_.usage, stdout);
      std::exit(0);
    }
    return true;
  }
  const std::string& flag() const noexcept { return flag_; }
  bool positional() const noexcept { return flag_.empty() || flag_[0] != '-'; }

  std::string value() {
    if (i_ + 1 >= argc_) error(flag_ + " needs a value");
    return argv_[++i_];
  }
  double number() { return tool_.number(flag_, value()); }
  /// An integer >= min.
  long integer(long min) {
    const std::string v = value();
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < min)
      error(flag_ + " expects an integer >= " + std::to_string(min) + ", got \"" + v + "\"");
    return n;
  }

  [[noreturn]] void error(const std::string& what) const { tool_.error(what); }

 private:
  int argc_;
  char** argv_;
  const Tool& tool_;
  int i_ = 0;
  std::string flag_;
};

}  // namespace asrkit_cli
