#include <asrkit/train/progress.hpp>

#include <algorithm>
#include <sstream>
#include <string>

#include "../test_util.hpp"

using asrkit::format_progress;
using asrkit::Progress;
using asrkit::ProgressOptions;

TEST_CASE("format_progress is pinned", "[train][progress]") {
  CHECK(format_progress(370, 1000, 12.3, "label") ==
        "label  37% |###       | 370/1000 [00:12<00:20, 30.1 it/s]");
  CHECK(format_progress(0, 1000, 0.0, "label") ==
        "label   0% |          | 0/1000 [00:00<?, ? it/s]");
  CHECK(format_progress(1000, 1000, 65.0, "x") ==
        "x 100% |##########| 1000/1000 [01:05<00:00, 15.4 it/s]");
  CHECK(format_progress(999, 1000, 3725.0) ==
        " 99% |######### | 999/1000 [1:02:05<00:03, 3.7 s/it]");
  CHECK(format_progress(5, 0, 1.0, "e") == "e 100% |##########| 5/0 [00:01<00:00, 5.0 it/s]");
  REQUIRE_THROWS_ID(format_progress(-1, 10, 0.0), asrkit::ValueError, "[asrkit.progress.1]");
  REQUIRE_THROWS_ID(format_progress(1, 10, -1.0), asrkit::ValueError, "[asrkit.progress.1]");
}

TEST_CASE("progress prints a plain line every 10% when not on a terminal", "[train][progress]") {
  std::ostringstream os;
  {
    Progress p(100, "feat", os);
    for (int i = 0; i < 100; ++i) p.tick();
    p.finish();
    p.finish();  // idempotent
  }
  const std::string out = os.str();
  CHECK(out.find('\r') == std::string::npos);
  std::istringstream lines(out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    const std::string want = asrkit::detail::str(n * 10, "/100 [");
    CHECK(line.find(want) != std::string::npos);
    CHECK(line.rfind("feat ", 0) == 0);
  }
  CHECK(n == 10);
}

TEST_CASE("progress bar mode redraws with \\r and ends with a newline", "[train][progress]") {
  std::ostringstream os;
  ProgressOptions o;
  o.mode = ProgressOptions::Mode::bar;
  o.min_interval_s = 0.0;
  {
    Progress p(4, "b", os, o);
    p.update(1);
    p.update(2);
    p.tick(2);
  }
  const std::string out = os.str();
  CHECK(out.rfind("\rb  25% |##        | 1/4 [", 0) == 0);
  CHECK(out.find("\rb 100% |##########| 4/4 [") != std::string::npos);
  CHECK(out.back() == '\n');
  CHECK(std::count(out.begin(), out.end(), '\r') == 3);

  std::ostringstream limited;
  o.min_interval_s = 1e9;  // rate limit: only the first and the final draw
  {
    Progress p(1000, "r", limited, o);
    for (int i = 0; i < 1000; ++i) p.tick();
  }
  const std::string limited_out = limited.str();
  CHECK(std::count(limited_out.begin(), limited_out.end(), '\r') == 2);

  std::ostringstream stopped;
  {
    Progress p(10, "s", stopped);  // not a terminal: lines
    p.update(3);
  }  // destroyed early: prints where it stopped
  CHECK(stopped.str().find("3/10") != std::string::npos);
  REQUIRE_THROWS_ID(Progress(-1, "x", stopped), asrkit::ValueError, "[asrkit.progress.1]");
}
