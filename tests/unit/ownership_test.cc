// Box ownership on the hub: a box belongs to the principal that created it; every other
// principal meets it exactly as a box that does not exist (no existence oracle), an admin acts
// on all of them. The store keeps the owner (with an index) and migrates old files so boxes
// belong to their created_by. Over a real SQLite store and a fake spoke.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "hub/auth/principal.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/caller_context.h"
#include "tests/support/raw_sqlite.h"
#include "tests/support/scratch_dir.h"
#include "tests/unit/registry_fixture.h"

namespace llmbox::hub::boxes {
namespace {

using auth::Principal;
using nlohmann::json;
using store::BoxRecord;
using store::Phase;
using testing::CallerContext;
using testing::RawExec;
using testing::RawQuery;

const Principal kAlice = testing::kAliceKey;
const Principal kBob = testing::kBobKey;
const Principal kAdmin = testing::kAdminKey;

struct Fixture : testing::RegistryFixture {
  Fixture() : RegistryFixture("ownership") {}

  // What the fake spoke was asked to do beyond creating boxes.
  std::size_t SpokeCalls() {
    std::lock_guard lock(spoke->mu);
    return spoke->destroyed.size() + spoke->logs_asked.size() + spoke->execs.size() +
           spoke->got.size() + spoke->network_changes.size();
  }
};

std::vector<std::string> Ids(const std::vector<BoxRecord>& boxes) {
  std::vector<std::string> ids;
  for (const BoxRecord& box : boxes) ids.push_back(box.box_id);
  return ids;
}

// The ids of the first page of `who`'s list (list_llmboxes' registry call).
std::vector<std::string> Listed(BoxRegistry& registry, const Principal& who,
                                store::BoxFilter filter = {}) {
  auto page = registry.ListPage(who, std::move(filter), std::nullopt, store::kMaxBoxPage);
  INFO(page.status().ToString());
  REQUIRE(page.ok());
  return Ids(page->boxes);
}

// ---- The registry ----

TEST_CASE("a created box belongs to its creator, recorded by principal id", "[ownership]") {
  Fixture f;
  f.Create("alices", kAlice);
  auto stored = f.db->GetBox("alices");
  REQUIRE(stored.ok());
  CHECK(stored->owner == "key:alice");
  CHECK(stored->created_by == "alice");
  CHECK(f.spoke->creates.back().owner == "alice");  // the container's label: a display name
  f.Create("anons", Principal::Anonymous());
  CHECK(f.db->GetBox("anons")->owner == "anonymous");
}

TEST_CASE("a principal gets, lists, logs, execs and destroys its own boxes only", "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  f.Create("bob-box", kBob);

  CHECK(f.registry->Get(kAlice, "alice-box").ok());
  CHECK(absl::IsNotFound(f.registry->Get(kBob, "alice-box").status()));
  CHECK(Listed(*f.registry, kAlice) == std::vector<std::string>{"alice-box"});
  CHECK(Listed(*f.registry, kBob) == std::vector<std::string>{"bob-box"});
  // A caller cannot widen its list by naming another owner.
  CHECK(absl::IsPermissionDenied(
      f.registry->ListPage(kBob, {.owner = "key:alice"}, std::nullopt, 10).status()));
  CHECK(Listed(*f.registry, Principal::Anonymous()).empty());

  CHECK(absl::IsNotFound(f.registry->Logs(kBob, "alice-box", std::nullopt).status()));
  CHECK(absl::IsNotFound(
      f.registry->Exec(kBob, "alice-box", {"true"}, std::nullopt, nullptr).status()));
  CHECK(absl::IsNotFound(f.registry->Destroy(kBob, "alice-box").status()));
  CHECK(f.SpokeCalls() == 0);  // none of bob's calls reached the spoke
  CHECK(f.db->GetBox("alice-box").ok());

  CHECK(f.registry->Logs(kAlice, "alice-box", std::nullopt).ok());
  CHECK(f.registry->Exec(kAlice, "alice-box", {"true"}, std::nullopt, nullptr).ok());
  CHECK(f.registry->Destroy(kAlice, "alice-box").ok());
  CHECK(absl::IsNotFound(f.db->GetBox("alice-box").status()));
}

TEST_CASE("an admin gets, lists and acts on every principal's boxes", "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  f.Create("bob-box", kBob);
  f.Create("anon-box", Principal::Anonymous());
  // Made in the same (fake) millisecond, so listed by id.
  CHECK(Listed(*f.registry, kAdmin) ==
        std::vector<std::string>{"alice-box", "anon-box", "bob-box"});
  CHECK(Listed(*f.registry, kAdmin, {.owner = "key:bob"}) == std::vector<std::string>{"bob-box"});
  CHECK(f.registry->Get(kAdmin, "alice-box").ok());
  CHECK(f.registry->Logs(kAdmin, "bob-box", std::nullopt).ok());
  CHECK(f.registry->Exec(kAdmin, "anon-box", {"true"}, std::nullopt, nullptr).ok());
  CHECK(f.registry->Destroy(kAdmin, "alice-box").ok());
  CHECK(absl::IsNotFound(f.db->GetBox("alice-box").status()));
  // The admin's own boxes are the admin's.
  f.Create("admin-box", kAdmin);
  CHECK(f.db->GetBox("admin-box")->owner == "key:root");
  CHECK(absl::IsNotFound(f.registry->Get(kAlice, "admin-box").status()));
}

TEST_CASE("another principal's box fails with exactly the status of a missing box", "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  // The same id spelled another way is the same box (ids are case-insensitive), so the
  // message quotes the caller's spelling, never the stored one.
  for (const std::string& id : {std::string("alice-box"), std::string("Alice-Box")}) {
    INFO(id);
    const std::string missing = "zz" + id.substr(2);
    auto Same = [&](const absl::Status& theirs, const absl::Status& none) {
      CHECK(theirs.code() == absl::StatusCode::kNotFound);
      CHECK(theirs.code() == none.code());
      // Every byte but the quoted id.
      std::string expected(none.message());
      expected.replace(expected.find(missing), missing.size(), id);
      CHECK(std::string(theirs.message()) == expected);
    };
    Same(f.registry->Get(kBob, id).status(), f.registry->Get(kBob, missing).status());
    Same(f.registry->Logs(kBob, id, 10).status(), f.registry->Logs(kBob, missing, 10).status());
    Same(f.registry->Exec(kBob, id, {"ls"}, std::nullopt, nullptr).status(),
         f.registry->Exec(kBob, missing, {"ls"}, std::nullopt, nullptr).status());
    Same(f.registry->Destroy(kBob, id).status(), f.registry->Destroy(kBob, missing).status());
  }
}

TEST_CASE("a taken box id is refused without saying whose box holds it", "[ownership]") {
  Fixture f;
  f.Create("shared-name", kAlice);
  auto again = f.registry->Create({.box_id = "shared-name", .owner = kBob}, nullptr);
  CHECK(absl::IsAlreadyExists(again.status()));
  const std::string message(again.status().message());
  CHECK(message == "box id \"shared-name\" is taken on this hub: pick another");
  CHECK(message.find("alice") == std::string::npos);
  // The owner gets the same answer: it says nothing of whose box it is.
  auto own = f.registry->Create({.box_id = "shared-name", .owner = kAlice}, nullptr);
  CHECK(own.status() == again.status());
  CHECK(f.spoke->creates.size() == 1);
  CHECK(f.db->GetBox("shared-name")->owner == "key:alice");
}

TEST_CASE("a key's box is activated by the first signed-in person, as before principals",
          "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  // API keys carry no verified email, so nobody is named as the one activator...
  CHECK_FALSE(BoxRegistry::RequiredActivator(f.db->GetBox("alice-box").value()).has_value());
  // ...and the first person to sign in claims the box; the next is refused.
  CHECK(f.registry->ClaimActivation("alice-box", "carol@example.com").value() ==
        "carol@example.com");
  CHECK(f.registry->ClaimActivation("alice-box", "dave@example.com").value() ==
        "carol@example.com");
  CHECK(absl::IsNotFound(f.registry->ClaimActivation("no-box", "carol@example.com").status()));
}

TEST_CASE("a box made by a person signed in through OAuth is activated by that person only",
          "[ownership][oauth]") {
  Fixture f;
  const Principal carol = Principal::OAuthSubject("https://idp.example.com", "sub-carol", "Carol",
                                                  "Carol@Example.com", {});
  f.Create("carol-box", carol);
  const auto record = f.db->GetBox("carol-box").value();
  CHECK(record.owner == "oidc:https://idp.example.com#sub-carol");
  CHECK(record.owner_email == "Carol@Example.com");
  CHECK(BoxRegistry::RequiredActivator(record) == "carol@example.com");
  // Dave signs in first and is refused, and that claims nothing: Carol still can.
  CHECK(f.registry->ClaimActivation("carol-box", "dave@example.com").value() ==
        "carol@example.com");
  CHECK(f.db->GetBox("carol-box")->activation_owner.empty());
  CHECK(f.registry->ClaimActivation("carol-box", "carol@example.com").value() ==
        "carol@example.com");
  // The email stays through updates (UpdateBox leaves it alone).
  auto changed = f.db->GetBox("carol-box").value();
  changed.owner_email = "mallory@example.com";
  REQUIRE(f.db->UpdateBox(changed).ok());
  CHECK(f.db->GetBox("carol-box")->owner_email == "Carol@Example.com");
}

// ---- The MCP tools ----

TEST_CASE("every box tool answers another principal's box exactly as a missing one",
          "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  BoxTools tools(*f.registry);
  CallerContext bob(kBob);
  // Every tool that names a box, from the tool list itself, so a tool added later is covered.
  std::vector<std::string> box_tools;
  for (const mcp::Tool& tool : tools.Tools()) {
    if (tool.name == "create_llmbox") continue;  // it names a new box: "taken" is its answer
    const json& schema = tool.input_schema;
    if (schema.contains("properties") && schema.at("properties").contains("box_id")) {
      box_tools.push_back(tool.name);
    }
  }
  REQUIRE(std::set<std::string>(box_tools.begin(), box_tools.end()) ==
          std::set<std::string>{"get_llmbox", "destroy_llmbox", "get_llmbox_logs", "exec_llmbox",
                                "set_llmbox_network"});
  auto Args = [](const std::string& tool, const std::string& id) {
    json args = {{"box_id", id}};
    if (tool == "exec_llmbox") args["command"] = json::array({"id"});
    if (tool == "set_llmbox_network") args["add"] = json::array({"pypi.org"});
    return args;
  };
  for (const std::string& tool : box_tools) {
    INFO(tool);
    // Ids of the same length, so even the sizes of the answers match byte for byte once the
    // id is swapped.
    const mcp::ToolResult theirs = tools.Call(tool, Args(tool, "alice-box"), bob);
    const mcp::ToolResult none = tools.Call(tool, Args(tool, "nobod-box"), bob);
    CHECK(theirs.is_error);
    CHECK(none.is_error);
    std::string expected = none.text;
    expected.replace(expected.find("nobod-box"), 9, "alice-box");
    CHECK(theirs.text == expected);
    CHECK(theirs.structured_json.empty());
    CHECK(theirs.structured.is_null());
  }
  CHECK(f.SpokeCalls() == 0);
  // And list_llmboxes does not show it.
  auto list = tools.Call("list_llmboxes", json::object(), bob);
  REQUIRE(!list.is_error);
  CHECK(json::parse(list.structured_json)["boxes"].empty());
  // Alice's box is untouched, and still hers.
  CallerContext alice(kAlice);
  auto got = tools.Call("get_llmbox", {{"box_id", "alice-box"}}, alice);
  REQUIRE(!got.is_error);
  CHECK(json::parse(got.structured_json)["status"] == "pending");
}

TEST_CASE("box tools show owners to admins only", "[ownership]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  f.Create("bob-box", kBob);
  BoxTools tools(*f.registry);

  CallerContext alice(kAlice);
  const json own =
      json::parse(tools.Call("get_llmbox", {{"box_id", "alice-box"}}, alice).structured_json);
  CHECK_FALSE(own.contains("owner"));
  CHECK_FALSE(own.contains("created_by"));
  const json alices =
      json::parse(tools.Call("list_llmboxes", json::object(), alice).structured_json);
  REQUIRE(alices["boxes"].size() == 1);
  CHECK_FALSE(alices["boxes"][0].contains("owner"));

  CallerContext admin(kAdmin);
  const json listed =
      json::parse(tools.Call("list_llmboxes", json::object(), admin).structured_json);
  REQUIRE(listed["boxes"].size() == 2);
  CHECK(listed["boxes"][0]["box_id"] == "alice-box");
  CHECK(listed["boxes"][0]["owner"] == "key:alice");
  CHECK(listed["boxes"][1]["owner"] == "key:bob");
  const json got =
      json::parse(tools.Call("get_llmbox", {{"box_id", "bob-box"}}, admin).structured_json);
  CHECK(got["owner"] == "key:bob");
  // The output schema admits the field.
  for (const mcp::Tool& tool : tools.Tools()) {
    if (tool.name == "get_llmbox") CHECK(tool.output_schema["properties"].contains("owner"));
  }
}

// ---- The store ----

store::BoxRecord StoredBox(const std::string& id, const std::string& owner,
                           std::int64_t created_at_ms, Phase phase = Phase::kPending) {
  return {.box_id = id,
          .spoke = "local",
          .phase = phase,
          .token_hash = common::Sha256Hex("token-" + id),
          .created_by = owner,
          .owner = owner,
          .created_at_ms = created_at_ms};
}

TEST_CASE("the store lists one owner's boxes, also with phase and spoke filters", "[ownership]") {
  testing::ScratchDir dir("ownership-store");
  auto db = store::SqliteStore::Open((dir.path() / "hub.db").string()).value();
  REQUIRE(db->InsertBox(StoredBox("a1", "key:alice", 30)).ok());
  REQUIRE(db->InsertBox(StoredBox("b1", "key:bob", 20)).ok());
  REQUIRE(db->InsertBox(StoredBox("a2", "key:alice", 10, Phase::kReady)).ok());
  BoxRecord far = StoredBox("a3", "key:alice", 40, Phase::kReady);
  far.spoke = "far";
  REQUIRE(db->InsertBox(far).ok());

  CHECK(Ids(db->ListBoxes({.owner = "key:alice"}).value()) ==
        std::vector<std::string>{"a2", "a1", "a3"});
  CHECK(Ids(db->ListBoxes({.owner = "key:bob"}).value()) == std::vector<std::string>{"b1"});
  CHECK(db->ListBoxes({.owner = "key:carol"}).value().empty());
  CHECK(Ids(db->ListBoxes({.phase = Phase::kReady, .owner = "key:alice"}).value()) ==
        std::vector<std::string>{"a2", "a3"});
  CHECK(Ids(db->ListBoxes({.spoke = "far", .owner = "key:alice"}).value()) ==
        std::vector<std::string>{"a3"});
  CHECK(Ids(db->ListBoxes({.phase = Phase::kReady, .spoke = "local", .owner = "key:alice"})
                .value()) == std::vector<std::string>{"a2"});
  CHECK(db->ListBoxes({.spoke = "far", .owner = "key:bob"}).value().empty());
  CHECK(db->ListBoxes({}).value().size() == 4);
}

TEST_CASE("a box never changes hands through an update", "[ownership]") {
  testing::ScratchDir dir("ownership-store");
  auto db = store::SqliteStore::Open((dir.path() / "hub.db").string()).value();
  REQUIRE(db->InsertBox(StoredBox("a1", "key:alice", 30)).ok());
  BoxRecord changed = db->GetBox("a1").value();
  changed.owner = "key:mallory";
  changed.phase = Phase::kReady;
  REQUIRE(db->UpdateBox(changed).ok());
  CHECK(db->GetBox("a1")->phase == Phase::kReady);
  CHECK(db->GetBox("a1")->owner == "key:alice");
}

TEST_CASE("an API key's admin flag is stored and read back", "[ownership]") {
  testing::ScratchDir dir("ownership-store");
  auto db = store::SqliteStore::Open((dir.path() / "hub.db").string()).value();
  REQUIRE(db->InsertApiKey({.name = "root", .hash = common::Sha256Hex("k1"), .admin = true}).ok());
  REQUIRE(db->InsertApiKey({.name = "alice", .hash = common::Sha256Hex("k2")}).ok());
  CHECK(db->FindLiveApiKey(common::Sha256Hex("k1"))->admin);
  CHECK_FALSE(db->FindLiveApiKey(common::Sha256Hex("k2"))->admin);
  const auto keys = db->ListApiKeys().value();
  REQUIRE(keys.size() == 2);
  CHECK_FALSE(keys[0].admin);  // alice
  CHECK(keys[1].admin);        // root
}

TEST_CASE("migrating an old database gives its boxes to their created_by, and keys no admin",
          "[ownership]") {
  testing::ScratchDir dir("ownership-migrate");
  const std::string path = (dir.path() / "hub.db").string();
  REQUIRE(store::SqliteStore::SchemaVersion() == 10);
  // A version-5 file: this schema without what versions 6 to 10 added, with boxes and a key in it,
  // written with SQLite itself the way the older hub did (it knew no owner column).
  store::SqliteStore::Open(path).value().reset();
  RawExec(path,
          "DROP TABLE spoke_removal_cursors; "
          "DROP TABLE spoke_admin; DROP TABLE spoke_conditions; DROP INDEX boxes_destroy_queued; "
          "ALTER TABLE boxes DROP COLUMN destroy_queued_at_ms; "
          "DROP TABLE oauth_tokens; DROP TABLE oauth_codes; DROP TABLE oauth_grants; "
          "DROP TABLE oauth_clients; ALTER TABLE boxes DROP COLUMN owner_email; "
          "DROP INDEX boxes_by_spoke_phase; "
          "DROP INDEX boxes_by_owner; ALTER TABLE boxes DROP COLUMN owner; "
          "ALTER TABLE api_keys DROP COLUMN admin; PRAGMA user_version = 5;");
  RawExec(path,
          "INSERT INTO boxes (box_key, box_id, spoke, container_id, image, description, phase, "
          "session_url, last_error, authorize_url, token_hash, created_by, created_at_ms, "
          "expires_at_ms, updated_at_ms, activation_attempts) VALUES "
          "('old-alice', 'Old-Alice', 'local', 'c1', 'img', '', 'ready', '', '', '', 'h1', "
          "'alice', 1, 0, 1, 0), "
          "('old-bob', 'old-bob', 'local', 'c2', 'img', '', 'pending', '', '', '', 'h2', "
          "'bob', 2, 0, 2, 0), "
          "('old-anon', 'old-anon', 'local', 'c3', 'img', '', 'pending', '', '', '', NULL, "
          "'', 3, 0, 3, 0);"
          "INSERT INTO api_keys (name, hash, created_at_ms) VALUES ('alice', 'kh', 1);");
  REQUIRE(RawQuery(path, "PRAGMA user_version") == "5|\n");

  auto db = store::SqliteStore::Open(path).value();
  CHECK(RawQuery(path, "PRAGMA user_version") == "10|\n");
  CHECK(db->GetBox("old-alice")->owner == "key:alice");
  CHECK(db->GetBox("old-alice")->box_id == "Old-Alice");  // nothing else changed
  CHECK(db->GetBox("old-alice")->phase == Phase::kReady);
  CHECK(db->GetBox("old-bob")->owner == "key:bob");
  CHECK(db->GetBox("old-anon")->owner == "anonymous");
  CHECK(db->GetBox("old-alice")->owner == Principal::ApiKey("alice", false).id());
  CHECK(db->GetBox("old-anon")->owner == Principal::Anonymous().id());
  CHECK(Ids(db->ListBoxes({.owner = "key:alice"}).value()) ==
        std::vector<std::string>{"Old-Alice"});
  CHECK_FALSE(db->FindLiveApiKey("kh")->admin);

  // The registry then treats them as their owners' boxes.
  testing::FakeClock clock;
  SpokeDirectory spokes;
  spokes.Add("local", std::make_shared<testing::FakeSpokeClient>(), true);
  BoxRegistry registry(*db, spokes, clock, {});
  CHECK(registry.Get(kAlice, "old-alice").ok());
  CHECK(absl::IsNotFound(registry.Get(kBob, "old-alice").status()));
  CHECK(registry.Get(Principal::Anonymous(), "old-anon").ok());
}

TEST_CASE("a principal's list reads its boxes through the owner index", "[ownership]") {
  testing::ScratchDir dir("ownership-index");
  const std::string path = (dir.path() / "hub.db").string();
  store::SqliteStore::Open(path).value().reset();
  // The plan SQLite makes for the store's owner query (the same text as in sqlite_store.cc).
  const std::string plan =
      RawQuery(path,
               "EXPLAIN QUERY PLAN SELECT box_id FROM boxes WHERE owner = 'key:alice' "
               "ORDER BY created_at_ms, box_key");
  INFO(plan);
  CHECK(plan.find("USING INDEX boxes_by_owner") != std::string::npos);
  CHECK(plan.find("SCAN boxes|") == std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);  // already in list order
}

}  // namespace
}  // namespace llmbox::hub::boxes
