// The hub's SpokeMonitor (health rounds, degraded and unreachable spokes, trials, placement)
// and BoxRegistry::Create's use of it, over fake spokes, a fake clock and a real SQLite store
// in a scratch directory.
#include "hub/boxes/spoke_monitor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "common/absl_compat.h"
#include "hub/boxes/registry.h"
#include "hub/config/hub_config.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using testing::FakeSpokeClient;

const auth::Principal kAlice = auth::Principal::ApiKey("alice", /*admin=*/false);
constexpr auto kTrialWait = 10s;  // real time a finished fake trial may take to be noticed

struct Fixture {
  explicit Fixture(MonitorOptions options = {}) : dir("spoke-monitor"), options(options) {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    monitor = std::make_unique<SpokeMonitor>(*db, spokes, clock, options);
  }

  std::shared_ptr<FakeSpokeClient> Add(const std::string& name, std::uint32_t max_boxes = 20) {
    auto spoke = std::make_shared<FakeSpokeClient>();
    spoke->health.max_boxes = max_boxes;
    spokes.Add(name, spoke, /*local=*/false);
    fakes[name] = spoke;
    return spoke;
  }

  // The monitor the test watches: `monitor`, or the registry's.
  SpokeMonitor& Watched() { return watched != nullptr ? *watched : *monitor; }
  SpokeView ViewOf(const std::string& name) {
    auto view = Watched().Find(name);
    REQUIRE(view.has_value());
    return *view;
  }

  // `count` creates on `spoke` that failed for its own reason.
  void Fail(const std::string& spoke, int count) {
    for (int i = 0; i < count; ++i) {
      monitor->RecordCreate(spoke, CreateOutcome::kSpokeFault, "engine said 500");
    }
  }

  std::int64_t NowMs() { return common::ToUnixMillis(clock.Now()); }

  testing::ScratchDir dir;
  MonitorOptions options;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::map<std::string, std::shared_ptr<FakeSpokeClient>> fakes;
  std::unique_ptr<SpokeMonitor> monitor;  // last: goes first
  SpokeMonitor* watched = nullptr;
};

// The store's spoke states (schema 9) come with the store helper's branch; the tests of what
// only the store can hold (an operator's cordon, a condition read back by another monitor)
// say so and stop where that part is not built in.
bool StoreKeepsSpokeStates() {
  if (store::SqliteStore::SchemaVersion() >= 9) return true;
  WARN("this build's store does not keep spoke states yet (schema < 9): checks skipped");
  return false;
}

TEST_CASE("ClassifyCreateFailure counts the spoke's failures and not the caller's",
          "[spoke-monitor]") {
  CHECK(ClassifyCreateFailure(absl::OkStatus()) == CreateOutcome::kSucceeded);
  for (const absl::Status& fault :
       {absl::UnavailableError("x"), absl::DeadlineExceededError("x"), absl::InternalError("x"),
        absl::UnknownError("x"), absl::DataLossError("x"), absl::AbortedError("x")}) {
    INFO(fault.ToString());
    CHECK(ClassifyCreateFailure(fault) == CreateOutcome::kSpokeFault);
  }
  for (const absl::Status& theirs :
       {absl::InvalidArgumentError("x"), absl::PermissionDeniedError("x"),
        absl::AlreadyExistsError("x"), absl::NotFoundError("x"), absl::FailedPreconditionError("x"),
        absl::ResourceExhaustedError("x"), absl::UnimplementedError("x"),
        absl::CancelledError("x")}) {
    INFO(theirs.ToString());
    CHECK(ClassifyCreateFailure(theirs) == CreateOutcome::kNotCounted);
  }
  // spoke/box/manager.cc: the box's console ended before it printed its authorize URL.
  CHECK(ClassifyCreateFailure(absl::FailedPreconditionError(
            "box b1: waiting for the authorize URL: the box's console ended before it printed "
            "one")) == CreateOutcome::kSpokeFault);
}

TEST_CASE(
    "a spoke whose first health call fails at once is asked again in the same round and one "
    "that answered before is not",
    "[spoke-monitor]") {
  Fixture f;
  auto spoke = f.Add("a");
  int calls = 0;
  bool fail_next = true;
  spoke->during_health = [&] {
    std::lock_guard lock(spoke->mu);
    ++calls;
    spoke->health_status = std::exchange(fail_next, false)
                               ? absl::UnavailableError("connect failed by chance")
                               : absl::OkStatus();
  };
  f.monitor->Poll();
  CHECK(calls == 2);
  SpokeView view = f.ViewOf("a");
  CHECK(view.health.has_value());
  CHECK(view.state == SpokeState::kReady);
  CHECK(f.monitor->Place("", {}).ok());

  // Once it has answered, a failure waits for the next round like any other.
  fail_next = true;
  f.monitor->Poll();
  CHECK(calls == 3);
  // And a spoke that never answers costs one retry a round, not more.
  auto down = f.Add("down");
  int down_calls = 0;
  down->during_health = [&] {
    std::lock_guard lock(down->mu);
    ++down_calls;
    down->health_status = absl::UnavailableError("connection refused");
  };
  f.monitor->Poll();
  CHECK(down_calls == 2);
}

TEST_CASE("placement passes over each spoke that is not ready and says why", "[spoke-monitor]") {
  Fixture f({.trial_backoff_min = 1h, .trial_backoff_max = 1h});
  f.Add("a-degraded");
  f.Add("b-unreachable")->health_status = absl::UnavailableError("connection refused");
  f.Add("c-engine")->health = {.max_boxes = 20,
                               .engine_reachable = false,
                               .engine_error = "no socket",
                               .allowed_images = {"llmbox-box:dev"}};
  f.Add("d-full", 1)->health.pending = 1;
  f.Add("e-image")->health.allowed_images = {"other:1"};
  f.Add("f-refusing")->health_status = absl::PermissionDeniedError("not the hub");
  f.monitor->Poll();
  f.Fail("a-degraded", 3);
  f.monitor->Poll();  // b-unreachable misses its second health call

  auto placed = f.monitor->Place("llmbox-box:dev", {});
  REQUIRE(absl::IsResourceExhausted(placed.status()));
  const std::string why(placed.status().message());
  INFO(why);
  CHECK(why.find("a-degraded is degraded since ") != std::string::npos);
  // Counts only: the failures' words (someone's box id, its output) stay in the hub's log.
  CHECK(why.find("3 of the last 3 creates failed") != std::string::npos);
  CHECK(why.find("engine said 500") == std::string::npos);
  CHECK(why.find("b-unreachable is unreachable since ") != std::string::npos);
  // A chatbot reads no transport error (it names internal addresses).
  CHECK(why.find("connection refused") == std::string::npos);
  CHECK(why.find("c-engine's Docker engine is down") != std::string::npos);
  CHECK(why.find("no socket") == std::string::npos);  // the spoke's words: the hub's log
  CHECK(why.find("d-full is full (1 of 1 boxes") != std::string::npos);
  CHECK(why.find("e-image does not allow image \"llmbox-box:dev\"") != std::string::npos);
  CHECK(why.find("f-refusing answered its last health check with an error (not the hub)") !=
        std::string::npos);
  // An engine that is down keeps its spoke out of placement without making it degraded.
  CHECK(f.ViewOf("c-engine").state == SpokeState::kReady);
  CHECK(f.ViewOf("f-refusing").state == SpokeState::kReady);
  CHECK(f.ViewOf("b-unreachable").state == SpokeState::kUnreachable);

  f.Add("g-ready");
  f.monitor->Poll();
  auto now = f.monitor->Place("llmbox-box:dev", {});
  REQUIRE(now.ok());
  CHECK(*now == "g-ready");
  // Excluded (a create failed there just now): passed over, saying so.
  auto excluded = f.monitor->Place("llmbox-box:dev", {"g-ready"});
  REQUIRE_FALSE(excluded.ok());
  CHECK(std::string(excluded.status().message()).find("g-ready was tried already") !=
        std::string::npos);
}

TEST_CASE("placement passes over cordoned and draining spokes naming the operator's reason",
          "[spoke-monitor]") {
  Fixture f;
  if (!StoreKeepsSpokeStates()) return;
  f.Add("a");
  f.Add("b");
  REQUIRE(f.db->SetSpokeAdmin({.name = "a",
                               .state = store::SpokeAdminState::kCordoned,
                               .reason = "kernel upgrade",
                               .since_ms = f.NowMs()})
              .ok());
  REQUIRE(f.db->SetSpokeAdmin(
                  {.name = "b", .state = store::SpokeAdminState::kDraining, .since_ms = f.NowMs()})
              .ok());
  f.monitor->Poll();
  auto placed = f.monitor->Place("", {});
  REQUIRE(absl::IsResourceExhausted(placed.status()));
  const std::string why(placed.status().message());
  INFO(why);
  CHECK(why.find("a is cordoned since ") != std::string::npos);
  CHECK(why.find("by the operator: kernel upgrade") != std::string::npos);
  CHECK(why.find("b is draining since ") != std::string::npos);
  // Uncordoned: the next round reads it and placement takes the spoke again.
  REQUIRE(f.db->SetSpokeAdmin({.name = "a", .since_ms = f.NowMs()}).ok());
  f.monitor->Poll();
  auto again = f.monitor->Place("", {});
  REQUIRE(again.ok());
  CHECK(*again == "a");
}

TEST_CASE("sixteen concurrent placements spread over the spokes by their creates in flight",
          "[spoke-monitor]") {
  Fixture f;
  for (const char* name : {"a", "b", "c", "d"}) f.Add(name);
  f.monitor->Poll();
  std::mutex mu;
  std::map<std::string, int> chosen;
  std::vector<std::thread> creates;
  for (int i = 0; i < 16; ++i) {
    creates.emplace_back([&] {
      auto placed = f.monitor->Place("", {});
      std::lock_guard lock(mu);
      ++chosen[placed.ok() ? *placed : "error"];
    });
  }
  for (auto& create : creates) create.join();
  CHECK(chosen == std::map<std::string, int>{{"a", 4}, {"b", 4}, {"c", 4}, {"d", 4}});
  CHECK(f.ViewOf("a").creates_in_flight == 4);
  // Each outcome frees its place; a success counts as a box until the next health answer.
  for (int i = 0; i < 4; ++i) f.monitor->RecordCreate("a", CreateOutcome::kSucceeded, "");
  for (int i = 0; i < 4; ++i) f.monitor->CancelPlacement("b");
  CHECK(f.ViewOf("a").creates_in_flight == 0);
  CHECK(f.ViewOf("b").creates_in_flight == 0);
  // b, c and d: 16 free minus 4 in flight for c and d; b has 20 free, a 16 (4 just made).
  auto next = f.monitor->Place("", {});
  REQUIRE(next.ok());
  CHECK(*next == "b");
}

TEST_CASE(
    "a spoke is degraded once its failed share is over the threshold and never below "
    "min_creates",
    "[spoke-monitor]") {
  Fixture f({.window = 10, .min_creates = 3, .failure_threshold = 0.5});
  f.Add("a");
  f.Add("b");
  f.monitor->Poll();
  f.Fail("a", 2);  // 2 of 2: over the threshold, but fewer than min_creates
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
  CHECK(f.ViewOf("a").recent_failures == 2);
  f.monitor->RecordCreate("a", CreateOutcome::kSucceeded, "");  // 2 of 3
  CHECK(f.ViewOf("a").state == SpokeState::kDegraded);
  CHECK(f.ViewOf("a").condition.since_ms == f.NowMs());
  // b: 1 of 2 (one half, not over it), then 2 of 4: never degraded.
  f.monitor->RecordCreate("b", CreateOutcome::kSucceeded, "");
  f.Fail("b", 1);
  f.monitor->RecordCreate("b", CreateOutcome::kSucceeded, "");
  f.Fail("b", 1);
  CHECK(f.ViewOf("b").state == SpokeState::kReady);
  CHECK(f.ViewOf("b").recent_creates == 4);
  auto placed = f.monitor->Place("", {});
  REQUIRE(placed.ok());
  CHECK(*placed == "b");
}

TEST_CASE("create outcomes older than the window age do not count", "[spoke-monitor]") {
  Fixture f({.min_creates = 3, .window_age = 60s});
  f.Add("a");
  f.monitor->Poll();
  f.Fail("a", 2);
  f.clock.Advance(61s);
  CHECK(f.ViewOf("a").recent_creates == 0);
  f.Fail("a", 1);  // 1 of 1 counted
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
  CHECK(f.ViewOf("a").recent_failures == 1);
  f.Fail("a", 2);  // 3 of 3 within the minute
  CHECK(f.ViewOf("a").state == SpokeState::kDegraded);
}

TEST_CASE("the window keeps only the latest creates", "[spoke-monitor]") {
  Fixture f({.window = 4, .min_creates = 4, .failure_threshold = 0.5});
  f.Add("a");
  f.monitor->Poll();
  f.Fail("a", 2);
  for (int i = 0; i < 4; ++i) f.monitor->RecordCreate("a", CreateOutcome::kSucceeded, "");
  CHECK(f.ViewOf("a").recent_creates == 4);
  CHECK(f.ViewOf("a").recent_failures == 0);
}

TEST_CASE("failures that are the caller's never degrade a spoke", "[spoke-monitor]") {
  Fixture f({.min_creates = 1, .failure_threshold = 0.0});
  f.Add("a");
  f.monitor->Poll();
  for (const absl::Status& theirs :
       {absl::InvalidArgumentError("image not allowed"), absl::PermissionDeniedError("policy"),
        absl::AlreadyExistsError("taken"), absl::ResourceExhaustedError("full"),
        absl::NotFoundError("no such image")}) {
    for (int i = 0; i < 5; ++i) {
      f.monitor->RecordCreate("a", ClassifyCreateFailure(theirs), common::AsStd(theirs.message()));
    }
  }
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
  CHECK(f.ViewOf("a").recent_creates == 0);
}

TEST_CASE("a degraded spoke comes back after its health and a trial create succeed",
          "[spoke-monitor]") {
  Fixture f({.trial_backoff_min = 30s, .trial_backoff_max = 10min});
  auto spoke = f.Add("a");
  f.monitor->Poll();
  f.Fail("a", 3);
  REQUIRE(f.ViewOf("a").state == SpokeState::kDegraded);
  CHECK(f.ViewOf("a").next_trial_ms == f.NowMs() + 30'000);
  f.monitor->Poll();  // the back-off has not passed: no trial
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  CHECK(spoke->creates.empty());

  // The back-off passed, but the engine is down: still no trial.
  f.clock.Advance(30s);
  spoke->health.engine_reachable = false;
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  CHECK(spoke->creates.empty());

  spoke->health.engine_reachable = true;
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  REQUIRE(spoke->creates.size() == 1);
  const std::string trial = spoke->creates[0].box_id;
  CHECK(trial.starts_with(kTrialBoxPrefix));
  CHECK(spoke->destroyed == std::vector<std::string>{trial});
  CHECK_FALSE(f.monitor->IsTrialBox(trial));
  const SpokeView healed = f.ViewOf("a");
  CHECK(healed.state == SpokeState::kReady);
  CHECK(healed.recent_creates == 0);  // the window starts over
  CHECK(healed.next_trial_ms == 0);
  auto placed = f.monitor->Place("", {});
  REQUIRE(placed.ok());
  CHECK(*placed == "a");
  // The trial box never was a registry box.
  auto boxes = f.db->ListBoxes({});
  REQUIRE(boxes.ok());
  CHECK(boxes->empty());
}

TEST_CASE("each failed trial doubles the back-off up to its maximum", "[spoke-monitor]") {
  Fixture f({.trial_backoff_min = 1s, .trial_backoff_max = 5s});
  auto spoke = f.Add("a");
  f.monitor->Poll();
  f.Fail("a", 3);
  spoke->create_status = absl::UnavailableError("engine said 500");
  std::vector<std::int64_t> waits;
  for (int trial = 0; trial < 5; ++trial) {
    f.clock.Advance(std::chrono::milliseconds(f.ViewOf("a").next_trial_ms - f.NowMs()));
    f.monitor->Poll();
    REQUIRE(f.monitor->WaitForTrials(kTrialWait));
    waits.push_back(f.ViewOf("a").next_trial_ms - f.NowMs());
  }
  CHECK(waits == std::vector<std::int64_t>{2'000, 4'000, 5'000, 5'000, 5'000});
  CHECK(spoke->creates.size() == 5);
  // An Unavailable create may have gone through: each trial box is taken down.
  CHECK(spoke->destroyed.size() == 5);
  CHECK(f.ViewOf("a").state == SpokeState::kDegraded);
}

TEST_CASE("a trial never holds up a round and only one runs per spoke at a time",
          "[spoke-monitor]") {
  Fixture f({.trial_backoff_min = 1s});
  auto spoke = f.Add("a");
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  bool entered = false;
  spoke->during_create = [&](const cluster::CreateBoxArgs&) {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  f.monitor->Poll();
  f.Fail("a", 3);
  f.clock.Advance(1s);
  f.monitor->Poll();  // starts the trial, which hangs in its create
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, kTrialWait, [&] { return entered; }));
  }
  CHECK(f.monitor->IsTrialBox(spoke->creates.at(0).box_id));
  f.clock.Advance(10s);
  f.monitor->Poll();  // returns although the trial runs, and starts no second one
  CHECK(spoke->creates.size() == 1);
  CHECK(f.ViewOf("a").state == SpokeState::kDegraded);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
}

TEST_CASE(
    "a spoke is unreachable after unreachable_after missed health calls and the return "
    "hook runs once when it answers again",
    "[spoke-monitor]") {
  Fixture f({.unreachable_after = 3});
  auto spoke = f.Add("a");
  std::map<std::string, int> returns;
  f.monitor->SetReturnHook([&](const std::string& name) { ++returns[name]; });
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForReturns(kTrialWait));
  CHECK(returns["a"] == 1);  // the first answer since the monitor started
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForReturns(kTrialWait));
  CHECK(returns["a"] == 1);

  spoke->health_status = absl::DeadlineExceededError("deadline exceeded");
  const std::int64_t first_miss = f.NowMs();
  f.monitor->Poll();
  f.clock.Advance(10s);
  spoke->health_status = absl::UnavailableError("connection refused");
  f.monitor->Poll();
  CHECK_FALSE(f.monitor->IsUnreachable("a"));
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
  // Until it is unreachable its last answer stands (a create that fails there is retried).
  auto placed = f.monitor->Place("", {});
  REQUIRE(placed.ok());
  f.monitor->CancelPlacement(*placed);
  f.clock.Advance(10s);
  f.monitor->Poll();
  CHECK(f.monitor->IsUnreachable("a"));
  const SpokeView down = f.ViewOf("a");
  CHECK(down.state == SpokeState::kUnreachable);
  CHECK(down.condition.since_ms == first_miss);
  CHECK(down.condition.reason == "connection refused");
  CHECK(returns["a"] == 1);

  spoke->health_status = absl::OkStatus();
  f.monitor->Poll();
  CHECK_FALSE(f.monitor->IsUnreachable("a"));
  REQUIRE(f.monitor->WaitForReturns(kTrialWait));
  CHECK(returns["a"] == 2);
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForReturns(kTrialWait));
  CHECK(returns["a"] == 2);
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
}

TEST_CASE("a spoke that answers its health with an error is never unreachable", "[spoke-monitor]") {
  Fixture f({.unreachable_after = 1});
  f.Add("a")->health_status = absl::PermissionDeniedError("not the hub");
  for (int i = 0; i < 3; ++i) f.monitor->Poll();
  CHECK_FALSE(f.monitor->IsUnreachable("a"));
}

TEST_CASE("a spoke's condition is written when it changes and a new monitor reads it back",
          "[spoke-monitor]") {
  Fixture f({.trial_backoff_min = 5s});
  if (!StoreKeepsSpokeStates()) return;
  auto spoke = f.Add("a");
  f.monitor->Poll();
  f.Fail("a", 3);
  const std::int64_t since = f.NowMs();
  auto written = f.db->ListSpokeConditions();
  REQUIRE(written.ok());
  REQUIRE(written->size() == 1);
  CHECK(written->at(0).condition == store::SpokeCondition::kDegraded);
  CHECK(written->at(0).since_ms == since);
  // Rounds that change nothing write nothing (the record keeps its first check time).
  const std::int64_t checked = written->at(0).checked_at_ms;
  f.clock.Advance(1s);
  f.monitor->Poll();
  f.monitor->Poll();
  auto again = f.db->ListSpokeConditions();
  REQUIRE(again.ok());
  CHECK(again->at(0).checked_at_ms == checked);

  // A hub restart: a new monitor over the same store keeps the spoke degraded...
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  f.monitor.reset();
  spoke->create_status = absl::UnavailableError("still broken");
  f.monitor = std::make_unique<SpokeMonitor>(*f.db, f.spokes, f.clock, f.options);
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  CHECK(f.ViewOf("a").state == SpokeState::kDegraded);
  CHECK(f.ViewOf("a").condition.since_ms == since);
  CHECK_FALSE(f.monitor->Place("", {}).ok());
  // ...until a trial succeeds.
  spoke->create_status = absl::OkStatus();
  f.clock.Advance(std::chrono::milliseconds(f.ViewOf("a").next_trial_ms - f.NowMs()));
  f.monitor->Poll();
  REQUIRE(f.monitor->WaitForTrials(kTrialWait));
  CHECK(f.ViewOf("a").state == SpokeState::kReady);
  auto healed = f.db->ListSpokeConditions();
  REQUIRE(healed.ok());
  CHECK(healed->at(0).condition == store::SpokeCondition::kHealthy);
}

TEST_CASE("a hostile spoke health cannot make placement overflow or divide by zero",
          "[spoke-monitor]") {
  Fixture f;
  constexpr std::uint32_t kMax = std::numeric_limits<std::uint32_t>::max();
  // Counts whose 32-bit sum wraps around to a small number: the spoke must still be full.
  f.Add("a-wraps")->health = {.max_boxes = kMax,
                              .creating = kMax,
                              .pending = kMax,
                              .ready = kMax,
                              .error = 4,
                              .engine_reachable = true,
                              .allowed_images = {"llmbox-box:dev"}};
  f.Add("b-zero", 0);
  f.Add("c-huge-error")->health = {
      .max_boxes = 20, .engine_reachable = false, .engine_error = std::string(1 << 20, 'x')};
  f.monitor->Poll();
  auto placed = f.monitor->Place("", {});
  REQUIRE(absl::IsResourceExhausted(placed.status()));
  const std::string why(placed.status().message());
  CHECK(why.find("a-wraps is full") != std::string::npos);
  CHECK(why.find("b-zero is full (0 of 0 boxes") != std::string::npos);
  CHECK(why.size() < 2000);  // the spoke's words are cut

  f.Add("d-roomy", kMax);
  f.monitor->Poll();
  for (int i = 0; i < 3; ++i) {
    auto roomy = f.monitor->Place("", {});
    REQUIRE(roomy.ok());
    CHECK(*roomy == "d-roomy");
  }
}

TEST_CASE("a round asks each spoke once with at most max_concurrent_probes calls at a time",
          "[spoke-monitor]") {
  Fixture f({.max_concurrent_probes = 4});
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> calls{0};
  for (int i = 0; i < 40; ++i) {
    auto spoke = f.Add("s" + std::to_string(i));
    spoke->during_health = [&] {
      const int now = ++running;
      for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
      }
      ++calls;
      std::this_thread::yield();
      --running;
    };
  }
  f.monitor->Poll();
  CHECK(calls == 40);
  CHECK(most <= 4);
  CHECK(f.monitor->View().size() == 40);
}

// BoxRegistry::Create with the monitor's placement.
struct RegistryFixture : Fixture {
  explicit RegistryFixture(RegistryOptions registry_options = {},
                           MonitorOptions monitor_options = {})
      : Fixture(monitor_options) {
    registry_options.monitor = monitor_options;
    registry = std::make_unique<BoxRegistry>(*db, spokes, clock, registry_options);
    watched = &registry->monitor();
  }
  ~RegistryFixture() { registry.reset(); }

  absl::StatusOr<CreatedBox> Create(const std::string& id, const std::string& spoke = "") {
    return registry->Create(
        {.box_id = id, .spoke = spoke, .owner = kAlice},
        [this](double, double, std::string_view what) { progress.emplace_back(what); });
  }

  std::vector<std::string> progress;
  std::unique_ptr<BoxRegistry> registry;
};

TEST_CASE("a single spoke is chosen while ready and refused naming why once degraded",
          "[spoke-monitor]") {
  RegistryFixture f({}, {.trial_backoff_min = 1h});
  auto spoke = f.Add("local");
  auto made = f.Create("first");  // no round yet: placement runs one
  REQUIRE(made.ok());
  CHECK(made->record.spoke == "local");
  spoke->create_status = absl::InternalError("engine said 500");
  // 1 of 2 failed (not over one half), then 2 of 3: degraded.
  for (const char* id : {"b1", "b2"}) CHECK(absl::IsInternal(f.Create(id).status()));
  auto refused = f.Create("b3");
  REQUIRE(absl::IsResourceExhausted(refused.status()));
  CHECK(std::string(refused.status().message()).find("local is degraded since") !=
        std::string::npos);
  CHECK(spoke->creates.size() == 3);  // the refused one never reached the spoke
  CHECK(f.registry->monitor().View().at(0).creates_in_flight == 0);
}

TEST_CASE("a create that failed for its spoke's reason is retried once on another spoke",
          "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a", 30);  // the most room: placement tries it first
  auto b = f.Add("b", 20);
  a->create_status = absl::UnavailableError("engine said 500");
  auto made = f.Create("moved");
  INFO(made.status().message());
  REQUIRE(made.ok());
  CHECK(made->record.spoke == "b");
  CHECK(a->creates.size() == 1);
  CHECK(b->creates.size() == 1);
  // The first spoke may have finished it after all: taken down there.
  CHECK(a->destroyed == std::vector<std::string>{"moved"});
  auto stored = f.db->GetBox("moved");
  REQUIRE(stored.ok());
  CHECK(stored->spoke == "b");
  CHECK(stored->phase == store::Phase::kPending);
  bool told = false;
  for (const auto& line : f.progress) told = told || line.find("trying spoke b") != line.npos;
  CHECK(told);
  CHECK(f.ViewOf("a").recent_failures == 1);
  CHECK(f.ViewOf("b").recent_creates == 1);
  CHECK(f.ViewOf("a").creates_in_flight == 0);
  CHECK(f.ViewOf("b").creates_in_flight == 0);
}

TEST_CASE("a create is not retried when the caller named the spoke or the fault was theirs",
          "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a", 30);
  auto b = f.Add("b", 20);
  a->create_status = absl::UnavailableError("engine said 500");
  auto named = f.Create("named", "a");
  CHECK(absl::IsUnavailable(named.status()));
  a->create_status = absl::PermissionDeniedError("network policy refused");
  auto theirs = f.Create("theirs");
  CHECK(absl::IsPermissionDenied(theirs.status()));
  CHECK(b->creates.empty());
  CHECK(absl::IsNotFound(f.db->GetBox("named").status()));
  CHECK(absl::IsNotFound(f.db->GetBox("theirs").status()));
  CHECK(f.ViewOf("a").creates_in_flight == 0);
}

TEST_CASE("a create with a default spoke is not retried elsewhere", "[spoke-monitor]") {
  RegistryFixture f({.default_spoke = "a"});
  auto a = f.Add("a", 30);
  auto b = f.Add("b", 20);
  a->create_status = absl::DeadlineExceededError("slow");
  CHECK(absl::IsDeadlineExceeded(f.Create("x").status()));
  CHECK(b->creates.empty());
}

TEST_CASE("a create is retried at most once", "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a", 30);
  auto b = f.Add("b", 20);
  auto c = f.Add("c", 10);
  for (auto* spoke : {&a, &b, &c}) (*spoke)->create_status = absl::InternalError("broken");
  auto failed = f.Create("twice");
  CHECK(absl::IsInternal(failed.status()));
  CHECK(a->creates.size() == 1);
  CHECK(b->creates.size() == 1);
  CHECK(c->creates.empty());
  CHECK(absl::IsNotFound(f.db->GetBox("twice").status()));
  for (const char* name : {"a", "b", "c"}) CHECK(f.ViewOf(name).creates_in_flight == 0);
}

TEST_CASE("every way out of a create frees its place", "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a");
  REQUIRE(f.Create("taken").ok());
  CHECK(absl::IsAlreadyExists(f.Create("taken").status()));  // insert refused
  CHECK(absl::IsInvalidArgument(f.Create("nowhere", "no-such-spoke").status()));
  CHECK(f.ViewOf("a").creates_in_flight == 0);
  CHECK(a->creates.size() == 1);
}

TEST_CASE("a create that names a spoke that is not ready is refused naming its state",
          "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a");
  auto b = f.Add("b");
  REQUIRE(f.db->SetSpokeAdmin({.name = "a",
                               .state = store::SpokeAdminState::kCordoned,
                               .reason = "kernel upgrade",
                               .since_ms = f.NowMs()})
              .ok());
  f.registry->monitor().Poll();
  auto refused = f.Create("named", "a");
  REQUIRE(absl::IsFailedPrecondition(refused.status()));
  const std::string message(refused.status().message());
  CHECK(message.find("spoke \"a\" takes no new boxes: it is cordoned since") != message.npos);
  CHECK(message.find("kernel upgrade") != message.npos);
  CHECK(a->creates.empty());
  CHECK(absl::IsNotFound(f.db->GetBox("named").status()));
  CHECK(f.ViewOf("a").creates_in_flight == 0);
  // Another spoke that is ready still takes a named box, and so does "a" once uncordoned.
  CHECK(f.Create("on-b", "b").ok());
  REQUIRE(f.db->SetSpokeAdmin({.name = "a", .since_ms = f.NowMs()}).ok());
  f.registry->monitor().Poll();
  CHECK(f.Create("on-a", "a").ok());
}

TEST_CASE("reconcile leaves a create of this process alone while it runs", "[registry-restart]") {
  RegistryFixture f;
  auto a = f.Add("a");
  int reconciled = 0;
  a->during_create = [&](const cluster::CreateBoxArgs&) {
    // The record is still creating and the box is on the spoke: a running create.
    (void)f.registry->ReconcileSpoke("a");
    ++reconciled;
  };
  auto made = f.Create("inflight", "a");
  REQUIRE(made.ok());
  CHECK(reconciled == 1);
  CHECK(a->destroyed.empty());
  auto stored = f.db->GetBox("inflight");
  REQUIRE(stored.ok());
  CHECK(stored->phase == store::Phase::kPending);
}

TEST_CASE("a destroy while the box's create runs is refused and never fails the spoke",
          "[registry-restart]") {
  RegistryFixture f;
  auto a = f.Add("a");
  absl::Status during = absl::OkStatus();
  a->during_create = [&](const cluster::CreateBoxArgs&) {
    during = f.registry->Destroy(kAlice, "racing").status();
  };
  auto made = f.Create("racing", "a");
  REQUIRE(made.ok());
  CHECK(absl::IsFailedPrecondition(during));
  CHECK(std::string(during.message()).find("is being created") != std::string::npos);
  CHECK(a->destroyed.empty());
  CHECK(f.ViewOf("a").recent_failures == 0);
  CHECK(f.registry->Destroy(kAlice, "racing").ok());
}

TEST_CASE("a record left activating by a hub that stopped mid-submission takes its spoke's phase",
          "[registry-restart]") {
  RegistryFixture f;
  auto a = f.Add("a");
  REQUIRE(f.Create("stuck", "a").ok());
  auto record = f.db->GetBox("stuck");
  REQUIRE(record.ok());
  // What a hub killed while the spoke had the code leaves: the record activating; the box, on
  // its spoke, back to pending (or ready).
  record->phase = store::Phase::kActivating;
  REQUIRE(f.db->UpdateBox(*record).ok());
  f.clock.Advance(std::chrono::milliseconds(1));  // reconcile judges records older than its list
  (void)f.registry->ReconcileSpoke("a");
  CHECK(f.db->GetBox("stuck")->phase == store::Phase::kPending);
  // While the spoke itself says a code is in flight, the phase waits for it.
  record->phase = store::Phase::kActivating;
  REQUIRE(f.db->UpdateBox(*record).ok());
  a->boxes["stuck"].phase = store::Phase::kActivating;
  (void)f.registry->ReconcileSpoke("a");
  CHECK(f.db->GetBox("stuck")->phase == store::Phase::kActivating);
}

TEST_CASE("create_llmbox refuses the ids of trial creates", "[spoke-monitor]") {
  RegistryFixture f;
  auto a = f.Add("a");
  for (const char* id : {"llmbox-trial-1234", "LLMBOX-TRIAL-ab"}) {
    auto refused = f.Create(id);
    REQUIRE(absl::IsInvalidArgument(refused.status()));
  }
  CHECK(a->creates.empty());
}

absl::StatusOr<config::HubConfig> ParseSpokes(const std::string& keys) {
  return config::ParseHubConfig("hub:\n  spokes:\n" + keys, "hub.yaml", "/etc/llmbox");
}

TEST_CASE("hub.spokes sets the monitor's bounds and refuses values out of range",
          "[spoke-monitor]") {
  auto defaults = ParseSpokes("    unreachable_after: 2\n");
  REQUIRE(defaults.ok());
  CHECK(defaults->spokes.degraded_threshold == 0.5);
  CHECK(defaults->spokes.trial_backoff_min == 30s);

  auto set = ParseSpokes(
      "    degraded_threshold: 0.25\n    degraded_window: 20\n    degraded_min_creates: 5\n"
      "    degraded_window_age: 5m\n    trial_backoff_min: 2s\n    trial_backoff_max: 1m\n"
      "    unreachable_after: 4\n    max_concurrent_probes: 64\n    health_timeout: 500ms\n");
  INFO(set.status().message());
  REQUIRE(set.ok());
  CHECK(set->spokes.degraded_threshold == 0.25);
  CHECK(set->spokes.degraded_window == 20);
  CHECK(set->spokes.degraded_min_creates == 5);
  CHECK(set->spokes.degraded_window_age == 5min);
  CHECK(set->spokes.trial_backoff_min == 2s);
  CHECK(set->spokes.trial_backoff_max == 1min);
  CHECK(set->spokes.unreachable_after == 4);
  CHECK(set->spokes.max_concurrent_probes == 64);
  CHECK(set->spokes.health_timeout == 500ms);

  const auto error = [](const std::string& keys) {
    auto parsed = ParseSpokes(keys);
    REQUIRE_FALSE(parsed.ok());
    return std::string(parsed.status().message());
  };
  CHECK(error("    degraded_threshold: 1.5\n")
            .find("hub.spokes.degraded_threshold (line 3): "
                  "must be a share from 0 to 1") != std::string::npos);
  CHECK(error("    degraded_threshold: -1\n").find("degraded_threshold") != std::string::npos);
  CHECK(error("    degraded_window: 0\n").find("hub.spokes.degraded_window (line 3)") !=
        std::string::npos);
  CHECK(error("    degraded_min_creates: 11\n").find("must be 1..10") != std::string::npos);
  CHECK(error("    trial_backoff_min: 1m\n    trial_backoff_max: 30s\n")
            .find("hub.spokes.trial_backoff_max (line 4): must be at least trial_backoff_min") !=
        std::string::npos);
  CHECK(error("    unreachable_after: 0\n").find("unreachable_after") != std::string::npos);
  CHECK(error("    max_concurrent_probes: 0\n").find("max_concurrent_probes") != std::string::npos);
  CHECK(error("    health_timeout: 10ms\n").find("must be 100ms..60s") != std::string::npos);
  CHECK(error("    degraded_treshold: 0.5\n").find("unknown key") != std::string::npos);
  // A minimum over the default maximum raises the maximum with it.
  auto raised = ParseSpokes("    trial_backoff_min: 1h\n");
  REQUIRE(raised.ok());
  CHECK(raised->spokes.trial_backoff_max == 1h);
}

// Printed numbers: a round over 500 spokes and placement among them (tests/bench prints the
// hub-wide numbers; this is the monitor alone, over in-process fakes).
TEST_CASE("spoke monitor costs with 500 spokes", "[.][spoke-monitor-bench]") {
  Fixture f;
  for (int i = 0; i < 500; ++i) f.Add("spoke-" + std::to_string(1000 + i), 40);
  using Clock = std::chrono::steady_clock;
  const auto micros = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  std::vector<std::int64_t> rounds;
  for (int i = 0; i < 20; ++i) {
    const auto start = Clock::now();
    f.monitor->Poll();
    rounds.push_back(micros(Clock::now() - start));
  }
  std::vector<std::int64_t> places;
  for (int i = 0; i < 2000; ++i) {
    const auto start = Clock::now();
    auto placed = f.monitor->Place("", {});
    places.push_back(micros(Clock::now() - start));
    REQUIRE(placed.ok());
    f.monitor->RecordCreate(*placed, CreateOutcome::kSucceeded, "");
  }
  std::sort(rounds.begin(), rounds.end());
  std::sort(places.begin(), places.end());
  const auto pct = [](const std::vector<std::int64_t>& v, double p) {
    return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
  };
  std::cout << "spoke monitor, 500 spokes: Poll p50 " << pct(rounds, 0.5) << " us, max "
            << rounds.back() << " us; Place p50 " << pct(places, 0.5) << " us, p99 "
            << pct(places, 0.99) << " us\n";
}

// cfg (issue 18): a spoke that answers but cannot create.
TEST_CASE("placement passes over a spoke that says it cannot create until it can",
          "[spoke-monitor]") {
  Fixture f;
  auto spoke = f.Add("w1");
  spoke->health.engine_reachable = true;
  spoke->health.allowed_images = {"llmbox-box:dev"};
  spoke->health.cannot_create = "boxes.default_image \"llmbox-box:dev\" is not on the engine";
  f.monitor->Poll();
  auto placed = f.monitor->Place("llmbox-box:dev", {});
  REQUIRE(absl::IsResourceExhausted(placed.status()));
  // The spoke's words (a path, the engine's address) are for the operator, never a chatbot.
  const std::string why(placed.status().message());
  CHECK(why.find("w1 cannot create boxes (its operator is told why)") != std::string::npos);
  CHECK(why.find("default_image") == std::string::npos);
  // Not a failure of the spoke's: it is not degraded, only passed over.
  CHECK(f.ViewOf("w1").state == SpokeState::kReady);

  spoke->health.cannot_create.clear();
  f.monitor->Poll();
  auto now = f.monitor->Place("llmbox-box:dev", {});
  REQUIRE(now.ok());
  CHECK(*now == "w1");
}

}  // namespace
}  // namespace llmbox::hub::boxes
