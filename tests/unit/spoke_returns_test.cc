// The spoke monitor's return hooks (issue 17): they run on a pool of the monitor's own, so a
// slow spoke's reconcile never holds back a health round; a spoke whose own counts show boxes
// that changed by themselves is reconciled at the next round; a spoke's claimed places are
// capped; and the hub's start polls before it reconciles. Over fake spokes, a fake clock and a
// real SQLite store.
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <catch2/catch.hpp>

#include "hub/boxes/registry.h"
#include "hub/boxes/spoke_monitor.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using testing::FakeSpokeClient;

constexpr auto kWait = 10s;  // real time a hook on the pool may take to be noticed

struct Fixture {
  explicit Fixture(MonitorOptions options = {}) : dir("spoke-returns") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    monitor = std::make_unique<SpokeMonitor>(*db, spokes, clock, options);
  }
  std::shared_ptr<FakeSpokeClient> Add(const std::string& name) {
    auto spoke = std::make_shared<FakeSpokeClient>();
    spokes.Add(name, spoke, /*local=*/false);
    return spoke;
  }
  // How often the hook ran for each spoke, once the pool is idle.
  std::map<std::string, int> Returns() {
    REQUIRE(monitor->WaitForReturns(kWait));
    std::lock_guard lock(mu);
    return returns;
  }
  void Count() {
    monitor->SetReturnHook([this](const std::string& name) {
      std::lock_guard lock(mu);
      ++returns[name];
    });
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::mutex mu;
  std::map<std::string, int> returns;     // guarded by mu
  std::unique_ptr<SpokeMonitor> monitor;  // last: goes first
};

TEST_CASE("a return hook that is slow does not hold back the next health rounds",
          "[spoke-returns]") {
  Fixture f;
  auto slow = f.Add("slow");
  auto other = f.Add("other");
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int ran = 0;
  f.monitor->SetReturnHook([&](const std::string& name) {
    std::unique_lock lock(mu);
    ++ran;
    if (name == "slow") cv.wait(lock, [&] { return release; });
  });
  // The first round answers for both: each one's hook is queued, "slow"'s blocks.
  auto first = std::async(std::launch::async, [&] { f.monitor->Poll(); });
  const bool first_done = first.wait_for(kWait) == std::future_status::ready;
  CHECK(first_done);
  auto second = std::async(std::launch::async, [&] { f.monitor->Poll(); });
  const bool second_done = second.wait_for(kWait) == std::future_status::ready;
  CHECK(second_done);
  CHECK(other->Timeouts("Health").size() == 2);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  first.wait();
  second.wait();
  REQUIRE(f.monitor->WaitForReturns(kWait));
  std::lock_guard lock(mu);
  CHECK(ran == 2);  // once each: the second round had nothing new
}

TEST_CASE("a spoke whose boxes stop or are reaped by themselves is reconciled at the next round",
          "[spoke-returns]") {
  Fixture f;
  auto spoke = f.Add("a");
  f.Count();
  spoke->health.pending = 3;
  spoke->health.ready = 2;
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 1);  // its first answer

  spoke->health.pending = 5;  // two creates: no reconcile
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 1);

  spoke->health.ready = 1;  // a ready box stopped
  spoke->health.error = 1;
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 2);

  spoke->health.pending = 4;  // a pending box was reaped
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 3);

  f.monitor->Poll();  // nothing changed
  CHECK(f.Returns()["a"] == 3);

  spoke->health.engine_reachable = false;  // its engine went down: nothing to list
  spoke->health.pending = spoke->health.ready = spoke->health.error = 0;
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 3);
  spoke->health.engine_reachable = true;  // and came back, its boxes restarted
  spoke->health.pending = 4;
  f.monitor->Poll();
  CHECK(f.Returns()["a"] == 4);
}

TEST_CASE("a spoke claiming more places than max_boxes_per_spoke is counted as that many",
          "[spoke-returns]") {
  Fixture f({.max_boxes_per_spoke = 50});
  auto liar = f.Add("liar");
  liar->health.max_boxes = 4'000'000'000u;
  liar->health.pending = 49;
  auto honest = f.Add("honest");
  honest->health.max_boxes = 40;
  honest->health.pending = 10;
  f.monitor->Poll();
  auto view = f.monitor->Find("liar");
  REQUIRE(view.has_value());
  REQUIRE(view->health.has_value());
  CHECK(view->health->max_boxes == 50);
  // One place left on the liar, 30 on the honest spoke: placement goes by the capped count.
  auto placed = f.monitor->Place("", {});
  REQUIRE(placed.ok());
  CHECK(*placed == "honest");
  f.monitor->CancelPlacement(*placed);
}

TEST_CASE(
    "the hub's start reconciles each spoke that answers once and asks an unreachable spoke "
    "nothing but its health",
    "[spoke-returns]") {
  Fixture f;
  auto up = f.Add("up");
  auto down = f.Add("down");
  down->FailEveryCall(absl::UnavailableError("failed to connect to all addresses"));
  BoxRegistry registry(*f.db, f.spokes, f.clock,
                       RegistryOptions{.monitor = {.unreachable_after = 1}});
  registry.Start();
  REQUIRE(registry.monitor().WaitForReturns(kWait));
  CHECK(up->Timeouts("ListBoxes").size() == 1);
  CHECK(down->Timeouts("ListBoxes").empty());
  // Its health only: twice, as a first call that fails at once is tried again in its round.
  CHECK(down->Timeouts("Health").size() == 2);
  CHECK(registry.monitor().IsUnreachable("down"));

  down->FailEveryCall(absl::OkStatus());  // it returns: reconciled then
  registry.monitor().Poll();
  REQUIRE(registry.monitor().WaitForReturns(kWait));
  CHECK(down->Timeouts("ListBoxes").size() == 1);
  CHECK(up->Timeouts("ListBoxes").size() == 1);
}

}  // namespace
}  // namespace llmbox::hub::boxes
