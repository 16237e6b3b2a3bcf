// The store's spoke states (schema 9): what an operator set, what the hub observed, queued
// destroys and live boxes by spoke, over a real SQLite file; and the migration from schema 8.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/store/sqlite_store.h"
#include "tests/support/query_plan.h"
#include "tests/support/raw_sqlite.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::store {
namespace {

using testing::RawExec;
using testing::RawQuery;
using testing::ScratchDir;

struct Fixture {
  Fixture() : dir("spoke-store") {
    auto opened = SqliteStore::Open(path());
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    db = *std::move(opened);
  }
  std::string path() const { return (dir.path() / "hub.db").string(); }

  void Insert(const std::string& id, const std::string& spoke, Phase phase,
              std::int64_t created_at_ms = 1) {
    const absl::Status st = db->InsertBox({.box_id = id,
                                           .spoke = spoke,
                                           .phase = phase,
                                           .created_at_ms = created_at_ms,
                                           .updated_at_ms = created_at_ms});
    INFO(st.ToString());
    REQUIRE(st.ok());
  }

  ScratchDir dir;
  std::unique_ptr<SqliteStore> db;
};

std::vector<std::string> Ids(const std::vector<BoxRecord>& boxes) {
  std::vector<std::string> ids;
  for (const BoxRecord& box : boxes) ids.push_back(box.box_id);
  return ids;
}

TEST_CASE("an operator's spoke states are set, replaced and listed by name", "[spoke-store]") {
  Fixture f;
  CHECK(f.db->ListSpokeAdmin()->empty());
  REQUIRE(f.db->SetSpokeAdmin({.name = "beta",
                               .state = SpokeAdminState::kCordoned,
                               .reason = "kernel update",
                               .since_ms = 10})
              .ok());
  REQUIRE(f.db->SetSpokeAdmin({.name = "alpha",
                               .state = SpokeAdminState::kDraining,
                               .since_ms = 20,
                               .destroy_pending = true})
              .ok());
  auto listed = f.db->ListSpokeAdmin();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].name == "alpha");
  CHECK((*listed)[0].state == SpokeAdminState::kDraining);
  CHECK((*listed)[0].reason.empty());
  CHECK((*listed)[0].since_ms == 20);
  CHECK((*listed)[0].destroy_pending);
  CHECK((*listed)[1].name == "beta");
  CHECK((*listed)[1].state == SpokeAdminState::kCordoned);
  CHECK((*listed)[1].reason == "kernel update");
  CHECK((*listed)[1].since_ms == 10);
  CHECK_FALSE((*listed)[1].destroy_pending);

  // Uncordoning keeps a row, so its time says when.
  REQUIRE(
      f.db->SetSpokeAdmin({.name = "beta", .state = SpokeAdminState::kReady, .since_ms = 30}).ok());
  listed = f.db->ListSpokeAdmin();
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[1].state == SpokeAdminState::kReady);
  CHECK((*listed)[1].reason.empty());
  CHECK((*listed)[1].since_ms == 30);
}

TEST_CASE("a spoke state or condition without a name is refused", "[spoke-store]") {
  Fixture f;
  CHECK(absl::IsInvalidArgument(f.db->SetSpokeAdmin({.state = SpokeAdminState::kCordoned})));
  CHECK(absl::IsInvalidArgument(f.db->SetSpokeCondition({.condition = SpokeCondition::kDegraded})));
  CHECK(f.db->ListSpokeAdmin()->empty());
  CHECK(f.db->ListSpokeConditions()->empty());
}

TEST_CASE("observed spoke conditions are set, replaced and listed by name", "[spoke-store]") {
  Fixture f;
  REQUIRE(f.db->SetSpokeCondition({.name = "west",
                                   .condition = SpokeCondition::kUnreachable,
                                   .reason = "connection refused",
                                   .since_ms = 100,
                                   .checked_at_ms = 130})
              .ok());
  REQUIRE(f.db->SetSpokeCondition({.name = "east",
                                   .condition = SpokeCondition::kDegraded,
                                   .reason = "4 of the last 5 creates failed",
                                   .since_ms = 50,
                                   .checked_at_ms = 60})
              .ok());
  auto listed = f.db->ListSpokeConditions();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[0].name == "east");
  CHECK((*listed)[0].condition == SpokeCondition::kDegraded);
  CHECK((*listed)[0].reason == "4 of the last 5 creates failed");
  CHECK((*listed)[0].since_ms == 50);
  CHECK((*listed)[0].checked_at_ms == 60);
  CHECK((*listed)[1].name == "west");
  CHECK((*listed)[1].condition == SpokeCondition::kUnreachable);
  CHECK((*listed)[1].checked_at_ms == 130);

  REQUIRE(f.db->SetSpokeCondition({.name = "west",
                                   .condition = SpokeCondition::kHealthy,
                                   .since_ms = 200,
                                   .checked_at_ms = 200})
              .ok());
  listed = f.db->ListSpokeConditions();
  REQUIRE(listed->size() == 2);
  CHECK((*listed)[1].condition == SpokeCondition::kHealthy);
  CHECK((*listed)[1].reason.empty());
  CHECK((*listed)[1].since_ms == 200);
}

TEST_CASE("a queued destroy keeps its first time and is read back with the box", "[spoke-store]") {
  Fixture f;
  f.Insert("Demo", "west", Phase::kReady);
  CHECK_FALSE(f.db->GetBox("demo")->destroy_queued_at_ms.has_value());
  REQUIRE(f.db->QueueDestroy("DEMO", 500).ok());  // ids are case-insensitive
  REQUIRE(f.db->QueueDestroy("demo", 900).ok());
  CHECK(f.db->GetBox("demo")->destroy_queued_at_ms == 500);
  CHECK(f.db->ListBoxes({})->at(0).destroy_queued_at_ms == 500);
  CHECK(f.db->ListBoxesPage({}, std::nullopt, 10)->boxes.at(0).destroy_queued_at_ms == 500);

  const absl::Status missing = f.db->QueueDestroy("nobody", 500);
  CHECK(absl::IsNotFound(missing));
  CHECK(missing.message() == "no box \"nobody\"");
}

TEST_CASE("a box read by its activation token carries its queued destroy", "[spoke-store]") {
  Fixture f;
  REQUIRE(f.db->InsertBox({.box_id = "tok", .spoke = "west", .token_hash = "abc"}).ok());
  REQUIRE(f.db->QueueDestroy("tok", 7).ok());
  CHECK(f.db->GetBoxByTokenHash("abc")->destroy_queued_at_ms == 7);
}

TEST_CASE("UpdateBox leaves a queued destroy alone", "[spoke-store]") {
  Fixture f;
  f.Insert("demo", "west", Phase::kPending);
  REQUIRE(f.db->QueueDestroy("demo", 500).ok());
  // A read-modify-write of a box read before the destroy was queued must not undo it, and a
  // record that claims one must not set it.
  BoxRecord stale = *f.db->GetBox("demo");
  stale.destroy_queued_at_ms.reset();
  stale.phase = Phase::kReady;
  REQUIRE(f.db->UpdateBox(stale).ok());
  CHECK(f.db->GetBox("demo")->phase == Phase::kReady);
  CHECK(f.db->GetBox("demo")->destroy_queued_at_ms == 500);

  f.Insert("other", "west", Phase::kPending);
  BoxRecord claims = *f.db->GetBox("other");
  claims.destroy_queued_at_ms = 42;
  REQUIRE(f.db->UpdateBox(claims).ok());
  CHECK_FALSE(f.db->GetBox("other")->destroy_queued_at_ms.has_value());
}

TEST_CASE("queued destroys list by spoke, oldest queued first, at most the limit",
          "[spoke-store]") {
  Fixture f;
  f.Insert("w1", "west", Phase::kReady);
  f.Insert("w2", "west", Phase::kPending);
  f.Insert("w3", "west", Phase::kPending);
  f.Insert("w4", "west", Phase::kPending);  // never queued
  f.Insert("e1", "east", Phase::kReady);
  REQUIRE(f.db->QueueDestroy("w2", 300).ok());
  REQUIRE(f.db->QueueDestroy("w3", 100).ok());
  REQUIRE(f.db->QueueDestroy("w1", 300).ok());  // same time as w2: by id
  REQUIRE(f.db->QueueDestroy("e1", 50).ok());

  CHECK(Ids(*f.db->ListQueuedDestroys("west", 10)) == std::vector<std::string>{"w3", "w1", "w2"});
  CHECK(Ids(*f.db->ListQueuedDestroys("west", 2)) == std::vector<std::string>{"w3", "w1"});
  CHECK(Ids(*f.db->ListQueuedDestroys("east", 10)) == std::vector<std::string>{"e1"});
  CHECK(f.db->ListQueuedDestroys("north", 10)->empty());
  // A destroyed box leaves the queue with its row.
  REQUIRE(f.db->DestroyBox("w3", 400).ok());
  CHECK(Ids(*f.db->ListQueuedDestroys("west", 10)) == std::vector<std::string>{"w1", "w2"});

  CHECK(absl::IsInvalidArgument(f.db->ListQueuedDestroys("west", 0).status()));
  CHECK(absl::IsInvalidArgument(f.db->ListQueuedDestroys("west", kMaxBoxPage + 1).status()));
}

TEST_CASE("live boxes are counted by spoke, pending ones apart, gone ones not at all",
          "[spoke-store]") {
  Fixture f;
  CHECK(f.db->CountBoxesBySpoke()->empty());
  f.Insert("w1", "west", Phase::kReady);
  f.Insert("w2", "west", Phase::kPending);
  f.Insert("w3", "west", Phase::kPending);
  f.Insert("w4", "west", Phase::kError);
  f.Insert("w5", "west", Phase::kGone);
  f.Insert("e1", "east", Phase::kCreating);
  f.Insert("e2", "east", Phase::kActivating);
  f.Insert("n1", "north", Phase::kGone);
  auto counts = f.db->CountBoxesBySpoke();
  REQUIRE(counts.ok());
  REQUIRE(counts->size() == 2);  // north holds only a gone box
  CHECK(counts->at("west").boxes == 4);
  CHECK(counts->at("west").pending == 2);
  CHECK(counts->at("east").boxes == 2);
  CHECK(counts->at("east").pending == 0);
}

TEST_CASE("box counts by spoke and queued destroys read indexes and never sort", "[spoke-store]") {
  Fixture f;
  for (int i = 0; i < 50; ++i) {
    f.Insert("box-" + std::to_string(i), i % 2 == 0 ? "west" : "east", Phase::kReady, i);
  }
  RawExec(f.path(), "ANALYZE");
  auto counts = testing::QueryPlan(f.path(), SqliteStore::BoxCountsQuery());
  REQUIRE(counts.ok());
  INFO(*counts);
  // Every live box is counted, so every index entry is read; but from an index that holds
  // both columns, already grouped by spoke: no table row, no temporary b-tree.
  CHECK(counts->find("COVERING INDEX boxes_by_spoke_phase") != std::string::npos);
  CHECK(counts->find("TEMP B-TREE") == std::string::npos);

  auto queued = testing::QueryPlan(f.path(), SqliteStore::QueuedDestroysQuery());
  REQUIRE(queued.ok());
  INFO(*queued);
  CHECK(queued->find("SEARCH boxes USING INDEX boxes_destroy_queued (spoke=? AND") !=
        std::string::npos);
  CHECK(queued->find("SCAN") == std::string::npos);
  CHECK(queued->find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("a schema-8 file upgrades to 9 keeping its boxes, none of them queued", "[spoke-store]") {
  ScratchDir dir("spoke-store-migrate");
  const std::string path = (dir.path() / "hub.db").string();
  REQUIRE(SqliteStore::SchemaVersion() == 10);
  {
    auto db = SqliteStore::Open(path).value();
    REQUIRE(db->InsertBox({.box_id = "Kept", .spoke = "west", .phase = Phase::kReady}).ok());
    REQUIRE(db->InsertBox({.box_id = "pend", .spoke = "west", .phase = Phase::kPending}).ok());
  }
  // What versions 9 and 10 added, taken away: the file as version 8 left it.
  RawExec(path,
          "DROP TABLE spoke_removal_cursors; DROP TABLE spoke_admin; DROP TABLE spoke_conditions; "
          "DROP INDEX boxes_destroy_queued; "
          "ALTER TABLE boxes DROP COLUMN destroy_queued_at_ms; PRAGMA user_version = 8;");
  REQUIRE(RawQuery(path, "PRAGMA user_version") == "8|\n");

  auto db = SqliteStore::Open(path).value();
  CHECK(RawQuery(path, "PRAGMA user_version") == "10|\n");
  auto kept = db->GetBox("kept");
  REQUIRE(kept.ok());
  CHECK(kept->box_id == "Kept");
  CHECK(kept->phase == Phase::kReady);
  CHECK_FALSE(kept->destroy_queued_at_ms.has_value());
  CHECK(db->CountBoxesBySpoke()->at("west").pending == 1);
  CHECK(db->ListSpokeAdmin()->empty());
  CHECK(db->ListSpokeConditions()->empty());
  REQUIRE(db->QueueDestroy("pend", 5).ok());
  CHECK(Ids(*db->ListQueuedDestroys("west", 10)) == std::vector<std::string>{"pend"});
  // The tables are STRICT and checked, like the others.
  CHECK(RawQuery(path,
                 "SELECT strict FROM pragma_table_list WHERE name IN "
                 "('spoke_admin', 'spoke_conditions') ORDER BY name") == "1|\n1|\n");
}

TEST_CASE("a removed spoke keeps what its operator set and what the hub observed",
          "[spoke-store]") {
  Fixture f;
  REQUIRE(f.db->InsertJoinToken({.hash = "jt", .name = "west", .expires_at_ms = 100}).ok());
  REQUIRE(f.db->ConsumeJoinToken("jt", 1, {.name = "west", .advertise_address = "w:7443"}).ok());
  REQUIRE(f.db->SetSpokeAdmin({.name = "west", .state = SpokeAdminState::kDraining}).ok());
  REQUIRE(
      f.db->SetSpokeCondition({.name = "west", .condition = SpokeCondition::kUnreachable}).ok());
  REQUIRE(f.db->DeleteSpoke("west").ok());
  CHECK(f.db->ListSpokes()->empty());
  REQUIRE(f.db->ListSpokeAdmin()->size() == 1);
  CHECK(f.db->ListSpokeAdmin()->at(0).state == SpokeAdminState::kDraining);
  REQUIRE(f.db->ListSpokeConditions()->size() == 1);
  CHECK(f.db->ListSpokeConditions()->at(0).condition == SpokeCondition::kUnreachable);
}

}  // namespace
}  // namespace llmbox::hub::store
