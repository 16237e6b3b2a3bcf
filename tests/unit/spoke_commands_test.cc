// `llmbox-hub spoke cordon|uncordon|drain NAME` and `spoke list` (hub/admin): what they write
// to the store a serving hub reads, what they print, and what they refuse. Over a real SQLite
// file and a fake clock.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/clock.h"
#include "hub/admin/admin_commands.h"
#include "hub/admin/spoke_state_commands.h"
#include "hub/config/hub_config.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/stream_capture.h"

namespace llmbox::hub::admin {
namespace {

using store::Phase;
using store::SpokeAdminState;
using testing::Capture;
using testing::CaptureStdout;

struct Fixture {
  Fixture() : dir("spoke-commands") {
    config.state_dir = dir.path().string();  // OpenStore opens <state_dir>/hub.db
    config.local_spoke = true;
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    // "west" joined; "local" runs in the hub.
    REQUIRE(db->InsertJoinToken({.hash = "jt", .name = "west", .expires_at_ms = 1LL << 50}).ok());
    REQUIRE(db->ConsumeJoinToken("jt", 1,
                                 {.name = "west",
                                  .advertise_address = "10.0.0.5:7443",
                                  .not_after_ms = 2,
                                  .labels = {{"zone", "a"}},
                                  .joined_at_ms = 1})
                .ok());
  }

  void Box(const std::string& id, const std::string& spoke, Phase phase) {
    REQUIRE(db->InsertBox({.box_id = id, .spoke = spoke, .phase = phase}).ok());
  }

  // Runs `spoke VERB NAME` with `args`; returns its exit code and what it said on stderr.
  std::pair<int, std::string> Run(CommandArgs args) {
    args.usage = "usage\n";
    int code = -1;
    const std::string said = Capture(stderr, dir.path() / "command.err",
                                     [&] { code = SpokeCommand(args, config, clock); });
    return {code, said};
  }

  store::SpokeAdminRecord Admin(const std::string& name) {
    const std::vector<store::SpokeAdminRecord> records = db->ListSpokeAdmin().value();
    for (const auto& record : records) {
      if (record.name == name) return record;
    }
    FAIL("no admin record for " << name);
    return {};
  }

  testing::ScratchDir dir;
  config::HubConfig config;
  testing::FakeClock clock;
  std::unique_ptr<store::SqliteStore> db;
};

TEST_CASE("cordon records the state with its reason and says the live boxes stay", "[spoke-cli]") {
  Fixture f;
  f.Box("w1", "west", Phase::kReady);
  f.Box("w2", "west", Phase::kPending);
  f.Box("w3", "west", Phase::kGone);
  const auto [code, said] = f.Run({.verb = "cordon", .name = "west", .reason = "kernel update"});
  CHECK(code == 0);
  CHECK(said ==
        "llmbox-hub: spoke \"west\" cordoned: placement passes it over from the serving hub's "
        "next health round; its 2 live boxes keep running (`llmbox-hub spoke uncordon west` puts "
        "it back)\n");
  const store::SpokeAdminRecord admin = f.Admin("west");
  CHECK(admin.state == SpokeAdminState::kCordoned);
  CHECK(admin.reason == "kernel update");
  CHECK(admin.since_ms == common::ToUnixMillis(f.clock.Now()));
  CHECK_FALSE(admin.destroy_pending);
}

TEST_CASE("uncordon puts a cordoned spoke back to ready and forgets the reason", "[spoke-cli]") {
  Fixture f;
  REQUIRE(f.Run({.verb = "cordon", .name = "local", .reason = "disk"}).first == 0);
  f.clock.Advance(std::chrono::minutes(5));
  const auto [code, said] = f.Run({.verb = "uncordon", .name = "local"});
  CHECK(code == 0);
  CHECK(said ==
        "llmbox-hub: spoke \"local\" uncordoned: placement may choose it again from the serving "
        "hub's next health round (it holds 0 live boxes)\n");
  const store::SpokeAdminRecord admin = f.Admin("local");
  CHECK(admin.state == SpokeAdminState::kReady);
  CHECK(admin.reason.empty());
  CHECK(admin.since_ms == common::ToUnixMillis(f.clock.Now()));
}

TEST_CASE("an unknown spoke is refused with the known ones listed and nothing written",
          "[spoke-cli]") {
  Fixture f;
  f.Box("old", "retired", Phase::kReady);  // a spoke no longer joined that still holds a box
  const auto [code, said] = f.Run({.verb = "cordon", .name = "nope\x1b[2J"});
  CHECK(code == 1);
  CHECK(said ==
        "llmbox-hub: no spoke \"nope?[2J\": the known spokes are local, retired, west (joined, "
        "local, or holding boxes; `llmbox-hub spoke list` shows them)\n");
  CHECK(f.db->ListSpokeAdmin()->empty());
  // Without a local spoke in the config, "local" is not one.
  f.config.local_spoke = false;
  CHECK(f.Run({.verb = "drain", .name = "local"}).first == 1);
  // A spoke that still holds boxes can be drained, joined or not.
  CHECK(f.Run({.verb = "drain", .name = "retired"}).first == 0);
}

TEST_CASE("a reason too long or with control characters is refused and nothing is written",
          "[spoke-cli]") {
  Fixture f;
  auto [code, said] = f.Run({.verb = "cordon", .name = "west", .reason = std::string(257, 'x')});
  CHECK(code == 1);
  CHECK(said == "llmbox-hub: --reason: at most 256 bytes, got 257\n");
  std::tie(code, said) = f.Run({.verb = "drain", .name = "west", .reason = "ok\nFAKE LINE"});
  CHECK(code == 1);
  CHECK(said == "llmbox-hub: --reason: control characters are not allowed (byte 10 at offset 2)\n");
  CHECK(f.db->ListSpokeAdmin()->empty());
  CHECK(f.Run({.verb = "cordon", .name = "west", .reason = std::string(256, 'x')}).first == 0);
}

TEST_CASE("drain says the boxes are not destroyed, and --destroy-pending queues the pending ones",
          "[spoke-cli]") {
  Fixture f;
  f.Box("w-ready", "west", Phase::kReady);
  f.Box("w-p1", "west", Phase::kPending);
  f.Box("w-p2", "west", Phase::kPending);
  f.Box("l-p", "local", Phase::kPending);
  auto [code, said] = f.Run({.verb = "drain", .name = "west"});
  CHECK(code == 0);
  CHECK(said ==
        "llmbox-hub: spoke \"west\" draining: placement passes it over from the serving hub's "
        "next health round; its 3 live boxes (2 pending) are not destroyed by the drain: they go "
        "when their owners destroy them (--destroy-pending destroys the pending ones)\n");
  CHECK(f.db->ListQueuedDestroys("west", 10)->empty());
  CHECK_FALSE(f.Admin("west").destroy_pending);

  std::tie(code, said) = f.Run({.verb = "drain", .name = "west", .destroy_pending = true});
  CHECK(code == 0);
  CHECK(said.ends_with(
      "llmbox-hub: queued the destroy of 2 pending box(es) of spoke \"west\": the serving hub "
      "destroys them, and every box of it still pending later, while it drains\n"));
  auto queued = f.db->ListQueuedDestroys("west", 10);
  REQUIRE(queued->size() == 2);
  CHECK(queued->at(0).box_id == "w-p1");
  CHECK(queued->at(1).box_id == "w-p2");
  CHECK(f.db->ListQueuedDestroys("local", 10)->empty());  // another spoke's pending box stays
  CHECK_FALSE(f.db->GetBox("w-ready")->destroy_queued_at_ms.has_value());
  CHECK(f.Admin("west").destroy_pending);
}

TEST_CASE("running drain again keeps its start time, reason and destroy-pending", "[spoke-cli]") {
  Fixture f;
  f.Box("w1", "west", Phase::kReady);
  REQUIRE(
      f.Run({.verb = "drain", .name = "west", .reason = "move", .destroy_pending = true}).first ==
      0);
  const std::int64_t started = common::ToUnixMillis(f.clock.Now());
  f.clock.Advance(std::chrono::minutes(3));
  REQUIRE(f.Run({.verb = "drain", .name = "west"}).first == 0);
  const store::SpokeAdminRecord admin = f.Admin("west");
  CHECK(admin.since_ms == started);
  CHECK(admin.reason == "move");
  CHECK(admin.destroy_pending);
  // Cordoning a draining spoke ends the drain (and its destroys of pending boxes).
  REQUIRE(f.Run({.verb = "cordon", .name = "west"}).first == 0);
  CHECK_FALSE(f.Admin("west").destroy_pending);
  CHECK(f.Admin("west").reason.empty());
}

TEST_CASE("drain --wait returns once the spoke holds no live box, saying each count it sees",
          "[spoke-cli]") {
  Fixture f;
  f.Box("w1", "west", Phase::kReady);
  f.Box("w2", "west", Phase::kPending);
  std::pair<int, std::string> result;
  std::thread command([&] { result = f.Run({.verb = "drain", .name = "west", .wait = true}); });
  REQUIRE(f.clock.WaitForWaiters(1));
  // A round with no change prints nothing new.
  f.clock.Advance(kDrainPollInterval);
  REQUIRE(f.clock.WaitForWaiters(1));
  REQUIRE(f.db->DestroyBox("w1", 1).ok());
  f.clock.Advance(kDrainPollInterval);
  REQUIRE(f.clock.WaitForWaiters(1));
  // A gone box is no longer live.
  REQUIRE(f.db->UpdateBox({.box_id = "w2", .spoke = "west", .phase = Phase::kGone}).ok());
  f.clock.Advance(kDrainPollInterval);
  command.join();
  CHECK(result.first == 0);
  CHECK(
      result.second.ends_with("llmbox-hub: spoke \"west\": 2 live boxes left\n"
                              "llmbox-hub: spoke \"west\": 1 live box left\n"
                              "llmbox-hub: spoke \"west\" drained: it holds no live box\n"));
}

TEST_CASE("drain --wait fails at the timeout naming the boxes left, and the spoke stays draining",
          "[spoke-cli]") {
  Fixture f;
  f.Box("w1", "west", Phase::kReady);
  std::pair<int, std::string> result;
  std::thread command(
      [&] { result = f.Run({.verb = "drain", .name = "west", .wait = true, .timeout = "3s"}); });
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.clock.WaitForWaiters(1));
    f.clock.Advance(kDrainPollInterval);
  }
  command.join();
  CHECK(result.first == 1);
  CHECK(result.second.ends_with(
      "llmbox-hub: spoke \"west\": 1 live box left\n"
      "llmbox-hub: spoke \"west\" still holds 1 live box after 3s; it stays draining (run "
      "`llmbox-hub spoke drain west --wait` to wait again)\n"));
  CHECK(f.Admin("west").state == SpokeAdminState::kDraining);
}

TEST_CASE("a bad --timeout is refused before anything is written", "[spoke-cli]") {
  Fixture f;
  const auto [code, said] = f.Run({.verb = "drain", .name = "west", .wait = true, .timeout = "1y"});
  CHECK(code == 1);
  CHECK(said == "llmbox-hub: --timeout must look like 30s, 10m or 1h\n");
  CHECK(f.db->ListSpokeAdmin()->empty());
}

TEST_CASE("spoke list shows each spoke's state, live boxes and how a drain goes", "[spoke-cli]") {
  Fixture f;
  f.Box("w1", "west", Phase::kReady);
  f.Box("w2", "west", Phase::kPending);
  f.Box("r1", "retired", Phase::kReady);
  REQUIRE(f.db->SetSpokeAdmin({.name = "west",
                               .state = SpokeAdminState::kDraining,
                               .reason = "move\x07",  // written by hand: the CLI refuses it
                               .since_ms = 1'764'476'400'000})
              .ok());
  REQUIRE(f.db->SetSpokeCondition({.name = "local",
                                   .condition = store::SpokeCondition::kDegraded,
                                   .reason = "3 of the last 4 creates failed",
                                   .since_ms = 1'764'476'460'000})
              .ok());
  const std::string listed = CaptureStdout(f.dir.path() / "list.out", [&] {
    CHECK(SpokeCommand({.verb = "list", .usage = ""}, f.config, f.clock) == 0);
  });
  const std::string header =
      "NAME                             ADDRESS                      STATE        BOXES JOINED   "
      "              CERT UNTIL             LABELS                   DETAIL\n";
  CHECK(listed ==
        header +
            "local                            (in-process)                 degraded         0 -  "
            "                    -                      -                        degraded since "
            "2025-11-30T04:21:00Z: 3 of the last 4 creates failed\n"
            "retired                          -                            removed          1 -  "
            "                    -                      -                        removed\n"
            "west                             10.0.0.5:7443                draining         2 "
            "1970-01-01T00:00:00Z   1970-01-01T00:00:00Z   zone=a                   draining since "
            "2025-11-30T04:20:00Z by the operator: move?; 2 boxes left\n");
  // Drained: nothing left.
  REQUIRE(f.db->DestroyBox("w1", 1).ok());
  REQUIRE(f.db->DestroyBox("w2", 1).ok());
  const std::string drained = CaptureStdout(f.dir.path() / "list2.out", [&] {
    CHECK(SpokeCommand({.verb = "list", .usage = ""}, f.config, f.clock) == 0);
  });
  CHECK(drained.find("by the operator: move?; drained\n") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::admin
