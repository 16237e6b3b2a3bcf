// The hub's BoxRegistry over a fake spoke service (a real in-process gRPC server) and a real
// SQLite store in a scratch directory: the failure paths the e2e tests cannot provoke.
#include "hub/boxes/registry.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "hub/boxes/box_tools.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using store::Phase;

const auth::Principal kAlice = auth::Principal::ApiKey("alice", /*admin=*/false);

struct Fixture {
  Fixture() : dir("registry") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", cluster::MakeGrpcSpokeClient(spoke.Channel()), true);
    registry = std::make_unique<BoxRegistry>(
        *db, spokes, clock, RegistryOptions{.public_url = "https://hub.example.com"});
  }

  CreatedBox Create(const std::string& id) {
    auto created = registry->Create({.box_id = id, .owner = kAlice}, nullptr);
    REQUIRE(created.ok());
    return *created;
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeBoxService spoke;
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
};

TEST_CASE("a created box is pending with its token kept only as a hash", "[registry]") {
  Fixture f;
  CreatedBox box = f.Create("demo");
  REQUIRE(box.auth_url.rfind("https://hub.example.com/auth/", 0) == 0);
  const std::string token = box.auth_url.substr(box.auth_url.rfind('/') + 1);
  CHECK(token.size() >= 43);  // 256 bits
  auto stored = f.db->GetBox("demo");
  REQUIRE(stored.ok());
  CHECK(stored->phase == Phase::kPending);
  CHECK(stored->token_hash == common::Sha256Hex(token));
  CHECK(stored->authorize_url == "https://claude.ai/oauth/authorize?fake=1");
  CHECK(stored->created_by == "alice");
  CHECK(stored->expires_at_ms == 4'000'000'000'000);
  auto found = f.registry->FindByToken(token);
  REQUIRE(found.ok());
  CHECK(found->box_id == "demo");
  CHECK(absl::IsNotFound(f.registry->FindByToken("not-the-token").status()));
}

TEST_CASE("a box that names no spoke goes to the spoke with the most room", "[registry]") {
  Fixture f;
  testing::FakeBoxService big;
  testing::FakeBoxService small;
  f.spokes.Add("big", cluster::MakeGrpcSpokeClient(big.Channel()), false);
  f.spokes.Add("small", cluster::MakeGrpcSpokeClient(small.Channel()), false);
  // local: 20 places, 15 taken (5 free); big: 50, 40 taken (10 free); small: 4, none taken.
  f.spoke.extra_boxes = 15;
  big.max_boxes = 50;
  big.extra_boxes = 40;
  small.max_boxes = 4;

  auto placed = [&](const std::string& id, const std::string& image = "") {
    auto created = f.registry->Create({.box_id = id, .image = image}, nullptr);
    INFO(created.status().message());
    REQUIRE(created.ok());
    return created->record.spoke;
  };
  CHECK(placed("one") == "big");
  CHECK(big.created == std::vector<std::string>{"one"});
  SECTION("the most free places win; a named spoke is taken as named") {
    big.extra_boxes = 45;          // big now has 4 free, local 5, small 4
    f.registry->monitor().Poll();  // placement goes by the last round's answers
    CHECK(placed("two") == "local");
    auto named = f.registry->Create({.box_id = "three", .spoke = "small"}, nullptr);
    REQUIRE(named.ok());
    CHECK(named->record.spoke == "small");
  }
  SECTION("full, unreachable, engine-down spokes and spokes without the image are passed over") {
    f.spoke.extra_boxes = 20;  // full
    big.health_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
    // Unreachable after two health rounds that do not reach it.
    f.registry->monitor().Poll();
    f.registry->monitor().Poll();
    CHECK(placed("two") == "small");
    small.engine_reachable = false;
    f.registry->monitor().Poll();
    auto none = f.registry->Create({.box_id = "three"}, nullptr);
    REQUIRE(absl::IsResourceExhausted(none.status()));
    CHECK(none.status().message() ==
          "no spoke can take the box: big is unreachable since " +
              common::FormatUtcSeconds(common::ToUnixMillis(f.clock.Now())) +
              "; local is full (20 of 20 boxes, creates included); small's "
              "Docker engine is down. Destroy a box, or name a spoke with room");
    CHECK(absl::IsNotFound(f.db->GetBox("three").status()));  // nothing reserved
    small.engine_reachable = true;
    small.allowed_images = {"llmbox-box:dev", "custom:1"};
    f.registry->monitor().Poll();
    CHECK(placed("four", "custom:1") == "small");
  }
}

TEST_CASE(
    "a hub with one spoke places boxes there while it is ready and refuses naming why "
    "once it is unreachable",
    "[registry]") {
  Fixture f;
  auto created = f.registry->Create({.box_id = "only"}, nullptr);
  REQUIRE(created.ok());
  CHECK(created->record.spoke == "local");
  f.spoke.health_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  f.registry->monitor().Poll();
  f.registry->monitor().Poll();
  auto refused = f.registry->Create({.box_id = "two"}, nullptr);
  REQUIRE(absl::IsResourceExhausted(refused.status()));
  CHECK(std::string(refused.status().message()).find("local is unreachable since") !=
        std::string::npos);
  CHECK(f.spoke.created == std::vector<std::string>{"only"});
}

TEST_CASE("a create the spoke refuses leaves no record and keeps the spoke's words", "[registry]") {
  Fixture f;
  f.spoke.create_status =
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "spoke local is full (20 boxes)");
  auto created = f.registry->Create({.box_id = "full"}, nullptr);
  CHECK(absl::IsResourceExhausted(created.status()));
  CHECK(created.status().message() == "spoke local is full (20 boxes)");
  CHECK(absl::IsNotFound(f.db->GetBox("full").status()));
  // Refused outright: nothing to take down.
  CHECK(f.spoke.destroyed.empty());
  // The id is free again.
  f.spoke.create_status = grpc::Status::OK;
  f.Create("full");
}

TEST_CASE("a create whose answer is lost takes the box down on the spoke", "[registry]") {
  Fixture f;
  f.spoke.create_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset");
  auto created = f.registry->Create({.box_id = "lost"}, nullptr);
  CHECK(absl::IsUnavailable(created.status()));
  CHECK(std::string(created.status().message()).find("spoke \"local\" cannot be reached") !=
        std::string::npos);
  CHECK(f.spoke.destroyed == std::vector<std::string>{"lost"});
  CHECK(absl::IsNotFound(f.db->GetBox("lost").status()));
}

TEST_CASE("box ids are unique across the hub, case-insensitively, before any spoke call",
          "[registry]") {
  Fixture f;
  f.Create("taken");
  auto again = f.registry->Create({.box_id = "taken"}, nullptr);
  CHECK(absl::IsAlreadyExists(again.status()));
  CHECK(f.spoke.created.size() == 1);
  CHECK(absl::IsInvalidArgument(f.registry->Create({.box_id = "Not_Valid"}, nullptr).status()));
}

TEST_CASE("an unknown spoke is refused with the spokes there are", "[registry]") {
  Fixture f;
  auto created = f.registry->Create({.box_id = "x", .spoke = "nowhere"}, nullptr);
  CHECK(absl::IsInvalidArgument(created.status()));
  CHECK(created.status().message() == "unknown spoke \"nowhere\"; this hub has: local");
}

TEST_CASE("destroy keeps the record when the spoke fails, forgets it when the box is gone",
          "[registry]") {
  Fixture f;
  f.Create("keep");
  // A refusal (a spoke it cannot reach queues the destroy instead: unreachable_test.cc).
  f.spoke.destroy_status = grpc::Status(grpc::StatusCode::INTERNAL, "the engine refused");
  CHECK(absl::IsInternal(f.registry->Destroy(kAlice, "keep").status()));
  CHECK(f.db->GetBox("keep").ok());
  f.spoke.destroy_status = grpc::Status::OK;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.boxes.erase("keep");  // the box vanished behind the hub's back
  }
  CHECK(f.registry->Destroy(kAlice, "keep").ok());
  CHECK(absl::IsNotFound(f.db->GetBox("keep").status()));
  CHECK(absl::IsNotFound(f.registry->Destroy(kAlice, "keep").status()));
}

TEST_CASE("reconcile marks vanished boxes gone, takes the spoke's phase, reports strangers",
          "[registry]") {
  Fixture f;
  f.Create("vanished");
  f.Create("activated");
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.boxes.erase("vanished");
    f.spoke.boxes["activated"].set_phase(v1::BOX_PHASE_READY);
    f.spoke.boxes["activated"].set_session_url("https://claude.ai/code/session_1");
    f.spoke.boxes["stranger"].set_box_id("stranger");
  }
  f.clock.Advance(std::chrono::milliseconds(1));  // a reconcile judges records older than its list
  const auto unknown = f.registry->Reconcile();
  CHECK(unknown == std::vector<std::string>{"local/stranger"});
  auto vanished = f.registry->Get(kAlice, "vanished");
  REQUIRE(vanished.ok());
  CHECK(vanished->phase == Phase::kGone);
  CHECK(vanished->last_error.find("no longer on spoke local") != std::string::npos);
  auto activated = f.registry->Get(kAlice, "activated");
  REQUIRE(activated.ok());
  CHECK(activated->phase == Phase::kReady);
  CHECK(activated->session_url == "https://claude.ai/code/session_1");
}

TEST_CASE("reconcile removes a box left creating by a hub that stopped mid-create however young",
          "[registry]") {
  Fixture f;
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(f.clock.Now().time_since_epoch())
          .count();
  // What a hub that stopped during CreateBox leaves: the record still creating; on the spoke
  // the box may or may not have been made.
  auto creating = [&](const std::string& id, std::int64_t age_ms) {
    store::BoxRecord record{.box_id = id,
                            .spoke = "local",
                            .phase = Phase::kCreating,
                            .token_hash = common::Sha256Hex("token-" + id),
                            .created_at_ms = now_ms - age_ms,
                            .updated_at_ms = now_ms - age_ms};
    REQUIRE(f.db->InsertBox(record).ok());
  };
  // No create of this process runs for either, so both were left by the hub before it,
  // however young: a hub restarted within seconds of a kill -9 frees them at once.
  creating("made-then-stopped", 2'000);
  creating("never-made", 600'000);
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.boxes["made-then-stopped"].set_box_id("made-then-stopped");
    f.spoke.boxes["made-then-stopped"].set_phase(v1::BOX_PHASE_PENDING);
  }
  CHECK(f.registry->Reconcile().empty());
  CHECK(f.spoke.destroyed == std::vector<std::string>{"made-then-stopped"});
  CHECK(absl::IsNotFound(f.db->GetBox("made-then-stopped").status()));
  CHECK(absl::IsNotFound(f.db->GetBox("never-made").status()));
  // The ids are free again.
  f.Create("made-then-stopped");
  f.Create("never-made");
}

TEST_CASE("a code the box refuses keeps the box pending with the new sign-in link", "[registry]") {
  Fixture f;
  CreatedBox box = f.Create("signin");
  const std::string token = box.auth_url.substr(box.auth_url.rfind('/') + 1);
  f.spoke.submit_response.set_activated(false);
  f.spoke.submit_response.set_box_error("Couldn't log in: bad code");
  f.spoke.submit_response.set_authorize_url("https://claude.ai/oauth/authorize?fresh=2");
  f.spoke.submit_response.set_attempts_remaining(2);
  auto refused = f.registry->SubmitCode(token, "wrong#state");
  REQUIRE(refused.ok());
  CHECK(!refused->activated);
  CHECK(refused->box_error == "Couldn't log in: bad code");
  auto stored = f.db->GetBox("signin");
  CHECK(stored->phase == Phase::kPending);
  CHECK(stored->authorize_url == "https://claude.ai/oauth/authorize?fresh=2");
  CHECK(stored->activation_attempts == 1);

  f.spoke.submit_response.set_activated(true);
  f.spoke.submit_response.set_session_url("https://claude.ai/code/session_2");
  auto accepted = f.registry->SubmitCode(token, "right#state");
  REQUIRE(accepted.ok());
  CHECK(accepted->activated);
  CHECK(f.db->GetBox("signin")->phase == Phase::kReady);
  CHECK(f.db->GetBox("signin")->session_url == "https://claude.ai/code/session_2");
  CHECK(absl::IsFailedPrecondition(f.registry->SubmitCode(token, "again#x").status()));
  CHECK(f.spoke.codes == std::vector<std::string>{"wrong#state", "right#state"});
}

TEST_CASE("the last refused attempt leaves the box in error", "[registry]") {
  Fixture f;
  CreatedBox box = f.Create("last");
  const std::string token = box.auth_url.substr(box.auth_url.rfind('/') + 1);
  f.spoke.submit_response.set_activated(false);
  f.spoke.submit_response.set_box_error("too many attempts");
  f.spoke.submit_response.set_attempts_remaining(0);
  REQUIRE(f.registry->SubmitCode(token, "wrong#x").ok());
  CHECK(f.db->GetBox("last")->phase == Phase::kError);
}

class NoContext final : public mcp::CallContext {
 public:
  void Progress(double, std::optional<double>, std::string_view) override {}
  bool Cancelled() const override { return false; }
  void OnCancel(std::function<void()>) override {}
  const auth::Principal& principal() const override { return principal_; }

 private:
  auth::Principal principal_ = kAlice;
};

TEST_CASE("the box tools show a box's facts but never its token, hash or authorize URL",
          "[registry]") {
  Fixture f;
  CreatedBox box = f.Create("shown");
  const std::string token = box.auth_url.substr(box.auth_url.rfind('/') + 1);
  BoxTools tools(*f.registry);
  NoContext context;
  auto get = tools.Call("get_llmbox", {{"box_id", "shown"}}, context);
  REQUIRE(!get.is_error);
  const auto shown = nlohmann::json::parse(get.structured_json);
  CHECK(shown["box_id"] == "shown");
  CHECK(shown["status"] == "pending");
  CHECK(shown["spoke"] == "local");
  CHECK(shown["container_id"] == "c0ffeeshown");
  CHECK(!shown.contains("owner"));  // alice sees her own boxes only
  CHECK(!shown.contains("created_by"));
  CHECK(shown.contains("expires_at"));
  CHECK(shown["network"]["mode"] == "allowlist");  // asked of the spoke, for get only
  auto list = tools.Call("list_llmboxes", nlohmann::json::object(), context);
  REQUIRE(!list.is_error);
  const auto listed = nlohmann::json::parse(list.structured_json);
  REQUIRE(listed["boxes"].size() == 1);
  auto shown_without_network = shown;
  shown_without_network.erase("network");
  CHECK(listed["boxes"][0] == shown_without_network);
  auto filtered = tools.Call("list_llmboxes", {{"status", "ready"}}, context);
  CHECK(nlohmann::json::parse(filtered.structured_json)["boxes"].empty());
  for (const std::string& out : {get.structured_json, list.structured_json}) {
    CHECK(out.find(token) == std::string::npos);
    CHECK(out.find(common::Sha256Hex(token)) == std::string::npos);
    CHECK(out.find("oauth/authorize") == std::string::npos);
  }
  auto missing = tools.Call("get_llmbox", {{"box_id", "absent"}}, context);
  CHECK(missing.is_error);
  CHECK(missing.text.find("no box \"absent\"") == 0);
}

}  // namespace
}  // namespace llmbox::hub::boxes
