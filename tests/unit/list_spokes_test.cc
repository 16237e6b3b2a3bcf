// list_spokes: each spoke's state from the monitor's view, paged by name with a sealed cursor,
// without a call to any spoke. The page and entry functions over hand-made views, and the tool
// as a chatbot calls it over a real store, FakeSpokeClients and the registry's monitor.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/auth/principal.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/list_cursor.h"
#include "hub/boxes/registry.h"
#include "hub/boxes/spoke_listing.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/caller_context.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using auth::Principal;
using nlohmann::json;
using testing::CallerContext;

const Principal kAlice = Principal::ApiKey("alice", /*admin=*/false);
const Principal kBob = Principal::ApiKey("bob", /*admin=*/false);

SpokeView View(const std::string& name) {
  SpokeView view;
  view.name = name;
  view.admin.name = name;
  view.condition.name = name;
  view.health = cluster::SpokeHealth{.max_boxes = 20, .engine_reachable = true};
  return view;
}

std::vector<std::string> Names(const SpokeListPage& page) {
  std::vector<std::string> names;
  for (const SpokeView& view : page.spokes) names.push_back(view.name);
  return names;
}

// ---- Pages and entries, from hand-made views ----

TEST_CASE("spokes page by name from after the cursor's name, saying when more follow",
          "[list-spokes]") {
  std::vector<SpokeView> views = {View("gamma"), View("alpha"), View("delta"), View("beta")};
  SpokeListPage first = PageOfSpokes(views, std::nullopt, 3);
  CHECK(Names(first) == std::vector<std::string>{"alpha", "beta", "delta"});
  CHECK(first.more);
  SpokeListPage second = PageOfSpokes(views, "delta", 3);
  CHECK(Names(second) == std::vector<std::string>{"gamma"});
  CHECK_FALSE(second.more);
  // A name between two spokes (one removed meanwhile) continues after it.
  CHECK(Names(PageOfSpokes(views, "b", 10)) == std::vector<std::string>{"beta", "delta", "gamma"});
  CHECK(PageOfSpokes(views, "zzz", 10).spokes.empty());
  // An exact last page has no more.
  CHECK_FALSE(PageOfSpokes(views, std::nullopt, 4).more);
}

TEST_CASE("a ready spoke shows its state, boxes, room and no error", "[list-spokes]") {
  SpokeView view = View("west");
  view.registry_boxes = {.boxes = 3, .pending = 1};
  const json entry = json::parse(SpokeListEntryJson(view));
  CHECK(entry == json{{"name", "west"},
                      {"state", "ready"},
                      {"state_description", "ready"},
                      {"connected", true},
                      {"local", false},
                      {"boxes", 3},
                      {"max_boxes", 20}});
}

TEST_CASE("a cordoned spoke shows since when and the operator's reason", "[list-spokes]") {
  SpokeView view = View("local");
  view.local = true;
  view.state = SpokeState::kCordoned;
  view.admin = {.name = "local",
                .state = store::SpokeAdminState::kCordoned,
                .reason = "kernel update",
                .since_ms = 1'764'476'400'000};
  const json entry = json::parse(SpokeListEntryJson(view));
  CHECK(entry["state"] == "cordoned");
  CHECK(entry["since"] == "2025-11-30T04:20:00Z");
  CHECK(entry["reason"] == "kernel update");
  CHECK(entry["state_description"] ==
        "cordoned since 2025-11-30T04:20:00Z by the operator: kernel update");
  CHECK(entry["connected"] == true);
  CHECK(entry["local"] == true);
}

TEST_CASE(
    "an unreachable spoke shows its last error to an admin only and is not connected either way",
    "[list-spokes]") {
  SpokeView view = View("far");
  view.state = SpokeState::kUnreachable;
  view.condition = {.name = "far",
                    .condition = store::SpokeCondition::kUnreachable,
                    .reason = "connection refused \xff",
                    .since_ms = 1'764'476'400'000};
  const json entry = json::parse(SpokeListEntryJson(view, /*for_operator=*/true));
  CHECK(entry["state"] == "unreachable");
  CHECK(entry["connected"] == false);
  // Bytes that are not UTF-8 are replaced, not a broken answer.
  CHECK(entry["error"] == "connection refused \xef\xbf\xbd");
  // Another principal's chatbot reads no transport error (internal addresses), only since when.
  const json brief = json::parse(SpokeListEntryJson(view));
  CHECK(brief["connected"] == false);
  CHECK(brief["error"] == "unreachable");
  CHECK_FALSE(brief.contains("reason"));
  CHECK(brief["state_description"] == "unreachable since 2025-11-30T04:20:00Z");
  CHECK(brief.dump().find("connection refused") == std::string::npos);
  CHECK(entry["since"] == "2025-11-30T04:20:00Z");
  CHECK(entry["max_boxes"] == 20);  // its last answer, from before
}

TEST_CASE("a spoke not asked yet and a removed one are not connected, and say why",
          "[list-spokes]") {
  SpokeView fresh = View("new");
  fresh.health.reset();
  const json unasked = json::parse(SpokeListEntryJson(fresh));
  CHECK(unasked["connected"] == false);
  CHECK(unasked["error"] == "not checked yet");
  CHECK_FALSE(unasked.contains("max_boxes"));

  SpokeView removed = View("old");
  removed.health.reset();
  removed.state = SpokeState::kRemoved;
  removed.registry_boxes.boxes = 2;
  const json gone = json::parse(SpokeListEntryJson(removed));
  CHECK(gone["state"] == "removed");
  CHECK(gone["connected"] == false);
  CHECK(gone["error"] == "removed from the hub's spokes");
  CHECK(gone["boxes"] == 2);
}

// ---- The tool, over the registry's monitor ----

struct Fixture {
  Fixture() : dir("list-spokes") {
    db = store::SqliteStore::Open((dir.path() / "hub.db").string()).value();
    for (const char* name : {"alpha", "beta", "gamma"}) {
      auto client = std::make_shared<testing::FakeSpokeClient>();
      clients[name] = client;
      spokes.Add(name, client, /*local=*/false);
    }
    registry = std::make_unique<BoxRegistry>(
        *db, spokes, clock, RegistryOptions{.public_url = "https://hub.example.com"});
    tools = std::make_unique<BoxTools>(*registry);
  }

  // The tool's result: its JSON, or its error text as {"error": ...}.
  json Call(const Principal& who, json arguments) {
    CallerContext context(who);
    auto result = tools->Call("list_spokes", arguments, context);
    if (result.is_error) return {{"error", result.text}};
    return json::parse(result.structured_json);
  }

  std::size_t HealthCalls() {
    std::size_t calls = 0;
    for (auto& [name, client] : clients) calls += client->Timeouts("Health").size();
    return calls;
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  std::map<std::string, std::shared_ptr<testing::FakeSpokeClient>> clients;
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
  std::unique_ptr<BoxTools> tools;
};

TEST_CASE("list_spokes pages the monitor's view by name without calling a spoke", "[list-spokes]") {
  Fixture f;
  REQUIRE(f.db->SetSpokeAdmin({.name = "beta",
                               .state = store::SpokeAdminState::kDraining,
                               .reason = "maintenance",
                               .since_ms = 5})
              .ok());
  REQUIRE(f.db->InsertBox({.box_id = "b1", .spoke = "beta", .phase = store::Phase::kReady}).ok());
  f.registry->monitor().Poll();
  const std::size_t polled = f.HealthCalls();

  json first = f.Call(kAlice, {{"limit", 2}});
  REQUIRE(first.contains("spokes"));
  REQUIRE(first["spokes"].size() == 2);
  CHECK(first["spokes"][0]["name"] == "alpha");
  CHECK(first["spokes"][0]["state"] == "ready");
  CHECK(first["spokes"][1]["name"] == "beta");
  CHECK(first["spokes"][1]["state"] == "draining");
  CHECK(first["spokes"][1]["reason"] == "maintenance");
  CHECK(first["spokes"][1]["boxes"] == 1);
  REQUIRE(first.contains("next_cursor"));

  json second = f.Call(kAlice, {{"limit", 2}, {"cursor", first["next_cursor"]}});
  REQUIRE(second["spokes"].size() == 1);
  CHECK(second["spokes"][0]["name"] == "gamma");
  CHECK_FALSE(second.contains("next_cursor"));

  // Default limit: all three on one page.
  CHECK(f.Call(kAlice, json::object())["spokes"].size() == 3);
  CHECK(f.HealthCalls() == polled);
}

TEST_CASE("list_spokes refuses a limit out of range and a cursor not sealed for it",
          "[list-spokes]") {
  Fixture f;
  f.registry->monitor().Poll();
  CHECK(f.Call(kAlice, {{"limit", 0}})["error"] == "limit must be an integer 1..500, got 0");
  CHECK(f.Call(kAlice, {{"limit", 501}})["error"] == "limit must be an integer 1..500, got 501");
  CHECK(f.Call(kAlice, {{"limit", "lots"}})["error"] == "limit must be an integer 1..500");

  const json first = f.Call(kAlice, {{"limit", 1}});
  const std::string cursor = first["next_cursor"];
  // Another principal, a changed byte, a list_llmboxes cursor: all refused alike.
  CHECK(f.Call(kBob, {{"cursor", cursor}})["error"] == kInvalidCursor);
  std::string changed = cursor;
  changed[changed.size() / 2] = changed[changed.size() / 2] == 'A' ? 'B' : 'A';
  CHECK(f.Call(kAlice, {{"cursor", changed}})["error"] == kInvalidCursor);
  CHECK(f.Call(kAlice, {{"cursor", std::string(300, 'A')}})["error"] == kInvalidCursor);
  ListCursors same_key(std::string(32, 'k'));
  BoxTools keyed(*f.registry, std::string(32, 'k'));
  const std::string box_cursor =
      same_key.Seal(kAlice.id(), {}, {.created_at_ms = 1, .box_key = "alpha"});
  CallerContext context(kAlice);
  auto result = keyed.Call("list_spokes", {{"cursor", box_cursor}}, context);
  CHECK(result.is_error);
  CHECK(result.text == kInvalidCursor);
  // While the same tools take their own spoke cursor.
  auto own =
      keyed.Call("list_spokes", {{"cursor", same_key.SealSpoke(kAlice.id(), "alpha")}}, context);
  CHECK_FALSE(own.is_error);
}

TEST_CASE("a list_spokes cursor opens only as a spoke name, and a box cursor not at all",
          "[list-spokes]") {
  ListCursors cursors(std::string(32, 'k'));
  const std::string cursor = cursors.SealSpoke("key:alice", "west-1");
  CHECK(cursors.OpenSpoke("key:alice", cursor).value() == "west-1");
  CHECK(absl::IsInvalidArgument(cursors.Open("key:alice", {}, cursor).status()));
  CHECK(absl::IsInvalidArgument(cursors.OpenSpoke("key:bob", cursor).status()));
}

// cfg (issue 18): a spoke that answers but cannot create.
TEST_CASE("a spoke that cannot create is not ready and tells an admin why", "[list-spokes]") {
  SpokeView view = View("west");
  view.health->cannot_create = "boxes.default_image \"llmbox-box:dev\" is not on the engine";
  const json entry = json::parse(SpokeListEntryJson(view, /*for_operator=*/true));
  CHECK(entry["state"] == "not_ready");
  CHECK(entry["connected"] == true);
  CHECK(entry["reason"] == view.health->cannot_create);
  CHECK(entry["state_description"] ==
        "not ready: cannot create boxes: " + view.health->cannot_create);
  // Another principal's chatbot learns that it cannot, not the host's details.
  const json brief = json::parse(SpokeListEntryJson(view));
  CHECK(brief["state"] == "not_ready");
  CHECK_FALSE(brief.contains("reason"));
  CHECK(brief.dump().find("llmbox-box:dev") == std::string::npos);
  // An engine that is down is the same for list_spokes.
  SpokeView down = View("east");
  down.health->engine_reachable = false;
  CHECK(json::parse(SpokeListEntryJson(down))["state"] == "not_ready");
  // An operator's state wins: a cordoned spoke stays cordoned.
  view.state = SpokeState::kCordoned;
  CHECK(json::parse(SpokeListEntryJson(view))["state"] == "cordoned");
}

}  // namespace
}  // namespace llmbox::hub::boxes
