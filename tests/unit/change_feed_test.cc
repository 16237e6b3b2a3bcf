// A spoke's change feed (spoke/service/change_feed.h): which boxes changed after a position,
// told apart across restarts (epochs) and bounded; then through a SpokeNode in process (fake
// engine) and the hub's own client: what a create, a refusal, a stop and a destroy report.
#include "spoke/service/change_feed.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/unit/in_process_spoke.h"

namespace llmbox::spoke::service {
namespace {

using namespace std::chrono_literals;
using box::BoxPhase;
using box::BoxView;

constexpr std::uint64_t kEpoch = 77;

BoxView Box(const std::string& id, BoxPhase phase = BoxPhase::kPending, std::uint64_t mark = 0) {
  return BoxView{.box_id = id, .phase = phase, .refusal_mark = mark};
}

std::vector<std::string> Ids(const ChangeFeed::Changes& changes) {
  std::vector<std::string> ids;
  for (const auto& [id, seq] : changes.boxes) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST_CASE("a box changed after a position is listed with its number and none before it is",
          "[change-feed]") {
  ChangeFeed feed(kEpoch);
  const std::uint64_t a = feed.Observe(Box("a"));
  const std::uint64_t b = feed.Observe(Box("B"));  // ids are canonical
  CHECK(b > a);
  // The same again is no change: the position stays.
  CHECK(feed.Observe(Box("a")) == b);
  ChangeFeed::Changes changes = feed.Since(kEpoch, a, 100);
  CHECK_FALSE(changes.all);
  CHECK(changes.epoch == kEpoch);
  CHECK(changes.seq == b);
  REQUIRE(changes.boxes.size() == 1);
  CHECK(changes.boxes[0] == std::make_pair(std::string("b"), b));
  CHECK(feed.Since(kEpoch, b, 100).boxes.empty());

  // A refusal moves the box's mark, a session URL its fingerprint: each is a change.
  const std::uint64_t refused = feed.Observe(Box("a", BoxPhase::kPending, 1));
  CHECK(refused > b);
  BoxView ready = Box("a", BoxPhase::kReady, 1);
  ready.session_url = "https://claude.ai/code/session_1";
  const std::uint64_t activated = feed.Observe(ready);
  CHECK(activated > refused);
  CHECK(Ids(feed.Since(kEpoch, b, 100)) == std::vector<std::string>{"a"});
  CHECK(feed.Since(kEpoch, b, 100).boxes[0].second == activated);
}

TEST_CASE("another epoch a future position and too many changes are answered with all",
          "[change-feed]") {
  ChangeFeed feed(kEpoch);
  for (const char* id : {"a", "b", "c"}) feed.Observe(Box(id));
  CHECK(feed.Since(kEpoch + 1, 1, 100).all);  // a restarted spoke's position
  CHECK(feed.Since(0, 0, 100).all);           // the hub's first call
  CHECK(feed.Since(kEpoch, 4, 100).all);      // a position this feed never gave
  ChangeFeed::Changes over = feed.Since(kEpoch, 0, 2);
  CHECK(over.all);
  CHECK(over.boxes.empty());
  CHECK_FALSE(feed.Since(kEpoch, 0, 3).all);
  // Epochs are not 0 (0 is "no feed" on the wire).
  CHECK(ChangeFeed(0).epoch() != 0);
  CHECK(ChangeFeed::RandomEpoch() != 0);
}

TEST_CASE("a box no longer listed is a change and one being created is neither noted nor removed",
          "[change-feed]") {
  ChangeFeed feed(kEpoch, /*max_removed=*/2);
  feed.ObserveAll({Box("a"), Box("b"), Box("c")});
  const std::uint64_t listed = feed.Since(kEpoch, 0, 100).seq;
  // A create in flight is not noted (its answer will be), and not taken as a removal.
  feed.ObserveAll({Box("a"), Box("b"), Box("c"), Box("d", BoxPhase::kCreating)});
  CHECK(feed.Since(kEpoch, listed, 100).boxes.empty());
  CHECK(feed.Observe(Box("d", BoxPhase::kCreating)) == listed);

  feed.ObserveAll({Box("a"), Box("d", BoxPhase::kCreating)});
  CHECK(Ids(feed.Since(kEpoch, listed, 100)) == std::vector<std::string>{"b", "c"});
  const std::uint64_t gone = feed.Since(kEpoch, 0, 100).seq;
  feed.ObserveAll({});                         // a goes too: three removals, two kept
  CHECK(feed.Since(kEpoch, listed, 100).all);  // its removal of b is forgotten
  CHECK(Ids(feed.Since(kEpoch, gone, 100)) == std::vector<std::string>{"a"});
}

TEST_CASE("an answer that differs from the last health is a change and a revert is one again",
          "[change-feed]") {
  // What keeps a hub's view honest: the feed holds the last fingerprint anyone was told, so
  // reality drifting from an answer shows at the next health.
  ChangeFeed feed(kEpoch);
  feed.ObserveAll({Box("a")});
  // A get read the box while a refusal was being recorded, and answered the older view...
  const std::uint64_t health = feed.Since(kEpoch, 0, 100).seq;
  feed.ObserveAll({Box("a", BoxPhase::kPending, 1)});
  const std::uint64_t answer = feed.Observe(Box("a"));
  CHECK(answer > health);
  // ...so the next health, which sees the refusal, reports the box after that answer.
  feed.ObserveAll({Box("a", BoxPhase::kPending, 1)});
  ChangeFeed::Changes changes = feed.Since(kEpoch, answer, 100);
  REQUIRE(changes.boxes.size() == 1);
  CHECK(changes.boxes[0].second > answer);
}

// ---- Through the service and the hub's client ----

struct Spoke : testing::InProcessSpoke {
  Spoke() : InProcessSpoke("change-feed") {}

  hub::cluster::SpokeHealth Health(const hub::cluster::FeedPosition& since) {
    auto health = client->HealthSince(10s, since);
    INFO(health.status().ToString());
    REQUIRE(health.ok());
    return *std::move(health);
  }
};

TEST_CASE(
    "through the hub's client a created box stays unchanged until it is refused a connection "
    "stopped or destroyed",
    "[change-feed]") {
  Spoke spoke;
  // The hub's first call names no position: every box may have changed.
  hub::cluster::SpokeHealth first = spoke.Health({});
  CHECK(first.changes_all);
  REQUIRE(first.changes_at.epoch != 0);
  hub::cluster::FeedPosition at = first.changes_at;

  auto created = spoke.client->CreateBox({.box_id = "b1"}, 30s);
  INFO(created.status().ToString());
  REQUIRE(created.ok());
  const hub::cluster::FeedPosition made = created->box.at;
  CHECK(made.epoch == at.epoch);
  CHECK(made.seq > at.seq);
  // The next health lists the new box no later than the create's answer: a view taken from
  // that answer stays good.
  hub::cluster::SpokeHealth next = spoke.Health(at);
  CHECK_FALSE(next.changes_all);
  REQUIRE(next.changes.size() == 1);
  CHECK(next.changes[0].first == "b1");
  CHECK(next.changes[0].second <= made.seq);
  at = next.changes_at;
  // Listing it shows what the create answered: nothing changed.
  CHECK(spoke.Health(at).changes.empty());
  auto got = spoke.client->GetBox("b1", 10s);
  REQUIRE(got.ok());
  CHECK(got->at.seq == at.seq);
  CHECK(spoke.Health(at).changes.empty());

  // A refused connection: the box changed after every answer so far.
  spoke.egress.AddRefusal("b1", {.destination = "evil.example", .port = 443, .rule = "no"});
  hub::cluster::SpokeHealth refused = spoke.Health(at);
  REQUIRE(refused.changes.size() == 1);
  CHECK(refused.changes[0].first == "b1");
  CHECK(refused.changes[0].second > got->at.seq);
  at = refused.changes_at;

  // Stopped behind the spoke's back (its engine restarted it, a crash): a change.
  REQUIRE(spoke.engine.StopContainer(created->box.container_id, 0s).ok());
  hub::cluster::SpokeHealth stopped = spoke.Health(at);
  REQUIRE(stopped.changes.size() == 1);
  CHECK(stopped.changes[0].first == "b1");
  at = stopped.changes_at;

  REQUIRE(spoke.client->DestroyBox("b1", 30s).ok());
  hub::cluster::SpokeHealth destroyed = spoke.Health(at);
  REQUIRE(destroyed.changes.size() == 1);
  CHECK(destroyed.changes[0].first == "b1");
  CHECK(spoke.Health(destroyed.changes_at).changes.empty());
}

}  // namespace
}  // namespace llmbox::spoke::service
