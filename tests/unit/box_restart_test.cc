// What makes a box come back by itself when its engine or its container restarts: the restart
// policy of its containers, the session URL read from the console since the last start, and a
// box that used its last activation attempt stopped for good. The restarts themselves need a
// real engine (tests/integration/box_manager_test.cc, tests/e2e/llmbox_up_test.cc).

#include <algorithm>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "spoke/box/console.h"
#include "spoke/box/manager.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

constexpr char kImage[] = "llmbox-box:dev";

struct World {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  testing::ScratchDir scratch{"box-restart"};

  World() { engine.AddImage(kImage); }

  BoxManagerOptions Options() const {
    BoxManagerOptions options;
    options.spoke_name = "unit";
    options.default_image = kImage;
    options.state_dir = (scratch.path() / "state").string();
    return options;
  }
};

TEST_CASE("a box container comes back with its engine unless stopped and its exec container not",
          "[restart]") {
  World world;
  BoxManager boxes(world.engine, world.clock, world.Options());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  auto box = world.engine.SpecOf("llmbox-pending-b1");
  auto exec = world.engine.SpecOf("llmbox-exec-b1");
  REQUIRE(box.has_value());
  REQUIRE(exec.has_value());
  CHECK(box->restart_policy == "unless-stopped");
  // The next exec starts it again; an idle one is not brought back.
  CHECK(exec->restart_policy == "no");
}

TEST_CASE("a box that used its last activation attempt is stopped so its restart policy leaves it",
          "[restart]") {
  World world;
  BoxManagerOptions options = world.Options();
  options.max_activation_attempts = 1;
  BoxManager boxes(world.engine, world.clock, options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto outcome = boxes.SubmitCode("b1", "bad-1#s");
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  CHECK(outcome->attempts_remaining == 0);
  const auto calls = world.engine.Calls();
  CHECK(std::find(calls.begin(), calls.end(), "StopContainer") != calls.end());
  CHECK(outcome->box.phase == BoxPhase::kStopped);
}

TEST_CASE("a box with attempts left is not stopped after a refused code", "[restart]") {
  World world;
  BoxManager boxes(world.engine, world.clock, world.Options());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto outcome = boxes.SubmitCode("b1", "bad-1#s");
  REQUIRE(outcome.ok());
  CHECK(outcome->attempts_remaining == 4);
  const auto calls = world.engine.Calls();
  CHECK(std::find(calls.begin(), calls.end(), "StopContainer") == calls.end());
  CHECK(outcome->box.phase == BoxPhase::kPending);
}

TEST_CASE("the last session URL in a console is the one of its latest start",
          "[restart][console]") {
  ConsoleScanner scanner;
  scanner.Feed(
      "Remote Control ready\r\nContinue: \x1b]8;;https://claude.ai/code/session_01First\x1b\\"
      "https://claude.ai/code/session_01First\x1b]8;;\x1b\\\r\n");
  scanner.Feed("Remote Control ready\r\nContinue: https://claude.ai/code/session_01Second\r\n");
  CHECK(scanner.SessionUrl() == "https://claude.ai/code/session_01First");
  CHECK(scanner.LastSessionUrl() == "https://claude.ai/code/session_01Second");
  ConsoleScanner plain;
  plain.Feed(
      "Ready: https://claude.ai/code/session_01A\r\nReady: https://claude.ai/code/session_01B\r\n");
  CHECK(plain.SessionUrl() == "https://claude.ai/code/session_01A");
  CHECK(plain.LastSessionUrl() == "https://claude.ai/code/session_01B");
  ConsoleScanner links;
  for (const char* id : {"01C", "01D"}) {
    const std::string url = std::string("https://claude.ai/code/session_") + id;
    links.Feed("Continue: \x1b]8;;" + url + "\x1b\\" + url + "\x1b]8;;\x1b\\\r\n");
  }
  CHECK(links.LastSessionUrl() == "https://claude.ai/code/session_01D");
  CHECK(ConsoleScanner().LastSessionUrl() == std::nullopt);
}

}  // namespace
}  // namespace llmbox::spoke::box
