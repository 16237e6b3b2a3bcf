// get_llmbox without a spoke call per get (issue 17): the registry answers a box's network from
// what its spoke said (hub/boxes/live_views.h): until the spoke's change feed reports the box
// changed, or at most live_ttl ago from a spoke without one; asks again after anything the hub
// did to the box, and a spoke's answer that shows the box stopped or restarted updates the
// record at once. Over an in-memory SpokeClient and a fake clock.
#include "hub/boxes/live_views.h"

#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "hub/boxes/registry.h"
#include "hub/metrics/hub_metrics.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/unit/registry_fixture.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using store::Phase;

const auth::Principal kAlice = testing::kAliceKey;
constexpr auto kTtl = 20s;
constexpr std::uint64_t kEpoch = 9;  // a spoke's change feed epoch

struct Fixture : testing::RegistryFixture {
  Fixture()
      : RegistryFixture("live-views", RegistryOptions{.public_url = "https://hub.example.com",
                                                      .live_ttl = kTtl}) {}

  void Create(const std::string& id) { RegistryFixture::Create(id, kAlice); }
  BoxDetails Get(const std::string& id) {
    auto details = registry->GetDetails(kAlice, id);
    REQUIRE(details.ok());
    return *std::move(details);
  }
  void Refuse(const std::string& id, const std::string& destination) {
    std::lock_guard lock(spoke->mu);
    spoke->boxes[id].network.refusals.push_back(
        {.destination = destination, .port = 443, .protocol = "tcp", .rule = "not allowed"});
  }
  // A health round, and the reconciles it started (a spoke's first answer starts one, which
  // may otherwise meet a create in flight).
  void Round() {
    registry->monitor().Poll();
    REQUIRE(registry->monitor().WaitForReturns(std::chrono::seconds(30)));
  }
  std::size_t Gets() {
    std::lock_guard lock(spoke->mu);
    return spoke->got.size();
  }
};

TEST_CASE(
    "get_llmbox answers a box's network from its spoke's last answer without a call until "
    "live_ttl has passed",
    "[live-views]") {
  Fixture f;
  f.Create("b1");
  f.Refuse("b1", "late.example");
  BoxDetails details = f.Get("b1");
  REQUIRE(details.network.has_value());
  REQUIRE(details.network->ok());
  CHECK((*details.network)->mode == cluster::NetworkMode::kAllowlist);
  CHECK((*details.network)->refusals.empty());  // as the create answered it
  f.clock.Advance(kTtl - 1ms);
  CHECK((*f.Get("b1").network)->refusals.empty());
  CHECK(f.Gets() == 0);

  f.clock.Advance(1ms);
  details = f.Get("b1");
  CHECK(f.Gets() == 1);
  REQUIRE((*details.network)->refusals.size() == 1);
  CHECK((*details.network)->refusals[0].destination == "late.example");
  // The answer is what the next gets show.
  f.Refuse("b1", "later.example");
  CHECK((*f.Get("b1").network)->refusals.size() == 1);
  CHECK(f.Gets() == 1);
}

TEST_CASE("an exec through the hub makes the next get_llmbox ask the spoke for the box's refusals",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  REQUIRE(f.registry->Exec(kAlice, "b1", {"curl", "https://pypi.org"}, std::nullopt, nullptr).ok());
  f.Refuse("b1", "pypi.org");
  const BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 1);
  REQUIRE((*details.network)->refusals.size() == 1);
  CHECK((*details.network)->refusals[0].destination == "pypi.org");
}

TEST_CASE("set_llmbox_network's answer is what the next get_llmbox shows without a spoke call",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  REQUIRE(f.registry->SetNetwork(kAlice, "b1", {.add = {"pypi.org"}}).ok());
  const BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 0);
  CHECK((*details.network)->allow == std::vector<std::string>{"pypi.org"});
}

TEST_CASE(
    "a network change whose answer was lost makes the next get_llmbox ask the spoke which may "
    "have made it",
    "[live-views]") {
  Fixture f;
  f.spoke->feed_epoch = kEpoch;
  f.Round();
  f.Create("b1");
  {
    // The spoke applied the change; its answer did not come back in time.
    std::lock_guard lock(f.spoke->mu);
    f.spoke->boxes["b1"].network.mode = cluster::NetworkMode::kOpen;
    f.spoke->set_network_status = absl::DeadlineExceededError("no answer in time");
  }
  CHECK_FALSE(f.registry->SetNetwork(kAlice, "b1", {.mode = cluster::NetworkMode::kOpen}).ok());
  const BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 1);
  CHECK((*details.network)->mode == cluster::NetworkMode::kOpen);
}

TEST_CASE("a get that finds the box stopped on its spoke reports it and records it at once",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->boxes["b1"].phase = Phase::kError;
    f.spoke->boxes["b1"].last_error = "the box stopped (exit code 137)";
  }
  f.clock.Advance(kTtl);
  const BoxDetails details = f.Get("b1");
  CHECK(details.record.phase == Phase::kError);
  CHECK(details.record.last_error == "the box stopped (exit code 137)");
  CHECK(f.db->GetBox("b1")->phase == Phase::kError);
}

TEST_CASE("a get that finds a new session URL after a box restart reports it at once",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  store::BoxRecord record = f.db->GetBox("b1").value();
  record.phase = Phase::kReady;
  record.session_url = "https://claude.ai/code/session_old";
  REQUIRE(f.db->UpdateBox(record).ok());
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->boxes["b1"].phase = Phase::kReady;
    f.spoke->boxes["b1"].session_url = "https://claude.ai/code/session_new";
  }
  f.clock.Advance(kTtl);
  CHECK(f.Get("b1").record.session_url == "https://claude.ai/code/session_new");
  CHECK(f.db->GetBox("b1")->session_url == "https://claude.ai/code/session_new");
}

TEST_CASE("what a spoke said of a box never answers for a new box that took its id",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.Put("b1", "hash-old", "s1", {}, {.allow = {"old.example"}}, views.Begin("s1"));
  CHECK_FALSE(views.Fresh("b1", "hash-new").has_value());
  REQUIRE(views.Fresh("B1", "hash-old").has_value());  // ids are case-insensitive
  views.Put("b1", "hash-new", "s1", {}, {.allow = {"new.example"}}, views.Begin("s1"));
  CHECK_FALSE(views.Fresh("b1", "hash-old").has_value());
  CHECK(views.Fresh("b1", "hash-new")->allow == std::vector<std::string>{"new.example"});
  CHECK(views.size() == 1);
}

TEST_CASE("the live view cache holds at most max_entries and drops the least recently written",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl, .max_entries = 3});
  for (const char* id : {"a", "b", "c"}) views.Put(id, "h", "s1", {}, {}, views.Begin("s1"));
  views.Put("a", "h", "s1", {}, {}, views.Begin("s1"));  // written again: now the newest
  views.Put("d", "h", "s1", {}, {}, views.Begin("s1"));
  CHECK(views.size() == 3);
  CHECK_FALSE(views.Fresh("b", "h").has_value());
  CHECK(views.Fresh("a", "h").has_value());
  CHECK(views.Fresh("d", "h").has_value());
}

TEST_CASE("a live_ttl of zero makes every get_llmbox ask the box's spoke", "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = 0ms});
  views.Put("a", "h", "s1", {}, {}, views.Begin("s1"));
  CHECK_FALSE(views.Fresh("a", "h").has_value());
  CHECK(views.size() == 0);
}

// ---- With the spoke's change feed (spoke/service/change_feed.h) ----

TEST_CASE(
    "with its spoke's change feed get_llmbox keeps the create's answer past live_ttl until the "
    "spoke reports the box changed",
    "[live-views]") {
  Fixture f;
  f.spoke->feed_epoch = kEpoch;
  f.Round();
  f.Create("b1");
  f.Refuse("b1", "late.example");            // not yet reported
  for (int round = 0; round < 6; ++round) {  // a minute of health rounds, each within live_ttl
    f.clock.Advance(10s);
    f.Round();
  }
  CHECK((*f.Get("b1").network)->refusals.empty());
  CHECK(f.Gets() == 0);
  // The health calls named the position the views applied.
  {
    std::lock_guard lock(f.spoke->mu);
    REQUIRE(f.spoke->health_positions.size() == 7);
    CHECK(f.spoke->health_positions[0].epoch == 0);
    CHECK(f.spoke->health_positions.back().epoch == kEpoch);
  }

  f.spoke->Change("b1");
  f.Round();
  BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 1);
  REQUIRE((*details.network)->refusals.size() == 1);
  CHECK((*details.network)->refusals[0].destination == "late.example");
  // The answer holds again until the next change.
  f.clock.Advance(10s);
  f.Round();
  f.Get("b1");
  CHECK(f.Gets() == 1);
}

TEST_CASE("get_llmbox counts its answers kept and asked in the hub's metrics", "[live-views]") {
  metrics::HubMetrics metrics;
  testing::RegistryFixture f(
      "live-views-metrics",
      RegistryOptions{.public_url = "https://hub.example.com", .metrics = &metrics});
  f.Create("b1", kAlice);
  for (int i = 0; i < 3; ++i) REQUIRE(f.registry->GetDetails(kAlice, "b1").ok());
  REQUIRE(f.registry->Exec(kAlice, "b1", {"true"}, std::nullopt, nullptr).ok());
  REQUIRE(f.registry->GetDetails(kAlice, "b1").ok());
  const std::string text = metrics.Render();
  CHECK(text.find("llmbox_hub_box_views_total{answer=\"kept\"} 3\n") != std::string::npos);
  CHECK(text.find("llmbox_hub_box_views_total{answer=\"asked\"} 1\n") != std::string::npos);
}

TEST_CASE("a change of another box on the spoke leaves a box's view alone", "[live-views]") {
  Fixture f;
  f.spoke->feed_epoch = kEpoch;
  f.Round();
  f.Create("b1");
  f.Create("b2");
  f.spoke->Change("b2");
  f.Round();
  f.Get("b1");
  CHECK(f.Gets() == 0);
  f.Get("b2");
  CHECK(f.Gets() == 1);
}

TEST_CASE("a spoke whose feed went silent vouches for its views no longer than live_ttl",
          "[live-views]") {
  Fixture f;
  f.spoke->feed_epoch = kEpoch;
  f.Round();
  f.Create("b1");
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->health_status = absl::DeadlineExceededError("no answer");
  }
  f.clock.Advance(10s);
  f.Round();  // one miss: not unreachable yet
  f.clock.Advance(kTtl - 10s);
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->health_status = absl::OkStatus();
  }
  f.Get("b1");
  CHECK(f.Gets() == 1);
}

TEST_CASE("a spoke's new epoch drops every view of that spoke and only of that spoke",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.ApplyFeed("s1", {kEpoch, 5}, true, {});
  views.ApplyFeed("s2", {kEpoch, 5}, true, {});
  views.Put("a", "h", "s1", {kEpoch, 5}, {}, views.Begin("s1"));
  views.Put("b", "h", "s2", {kEpoch, 5}, {}, views.Begin("s2"));
  clock.Advance(kTtl + 1s);
  views.ApplyFeed("s1", {kEpoch, 5}, false, {});
  views.ApplyFeed("s2", {kEpoch, 5}, false, {});
  REQUIRE(views.Fresh("a", "h").has_value());  // tracked: past max_age
  // s1 restarted: its sequence starts again under another epoch.
  views.ApplyFeed("s1", {kEpoch + 1, 1}, false, {});
  CHECK_FALSE(views.Fresh("a", "h").has_value());
  CHECK(views.Fresh("b", "h").has_value());
  CHECK(views.Position("s1").epoch == kEpoch + 1);
  // `all` (its engine down, too many changes) does the same.
  views.ApplyFeed("s2", {kEpoch, 6}, true, {});
  CHECK_FALSE(views.Fresh("b", "h").has_value());
}

TEST_CASE("an answer taken before a change the feed reported answers no longer than live_ttl",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.ApplyFeed("s1", {kEpoch, 10}, true, {});
  // Taken at 7, put after the round that applied 10: it may miss a change in between.
  views.Put("a", "h", "s1", {kEpoch, 7}, {}, views.Begin("s1"));
  // Taken at 12: a change reported at 12 or before is in it, one after it is not.
  views.Put("b", "h", "s1", {kEpoch, 12}, {}, views.Begin("s1"));
  clock.Advance(kTtl);
  views.ApplyFeed("s1", {kEpoch, 12}, false, {{"b", 12}});
  CHECK_FALSE(views.Fresh("a", "h").has_value());
  REQUIRE(views.Fresh("b", "h").has_value());
  views.ApplyFeed("s1", {kEpoch, 13}, false, {{"b", 13}});
  CHECK_FALSE(views.Fresh("b", "h").has_value());
}

TEST_CASE(
    "an answer in flight while its box was changed or forgotten is not kept and another box's "
    "is",
    "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.ApplyFeed("s1", {kEpoch, 1}, true, {});
  views.Put("a", "h", "s1", {kEpoch, 1}, {}, views.Begin("s1"));
  // Gets of a and b ask the spoke; meanwhile a round applies a change of a.
  const LiveViews::Ticket ticket = views.Begin("s1");
  views.ApplyFeed("s1", {kEpoch, 2}, false, {{"a", 2}});
  views.Put("a", "h", "s1", {kEpoch, 1}, {}, ticket);
  CHECK_FALSE(views.Fresh("a", "h").has_value());
  views.Put("b", "h", "s1", {kEpoch, 1}, {}, ticket);
  CHECK(views.Fresh("b", "h").has_value());  // b did not change
  // A change of a box the hub kept nothing of yet holds back a get of it in flight too.
  const LiveViews::Ticket before_c = views.Begin("s1");
  views.ApplyFeed("s1", {kEpoch, 3}, false, {{"c", 3}});
  views.Put("c", "h", "s1", {kEpoch, 2}, {}, before_c);
  CHECK_FALSE(views.Fresh("c", "h").has_value());
  // So does the hub's own forget (an exec, a code, a network change)...
  const LiveViews::Ticket before_d = views.Begin("s1");
  views.Forget("d", "s1");
  views.Put("d", "h", "s1", {kEpoch, 3}, {}, before_d);
  CHECK_FALSE(views.Fresh("d", "h").has_value());
  // ...and a spoke's `all` holds back every answer of that spoke, not another spoke's.
  const LiveViews::Ticket before_all = views.Begin("s1");
  views.ApplyFeed("s1", {kEpoch, 4}, true, {});
  views.Put("e", "h", "s1", {kEpoch, 3}, {}, before_all);
  CHECK_FALSE(views.Fresh("e", "h").has_value());
  views.Put("f", "h", "s2", {}, {}, before_all);
  CHECK(views.Fresh("f", "h").has_value());
}

TEST_CASE("an answer stamped past its spoke's own position does not outlive a reported change",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.ApplyFeed("s1", {kEpoch, 5}, true, {});
  // A lying (or broken) spoke stamps its answer far ahead of its feed.
  views.Put("a", "h", "s1", {kEpoch, 1'000'000}, {}, views.Begin("s1"));
  views.ApplyFeed("s1", {kEpoch, 6}, false, {{"a", 6}});
  CHECK_FALSE(views.Fresh("a", "h").has_value());
}

TEST_CASE("a tracked view answers at most max_age_tracked even when nothing is reported",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl, .max_age_tracked = 5min});
  views.ApplyFeed("s1", {kEpoch, 1}, true, {});
  views.Put("a", "h", "s1", {kEpoch, 1}, {}, views.Begin("s1"));
  for (auto passed = 0s; passed < 5min - 10s; passed += 10s) {
    clock.Advance(10s);
    views.ApplyFeed("s1", {kEpoch, 1}, false, {});
  }
  CHECK(views.Fresh("a", "h").has_value());
  clock.Advance(10s);
  views.ApplyFeed("s1", {kEpoch, 1}, false, {});
  CHECK_FALSE(views.Fresh("a", "h").has_value());
}

}  // namespace
}  // namespace llmbox::hub::boxes
