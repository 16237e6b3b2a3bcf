// Quotas per principal (hub/boxes/quota_book.h) through the BoxRegistry that asks them: boxes
// alive (counted in a real SQLite store), creates per hour, execs at once and exec seconds per
// hour. Each refusal names its limit (config key and value) and when it frees; time is a
// FakeClock, and an exec "runs" while the fake spoke advances it.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/absl_compat.h"
#include "hub/auth/principal.h"
#include "hub/boxes/quota_book.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using auth::Principal;
using Catch::Matchers::Contains;

const Principal kAlice = Principal::ApiKey("alice", /*admin=*/false);
const Principal kBob = Principal::ApiKey("bob", /*admin=*/false);
const Principal kRoot = Principal::ApiKey("root", /*admin=*/true);

config::QuotaConfig Quotas(std::int64_t boxes_alive, std::int64_t creates_per_hour,
                           std::int64_t concurrent_execs, std::int64_t exec_seconds_per_hour) {
  config::QuotaConfig quotas;
  quotas.defaults.boxes_alive.value = boxes_alive;
  quotas.defaults.creates_per_hour.value = creates_per_hour;
  quotas.defaults.concurrent_execs.value = concurrent_execs;
  quotas.defaults.exec_seconds_per_hour.value = exec_seconds_per_hour;
  return quotas;
}

struct Fixture {
  explicit Fixture(config::QuotaConfig quotas) : dir("quota"), book(std::move(quotas), clock) {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", spoke, true);
    registry = std::make_unique<BoxRegistry>(
        *db, spokes, clock, RegistryOptions{.public_url = "https://hub.example.com"}, &book);
  }

  absl::Status Create(const std::string& id, const Principal& owner) {
    return registry->Create({.box_id = id, .owner = owner}, nullptr).status();
  }
  void MustCreate(const std::string& id, const Principal& owner) {
    const absl::Status created = Create(id, owner);
    INFO(created.ToString());
    REQUIRE(created.ok());
  }
  absl::Status Exec(const Principal& caller, const std::string& id) {
    return registry->Exec(caller, id, {"true"}, std::nullopt, nullptr).status();
  }
  // The fake spoke's exec takes `duration` of the fake clock (and then answers what it is
  // set to answer).
  void ExecsTake(std::chrono::seconds duration) {
    std::lock_guard lock(spoke->mu);
    spoke->during_exec = [this, duration] { clock.Advance(duration); };
  }

  testing::ScratchDir dir;
  testing::FakeClock clock;
  QuotaBook book;
  std::unique_ptr<store::SqliteStore> db;
  std::shared_ptr<testing::FakeSpokeClient> spoke = std::make_shared<testing::FakeSpokeClient>();
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
};

std::string MessageOf(const absl::Status& status) {
  INFO(status.ToString());
  CHECK(absl::IsResourceExhausted(status));
  return std::string(common::AsStd(status.message()));
}

TEST_CASE(
    "a principal at boxes_alive is refused naming the limit, and may create again after a "
    "destroy",
    "[quota]") {
  Fixture f(Quotas(/*boxes_alive=*/2, 100, 4, 3600));
  f.MustCreate("quota-a1", kAlice);
  f.MustCreate("quota-a2", kAlice);
  const std::string refused = MessageOf(f.Create("quota-a3", kAlice));
  CHECK_THAT(refused, Contains("key:alice has 2 boxes alive"));
  CHECK_THAT(refused, Contains("hub.quotas.boxes_alive allows 2"));
  CHECK_THAT(refused, Contains("destroy one of its boxes first"));
  CHECK_FALSE(f.db->GetBox("quota-a3").ok());  // nothing was reserved
  {
    std::lock_guard lock(f.spoke->mu);
    CHECK(f.spoke->creates.size() == 2);  // the spoke was never asked
  }
  REQUIRE(f.registry->Destroy(kAlice, "quota-a1").ok());
  f.MustCreate("quota-a3", kAlice);
}

TEST_CASE("creates racing for a principal's last place: exactly one gets it", "[quota]") {
  Fixture f(Quotas(/*boxes_alive=*/1, 100, 4, 3600));
  constexpr int kRacers = 8;
  std::vector<absl::Status> results(kRacers);
  std::vector<std::thread> racers;
  for (int i = 0; i < kRacers; ++i) {
    racers.emplace_back(
        [&f, &results, i] { results[i] = f.Create("quota-race" + std::to_string(i), kAlice); });
  }
  for (auto& racer : racers) racer.join();
  int created = 0;
  for (const absl::Status& result : results) {
    INFO(result.ToString());
    if (result.ok()) {
      ++created;
    } else {
      CHECK(absl::IsResourceExhausted(result));
    }
  }
  CHECK(created == 1);
  auto alive = f.db->CountLiveBoxes(kAlice.id());
  REQUIRE(alive.ok());
  CHECK(*alive == 1);
}

TEST_CASE("a box the spoke no longer has (gone) does not count as alive", "[quota]") {
  Fixture f(Quotas(/*boxes_alive=*/1, 100, 4, 3600));
  f.MustCreate("quota-gone", kAlice);
  auto record = f.db->GetBox("quota-gone");
  REQUIRE(record.ok());
  record->phase = store::Phase::kGone;
  REQUIRE(f.db->UpdateBox(*record).ok());
  f.MustCreate("quota-next", kAlice);
}

TEST_CASE(
    "creates_per_hour refuses with when the window frees, and frees an hour after the "
    "oldest create",
    "[quota]") {
  Fixture f(Quotas(100, /*creates_per_hour=*/2, 4, 3600));
  f.MustCreate("quota-c1", kAlice);
  f.clock.Advance(10min);
  f.MustCreate("quota-c2", kAlice);
  // Destroying does not give a create back: the hour counts creates, not boxes.
  REQUIRE(f.registry->Destroy(kAlice, "quota-c1").ok());
  f.clock.Advance(5min);
  const std::string refused = MessageOf(f.Create("quota-c3", kAlice));
  CHECK_THAT(refused, Contains("key:alice made 2 creates in the last hour"));
  CHECK_THAT(refused, Contains("hub.quotas.creates_per_hour allows 2"));
  // The first create was 15 minutes ago: its place frees in 45 minutes.
  CHECK_THAT(refused, Contains("the next create is allowed at "));
  CHECK_THAT(refused, Contains("(in 45m0s)"));
  f.clock.Advance(45min - 1s);
  CHECK(absl::IsResourceExhausted(f.Create("quota-c3", kAlice)));
  f.clock.Advance(1s);
  f.MustCreate("quota-c3", kAlice);
  CHECK(absl::IsResourceExhausted(f.Create("quota-c4", kAlice)));
}

TEST_CASE("a create the spoke fails still counts in the hour, one refused as a taken id does not",
          "[quota]") {
  Fixture f(Quotas(100, /*creates_per_hour=*/2, 4, 3600));
  f.MustCreate("quota-taken", kAlice);
  CHECK(absl::IsAlreadyExists(f.Create("quota-taken", kAlice)));
  CHECK(f.book.UsageOf(kAlice).creates_in_window == 1);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->create_status = absl::InternalError("the engine said no");
  }
  CHECK(absl::IsInternal(f.Create("quota-failed", kAlice)));
  CHECK(f.book.UsageOf(kAlice).creates_in_window == 2);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->create_status = absl::OkStatus();
  }
  CHECK(absl::IsResourceExhausted(f.Create("quota-third", kAlice)));
}

TEST_CASE(
    "concurrent_execs refuses an exec while the principal's others run, and frees when "
    "one ends",
    "[quota]") {
  Fixture f(Quotas(100, 100, /*concurrent_execs=*/1, 3600));
  f.MustCreate("quota-x", kAlice);
  std::optional<absl::Status> nested;
  {
    std::lock_guard lock(f.spoke->mu);
    // While alice's first exec runs, she tries a second one.
    f.spoke->during_exec = [&] {
      if (!nested.has_value()) nested = f.Exec(kAlice, "quota-x");
    };
  }
  REQUIRE(f.Exec(kAlice, "quota-x").ok());
  REQUIRE(nested.has_value());
  const std::string refused = MessageOf(*nested);
  CHECK_THAT(refused, Contains("key:alice has 1 exec running"));
  CHECK_THAT(refused, Contains("hub.quotas.concurrent_execs allows 1"));
  CHECK_THAT(refused, Contains("wait for one of them to end"));
  CHECK(f.book.UsageOf(kAlice).execs_running == 0);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->during_exec = nullptr;
  }
  CHECK(f.Exec(kAlice, "quota-x").ok());
}

TEST_CASE("an exec that fails, is refused by the spoke or is cancelled frees its place",
          "[quota]") {
  Fixture f(Quotas(100, 100, /*concurrent_execs=*/1, 3600));
  f.MustCreate("quota-x", kAlice);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->exec_status = absl::UnavailableError("connection reset");
  }
  CHECK(absl::IsUnavailable(f.Exec(kAlice, "quota-x")));
  CHECK(f.book.UsageOf(kAlice).execs_running == 0);
  {
    // The spoke's own cap per box (boxes.exec.max_concurrent) answers ResourceExhausted.
    std::lock_guard lock(f.spoke->mu);
    f.spoke->exec_status = absl::ResourceExhaustedError("4 execs are already running in it");
  }
  CHECK(absl::IsResourceExhausted(f.Exec(kAlice, "quota-x")));
  CHECK(f.book.UsageOf(kAlice).execs_running == 0);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->exec_status = absl::OkStatus();
  }
  auto cancelled = f.registry->Exec(kAlice, "quota-x", {"sleep", "60"}, std::nullopt,
                                    [](std::function<void()> cancel) { cancel(); });
  CHECK(absl::IsCancelled(cancelled.status()));
  CHECK(f.book.UsageOf(kAlice).execs_running == 0);
  CHECK(f.Exec(kAlice, "quota-x").ok());
}

TEST_CASE("exec seconds are charged from the exec's duration, also when it fails or times out",
          "[quota]") {
  Fixture f(Quotas(100, 100, 4, /*exec_seconds_per_hour=*/60));
  f.MustCreate("quota-x", kAlice);
  f.ExecsTake(25s);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->exec_status = absl::DeadlineExceededError("deadline");
  }
  CHECK(absl::IsDeadlineExceeded(f.Exec(kAlice, "quota-x")));
  CHECK(f.book.UsageOf(kAlice).exec_time_in_window == 25s);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->exec_status = absl::OkStatus();
    f.spoke->exec_output = {.exit_code = 137, .timed_out = true};
  }
  f.ExecsTake(35s);
  auto timed_out = f.registry->Exec(kAlice, "quota-x", {"sleep", "99"}, 35s, nullptr);
  REQUIRE(timed_out.ok());
  CHECK(timed_out->timed_out);
  CHECK(f.book.UsageOf(kAlice).exec_time_in_window == 60s);

  const std::string refused = MessageOf(f.Exec(kAlice, "quota-x"));
  CHECK_THAT(refused, Contains("key:alice used 60 s of exec time in the last hour"));
  CHECK_THAT(refused, Contains("hub.quotas.exec_seconds_per_hour allows 60"));
  // Both execs ended within a minute: one step, freed an hour after the second ended.
  CHECK_THAT(refused, Contains("exec time frees at "));
  CHECK_THAT(refused, Contains("(in 1h0m0s)"));
  f.clock.Advance(1h - 1s);
  CHECK(absl::IsResourceExhausted(f.Exec(kAlice, "quota-x")));
  f.clock.Advance(1s);
  CHECK(f.Exec(kAlice, "quota-x").ok());
}

TEST_CASE("exec seconds free step by step as old execs leave the hour", "[quota]") {
  Fixture f(Quotas(100, 100, 4, /*exec_seconds_per_hour=*/100));
  f.MustCreate("quota-x", kAlice);
  f.ExecsTake(60s);
  REQUIRE(f.Exec(kAlice, "quota-x").ok());  // 60 s, ends at 1 min
  f.clock.Advance(10min);
  REQUIRE(f.Exec(kAlice, "quota-x").ok());  // 60 s more, ends at 12 min: 120 s used
  const std::string refused = MessageOf(f.Exec(kAlice, "quota-x"));
  CHECK_THAT(refused, Contains("used 120 s"));
  // Once the first exec leaves the hour, 60 s remain: under the limit.
  CHECK_THAT(refused, Contains("(in 49m0s)"));
  f.clock.Advance(49min);
  f.ExecsTake(0s);
  CHECK(f.Exec(kAlice, "quota-x").ok());
}

TEST_CASE("one principal's use never counts against another's", "[quota]") {
  Fixture f(Quotas(/*boxes_alive=*/1, /*creates_per_hour=*/1, /*concurrent_execs=*/1,
                   /*exec_seconds_per_hour=*/30));
  f.MustCreate("quota-alice", kAlice);
  f.ExecsTake(30s);
  std::optional<absl::Status> bob_meanwhile;
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->during_exec = [&] {
      if (bob_meanwhile.has_value()) return;
      bob_meanwhile = absl::OkStatus();
      // While alice's exec runs (her one place taken), bob creates and execs.
      bob_meanwhile = f.Create("quota-bob", kBob);
      if (bob_meanwhile->ok()) bob_meanwhile = f.Exec(kBob, "quota-bob");
      f.clock.Advance(30s);
    };
  }
  REQUIRE(f.Exec(kAlice, "quota-alice").ok());
  REQUIRE(bob_meanwhile.has_value());
  CHECK(bob_meanwhile->ok());
  // Alice is now at every limit; bob, who used as much, is at his own, not hers.
  CHECK(absl::IsResourceExhausted(f.Create("quota-alice2", kAlice)));
  CHECK(absl::IsResourceExhausted(f.Exec(kAlice, "quota-alice")));
  CHECK(f.book.UsageOf(kAlice).exec_time_in_window == 30s);
  CHECK(f.book.UsageOf(kBob).exec_time_in_window == 0s);
  CHECK(f.book.UsageOf(kBob).creates_in_window == 1);
}

TEST_CASE(
    "an admin has no limits by default, and its own when admins_exempt is off or an "
    "override names it",
    "[quota]") {
  SECTION("exempt by default") {
    Fixture f(Quotas(/*boxes_alive=*/1, 1, 0, 0));
    f.MustCreate("quota-r1", kRoot);
    f.MustCreate("quota-r2", kRoot);
    CHECK(f.Exec(kRoot, "quota-r1").ok());
    CHECK(f.book.UsageOf(kRoot).creates_in_window == 0);
    // An admin acting on alice's box uses its own quota (none), not hers.
    f.MustCreate("quota-alice", kAlice);
    CHECK(absl::IsResourceExhausted(f.Exec(kAlice, "quota-alice")));
    CHECK(f.Exec(kRoot, "quota-alice").ok());
  }
  SECTION("limited like everyone with admins_exempt off") {
    config::QuotaConfig quotas = Quotas(/*boxes_alive=*/1, 10, 4, 3600);
    quotas.admins_exempt = false;
    Fixture f(quotas);
    f.MustCreate("quota-r1", kRoot);
    CHECK_THAT(MessageOf(f.Create("quota-r2", kRoot)),
               Contains("key:root has 1 box alive, and hub.quotas.boxes_alive allows 1"));
  }
  SECTION("its own limits from an override") {
    config::QuotaConfig quotas = Quotas(/*boxes_alive=*/1, 10, 4, 3600);
    config::QuotaOverride root{.principal = "key:root", .limits = quotas.defaults};
    root.limits.boxes_alive = {.value = 2, .key = "hub.quotas.overrides[0].boxes_alive"};
    quotas.overrides.push_back(root);
    Fixture f(quotas);
    f.MustCreate("quota-r1", kRoot);
    f.MustCreate("quota-r2", kRoot);
    CHECK_THAT(MessageOf(f.Create("quota-r3", kRoot)),
               Contains("hub.quotas.overrides[0].boxes_alive allows 2"));
  }
}

TEST_CASE("an override gives one principal its own limits, the others keep the defaults",
          "[quota]") {
  config::QuotaConfig quotas = Quotas(/*boxes_alive=*/1, 10, 4, 3600);
  config::QuotaOverride ci{.principal = "key:ci", .limits = quotas.defaults};
  ci.limits.boxes_alive = {.value = 3, .key = "hub.quotas.overrides[0].boxes_alive"};
  quotas.overrides.push_back(ci);
  Fixture f(quotas);
  const Principal ci_key = Principal::ApiKey("ci", false);
  for (const char* id : {"quota-ci1", "quota-ci2", "quota-ci3"}) f.MustCreate(id, ci_key);
  CHECK_THAT(MessageOf(f.Create("quota-ci4", ci_key)),
             Contains("hub.quotas.overrides[0].boxes_alive allows 3"));
  f.MustCreate("quota-a1", kAlice);
  CHECK_THAT(MessageOf(f.Create("quota-a2", kAlice)), Contains("hub.quotas.boxes_alive allows 1"));
}

TEST_CASE("a limit of 0 allows none and says it never frees", "[quota]") {
  Fixture f(Quotas(/*boxes_alive=*/0, 10, /*concurrent_execs=*/0, 3600));
  const std::string no_box = MessageOf(f.Create("quota-none", kAlice));
  CHECK_THAT(no_box, Contains("hub.quotas.boxes_alive allows 0"));
  CHECK_THAT(no_box, Contains("a limit of 0 allows none"));
  const std::string no_exec = MessageOf(f.book.AdmitExec(kAlice).status());
  CHECK_THAT(no_exec, Contains("hub.quotas.concurrent_execs allows 0"));
  CHECK_THAT(no_exec, Contains("a limit of 0 allows none"));
}

TEST_CASE("the book drops principals that have been quiet for an hour", "[quota]") {
  testing::FakeClock clock;
  QuotaBook book(Quotas(10, 10, 4, 3600), clock);
  for (int i = 0; i < 100; ++i) {
    const Principal someone = Principal::ApiKey("p" + std::to_string(i), false);
    REQUIRE(book.AdmitCreate(
                    someone, [] { return std::int64_t{0}; }, [] { return absl::OkStatus(); })
                .ok());
    auto ticket = book.AdmitExec(someone);
    REQUIRE(ticket.ok());
  }
  CHECK(book.Accounts() == 100);
  clock.Advance(1h + 1min);
  CHECK(book.UsageOf(kAlice).creates_in_window == 0);  // any call sweeps, at most once a minute
  CHECK(book.Accounts() == 0);
}

}  // namespace
}  // namespace llmbox::hub::boxes
