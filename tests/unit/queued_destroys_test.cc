// Queued destroys (issue 17, from the attacker's read): a destroy queued for one box never
// reaches a box that took its id since, nor (drain --destroy-pending) a box activated since
// it was read; a box whose destroy is queued takes no code; one destroy its spoke refuses does
// not hold back the others, and is tried again after a back-off. And a box that restarted
// while pending and answers a code with a new sign-in link counts no activation attempt.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using store::Phase;

const auth::Principal kAlice = auth::Principal::ApiKey("alice", /*admin=*/false);

struct Fixture {
  Fixture() : dir("queued-destroys") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("far", far, false);
    registry =
        std::make_unique<BoxRegistry>(*db, spokes, clock,
                                      RegistryOptions{.public_url = "https://hub.example.com",
                                                      .monitor = {.unreachable_after = 1}});
  }

  // Creates a box on "far"; returns its activation token.
  std::string Create(const std::string& id) {
    auto created = registry->Create({.box_id = id, .spoke = "far", .owner = kAlice}, nullptr);
    REQUIRE(created.ok());
    return created->auth_url.substr(created->auth_url.rfind('/') + 1);
  }
  // Destroys while "far" is cut off: each destroy is queued.
  void QueueDestroys(const std::vector<std::string>& ids) {
    far->FailEveryCall(absl::UnavailableError("failed to connect to all addresses"));
    registry->monitor().Poll();
    for (const auto& id : ids) {
      auto outcome = registry->Destroy(kAlice, id);
      REQUIRE(outcome.ok());
      REQUIRE(outcome->queued);
    }
    far->FailEveryCall(absl::OkStatus());
  }
  std::size_t DestroysOf(const std::string& id) {
    std::lock_guard lock(far->mu);
    return static_cast<std::size_t>(std::count(far->destroyed.begin(), far->destroyed.end(), id));
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  std::shared_ptr<testing::FakeSpokeClient> far = std::make_shared<testing::FakeSpokeClient>();
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
};

TEST_CASE("a destroy queued for one box never queues a box that took its id since",
          "[queued-destroys]") {
  Fixture f;
  REQUIRE(f.db->InsertBox({.box_id = "b", .spoke = "far", .token_hash = "new"}).ok());
  const absl::Status old = f.db->QueueDestroy("b", 5, {.token_hash = "old"});
  CHECK(absl::IsNotFound(old));
  CHECK_FALSE(f.db->GetBox("b")->destroy_queued_at_ms.has_value());
  REQUIRE(f.db->QueueDestroy("B", 6, {.token_hash = "new"}).ok());
  CHECK(f.db->GetBox("b")->destroy_queued_at_ms == 6);
}

TEST_CASE("drain's queueing never queues a box that was activated after it was read",
          "[queued-destroys]") {
  Fixture f;
  REQUIRE(
      f.db->InsertBox({.box_id = "b", .spoke = "far", .phase = Phase::kPending, .token_hash = "h"})
          .ok());
  store::BoxRecord read = *f.db->GetBox("b");
  store::BoxRecord activated = read;
  activated.phase = Phase::kReady;
  REQUIRE(f.db->UpdateBox(activated).ok());
  CHECK(absl::IsNotFound(
      f.db->QueueDestroy("b", 5, {.token_hash = read.token_hash, .phase = Phase::kPending})));
  CHECK_FALSE(f.db->GetBox("b")->destroy_queued_at_ms.has_value());
}

TEST_CASE("a queued destroy read before its box id was taken again never destroys the new box",
          "[queued-destroys]") {
  Fixture f;
  f.Create("a");
  f.Create("b");
  f.QueueDestroys({"a", "b"});
  // While the queue's first destroy runs, "b" is destroyed by other means and its id taken by
  // a new box on the same spoke.
  f.far->during_destroy = [&](const std::string& id) {
    if (id == "a") {
      REQUIRE(f.db->DestroyBox("b", 1).ok());
      REQUIRE(f.db->InsertBox({.box_id = "b",
                               .spoke = "far",
                               .phase = Phase::kPending,
                               .token_hash = common::Sha256Hex("the new box's token")})
                  .ok());
    }
    return absl::OkStatus();
  };
  (void)f.registry->ReconcileSpoke("far");
  CHECK(f.DestroysOf("a") == 1);
  CHECK(f.DestroysOf("b") == 0);
  auto b = f.db->GetBox("b");
  REQUIRE(b.ok());
  CHECK(b->token_hash == common::Sha256Hex("the new box's token"));
  std::lock_guard lock(f.far->mu);
  CHECK(f.far->boxes.contains("b"));
}

TEST_CASE(
    "one queued destroy its spoke refuses does not hold back the others and is tried again "
    "after its back-off",
    "[queued-destroys]") {
  Fixture f;
  for (const char* id : {"a", "b", "c"}) f.Create(id);
  f.QueueDestroys({"a", "b", "c"});
  bool refuse = true;
  f.far->during_destroy = [&](const std::string& id) {
    return id == "a" && refuse ? absl::InternalError("the engine is busy") : absl::OkStatus();
  };
  (void)f.registry->ReconcileSpoke("far");
  CHECK(absl::IsNotFound(f.db->GetBox("b").status()));
  CHECK(absl::IsNotFound(f.db->GetBox("c").status()));
  REQUIRE(f.db->GetBox("a")->destroy_queued_at_ms.has_value());
  CHECK(f.DestroysOf("a") == 1);

  (void)f.registry->ReconcileSpoke("far");  // within its back-off: not asked
  CHECK(f.DestroysOf("a") == 1);
  f.clock.Advance(30s);
  (void)f.registry->ReconcileSpoke("far");  // refused again: the back-off doubles
  CHECK(f.DestroysOf("a") == 2);
  f.clock.Advance(30s);
  refuse = false;
  (void)f.registry->ReconcileSpoke("far");
  CHECK(f.DestroysOf("a") == 2);
  f.clock.Advance(30s);
  (void)f.registry->ReconcileSpoke("far");
  CHECK(f.DestroysOf("a") == 3);
  CHECK(absl::IsNotFound(f.db->GetBox("a").status()));
}

TEST_CASE("a box whose destroy is queued takes no code", "[queued-destroys]") {
  Fixture f;
  const std::string token = f.Create("a");
  f.QueueDestroys({"a"});
  const auto submitted = f.registry->SubmitCode(token, "code#state");
  CHECK(absl::IsFailedPrecondition(submitted.status()));
  CHECK(submitted.status().message().find("being destroyed") != std::string::npos);
  std::lock_guard lock(f.far->mu);
  CHECK(f.far->submissions.empty());
}

TEST_CASE("a new sign-in link from a box that restarted while pending counts no attempt",
          "[queued-destroys]") {
  Fixture f;
  const std::string token = f.Create("a");
  f.far->submit_outcome = {
      .box_error =
          "the box restarted (its engine or its container did) and began a new "
          "sign-in, so the code was not used; sign in again from the new link",
      .authorize_url = "https://claude.ai/oauth/authorize?fake=2",
      .attempts_remaining = 3};
  auto outcome = f.registry->SubmitCode(token, "code#state");
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  CHECK(outcome->record.activation_attempts == 0);
  CHECK(f.db->GetBox("a")->authorize_url == "https://claude.ai/oauth/authorize?fake=2");

  // A code the box refused counts, new link or not.
  f.far->submit_outcome = {.box_error = "Couldn't log in: invalid code",
                           .authorize_url = "https://claude.ai/oauth/authorize?fake=3",
                           .attempts_remaining = 2};
  outcome = f.registry->SubmitCode(token, "code#state");
  REQUIRE(outcome.ok());
  CHECK(outcome->record.activation_attempts == 1);
}

}  // namespace
}  // namespace llmbox::hub::boxes
