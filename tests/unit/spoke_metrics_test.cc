// The spoke's metrics (spoke/metrics): engine calls counted and timed by MeteredEngine, hook
// runs told by the HookRunner, reaper actions, and boxes by phase.
#include "spoke/metrics/spoke_metrics.h"

#include <map>
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "common/subprocess.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/metrics/metered_engine.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::metrics {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("a metered engine counts each call by operation and outcome and times it", "[metrics]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine fake;
  SpokeMetrics metrics({});
  MeteredEngine engine(fake, metrics, clock);
  REQUIRE(engine.Ping().ok());
  REQUIRE(engine.Ping().ok());
  REQUIRE_FALSE(engine.InspectContainer("no-such-container").ok());
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_spoke_engine_calls_total{operation=\"ping\",outcome=\"ok\"} 2"));
  CHECK(
      Has(text,
          "llmbox_spoke_engine_calls_total{operation=\"inspect_container\",outcome=\"not_found\"} "
          "1"));
  CHECK(Has(text, "llmbox_spoke_engine_call_duration_seconds_count{operation=\"ping\"} 2"));
  // Ids are never labels.
  CHECK(text.find("no-such-container") == std::string::npos);
}

TEST_CASE("the metered engine names every engine operation once", "[metrics]") {
  const auto& operations = MeteredEngine::Operations();
  CHECK(operations.size() == 23);
  CHECK(std::set<std::string>(operations.begin(), operations.end()).size() == operations.size());
  CHECK(std::find(operations.begin(), operations.end(), "create_container") != operations.end());
}

TEST_CASE("hook runs are counted by hook event and outcome", "[metrics]") {
  testing::ScratchDir dir("spoke-metrics-hooks");
  const std::string ok = dir.Script("ok", "cat >/dev/null; echo '{\"version\":1}'\n");
  const std::string fails = dir.Script("fails", "cat >/dev/null; exit 3\n");
  SpokeMetrics metrics({"accounts", "cleanup"});
  common::PosixSubprocessRunner runner;
  hooks::HookRunner hooks(
      runner,
      {{.name = "accounts", .event = "box.create", .command = {ok}},
       {.name = "cleanup", .event = "box.destroy", .command = {fails}}},
      [&](std::string_view hook, std::string_view event, const absl::Status& status) {
        metrics.RecordHookRun(hook, event, status);
      });
  const hooks::BoxFacts box{.box_id = "b1", .spoke = "local"};
  auto created = hooks.RunCreate(box);
  REQUIRE(created.ok());
  CHECK_FALSE(hooks.RunDestroy(box, created->state).ok());
  const std::string text = metrics.Render();
  CHECK(
      Has(text,
          "llmbox_spoke_hook_runs_total{hook=\"accounts\",event=\"box.create\",outcome=\"ok\"} 1"));
  CHECK(text.find(
            "llmbox_spoke_hook_runs_total{hook=\"cleanup\",event=\"box.destroy\",outcome=\"ok\"} "
            "0\n") != std::string::npos);
  // A non-zero exit is failed_precondition (hook_runner.cc).
  CHECK(text.find("hook=\"cleanup\",event=\"box.destroy\",outcome=\"failed_precondition\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("reaper actions are counted and boxes are gauged by every phase", "[metrics]") {
  SpokeMetrics metrics({});
  metrics.RecordReaperActions(2, 1, 0);
  metrics.WatchBoxes([] { return std::map<std::string, int>{{"ready", 3}, {"pending", 1}}; });
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_spoke_reaper_actions_total{action=\"expired_box\"} 2"));
  CHECK(Has(text, "llmbox_spoke_reaper_actions_total{action=\"orphan_network\"} 1"));
  CHECK(Has(text, "llmbox_spoke_reaper_actions_total{action=\"error\"} 0"));
  CHECK(Has(text, "llmbox_spoke_boxes{phase=\"ready\"} 3"));
  CHECK(Has(text, "llmbox_spoke_boxes{phase=\"pending\"} 1"));
  CHECK(Has(text, "llmbox_spoke_boxes{phase=\"stopped\"} 0"));
}

}  // namespace
}  // namespace llmbox::spoke::metrics
