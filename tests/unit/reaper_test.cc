#include "spoke/reaper/reaper.h"

#include <algorithm>

#include <catch2/catch.hpp>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/fakes/faulty_docker_engine.h"

namespace llmbox::spoke::reaper {
namespace {

using namespace std::chrono_literals;
using box::BoxManager;

docker::Labels BoxLabels(const std::string& id) {
  return {{BoxManager::kManagedLabel, "true"}, {BoxManager::kBoxIdLabel, id}};
}

// A box as the engine holds it: its container (named by phase) and its network.
void AddBox(testing::FakeDockerEngine& engine, const std::string& id, bool ready,
            std::chrono::system_clock::time_point created) {
  docker::ContainerInfo info;
  info.id = "c-" + id;
  info.name = (ready ? "llmbox-" : "llmbox-pending-") + id;
  info.state = "running";
  info.running = true;
  info.labels = BoxLabels(id);
  info.created = created;
  engine.AddContainer(info);
  engine.AddNetwork({"n-" + id, "llmbox-net-" + id, BoxLabels(id), {}});
}

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST_CASE("pending boxes past auth_ttl and orphaned networks are reaped, nothing else",
          "[reaper]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine;
  AddBox(engine, "stale", /*ready=*/false, clock.Now() - 20min);
  AddBox(engine, "fresh", /*ready=*/false, clock.Now() - 1min);
  AddBox(engine, "active", /*ready=*/true, clock.Now() - 48h);
  engine.AddNetwork({"n-lost", "llmbox-net-lost", BoxLabels("lost"), {}});
  engine.AddNetwork({"n-other", "someone-elses-net", {}, {}});
  BoxManager boxes(engine, clock, {});
  Reaper reaper(boxes, engine, clock, {.interval = 30s, .auth_ttl = 15min});

  Sweep sweep = reaper.RunOnce();
  CHECK(sweep.expired_boxes == std::vector<std::string>{"stale"});
  CHECK(sweep.orphan_networks == std::vector<std::string>{"llmbox-net-lost"});
  CHECK(sweep.errors.empty());
  const auto containers = engine.ContainerIds();
  CHECK_FALSE(Has(containers, "c-stale"));
  CHECK(Has(containers, "c-fresh"));
  CHECK(Has(containers, "c-active"));
  const auto networks = engine.NetworkNames();
  CHECK_FALSE(Has(networks, "llmbox-net-stale"));
  CHECK_FALSE(Has(networks, "llmbox-net-lost"));
  CHECK(Has(networks, "llmbox-net-fresh"));
  CHECK(Has(networks, "someone-elses-net"));  // not managed: never touched
}

TEST_CASE("the reaper runs every interval on the clock and reaps a box once its ttl passes",
          "[reaper]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine;
  AddBox(engine, "b1", /*ready=*/false, clock.Now());
  BoxManager boxes(engine, clock, {});
  Reaper reaper(boxes, engine, clock, {.interval = 30s, .auth_ttl = 15min});
  reaper.Start();
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(29s);
  CHECK(reaper.Passes() == 0);
  clock.Advance(1s);
  REQUIRE(clock.WaitForWaiters(1));  // back to waiting after its pass
  CHECK(reaper.Passes() == 1);
  CHECK(Has(engine.ContainerIds(), "c-b1"));
  // 15 minutes later (30 passes), the box has outlived auth_ttl.
  for (int i = 0; i < 30; ++i) {
    clock.Advance(30s);
    REQUIRE(clock.WaitForWaiters(1));
  }
  CHECK(reaper.Passes() == 31);
  CHECK_FALSE(Has(engine.ContainerIds(), "c-b1"));
  reaper.Stop();
}

TEST_CASE("the reaper leaves another spoke's box network alone on an engine they share",
          "[reaper]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine;
  // The other spoke is creating a box: its network exists, its container not yet.
  docker::Labels theirs = BoxLabels("theirs");
  theirs[BoxManager::kSpokeLabel] = "other";
  engine.AddNetwork({"n-theirs", "llmbox-net-theirs", theirs, {}});
  docker::Labels ours = BoxLabels("ours");
  ours[BoxManager::kSpokeLabel] = "this";
  engine.AddNetwork({"n-ours", "llmbox-net-ours", ours, {}});
  BoxManager boxes(engine, clock, {.spoke_name = "this"});
  Reaper reaper(boxes, engine, clock, {.interval = 30s, .auth_ttl = 15min});

  Sweep sweep = reaper.RunOnce();
  CHECK(sweep.orphan_networks == std::vector<std::string>{"llmbox-net-ours"});
  CHECK(sweep.errors.empty());
  const auto networks = engine.NetworkNames();
  CHECK(Has(networks, "llmbox-net-theirs"));
  CHECK_FALSE(Has(networks, "llmbox-net-ours"));
}

TEST_CASE("the reaper journals each box it removes with its reason and a failing one once",
          "[reaper][removals]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine;
  testing::FaultyDockerEngine faulty(engine);
  AddBox(engine, "stale", /*ready=*/false, clock.Now() - 20min);
  AddBox(engine, "fresh", /*ready=*/false, clock.Now() - 1min);
  engine.AddNetwork({"n-lost", "llmbox-net-lost", BoxLabels("lost"), {}});
  BoxManager boxes(faulty, clock, {});
  RemovalJournal journal({}, clock);
  Reaper reaper(boxes, faulty, clock, {.interval = 30s, .auth_ttl = 15min, .journal = &journal});

  // Two passes that cannot stop the stale box: one entry for the run of failures.
  faulty.FailAt("StopContainer");
  (void)reaper.RunOnce();
  faulty.FailAt("StopContainer");
  (void)reaper.RunOnce();
  (void)reaper.RunOnce();  // now it goes
  (void)reaper.RunOnce();  // nothing left to remove: nothing journaled

  const auto page = journal.After(journal.id(), 0, 100);
  REQUIRE(page.entries.size() == 3);
  CHECK(page.entries[0].box_id == "stale");
  CHECK(page.entries[0].reason == "expired");
  CHECK(page.entries[0].code == absl::StatusCode::kUnavailable);
  CHECK(page.entries[1].box_id == "lost");  // the first pass removed the orphan network
  CHECK(page.entries[1].reason == "container_gone");
  CHECK(page.entries[1].code == absl::StatusCode::kOk);
  CHECK(page.entries[2].box_id == "stale");
  CHECK(page.entries[2].code == absl::StatusCode::kOk);
}

}  // namespace
}  // namespace llmbox::spoke::reaper
