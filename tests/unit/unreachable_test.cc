// Spokes the hub cannot reach (issue 17): get_llmbox answers from the registry, destroy_llmbox
// is queued and completed when the spoke answers again (across a hub restart too), and a
// spoke that comes back is reconciled both ways. Over a real SQLite store in a scratch
// directory, the real SpokeMonitor driven by Poll, and in-memory spokes that can be cut off.
//
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/secrets.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/caller_context.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using store::Phase;

const auth::Principal kAlice = auth::Principal::ApiKey("alice", /*admin=*/false);
const auth::Principal kMallory = auth::Principal::ApiKey("mallory", /*admin=*/false);

RegistryOptions Options() {
  return {.public_url = "https://hub.example.com",
          .create_timeout = 100s,
          .call_timeout = 7s,
          .monitor = {.unreachable_after = 1}};
}

// A hub with two spokes: "near" always answers, "far" can be cut off.
struct Fixture {
  Fixture() : dir("unreachable") {
    spokes.Add("near", near, false);
    spokes.Add("far", far, false);
    Open();
  }

  // Opens the store and a registry over it: the second time, as a restarted hub does.
  void Open() {
    registry.reset();
    db.reset();
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    registry = std::make_unique<BoxRegistry>(*db, spokes, clock, Options());
  }

  void Create(const std::string& id, const std::string& spoke = "far",
              const auth::Principal& owner = kAlice) {
    auto created = registry->Create({.box_id = id, .spoke = spoke, .owner = owner}, nullptr);
    REQUIRE(created.ok());
  }

  // Cuts "far" off, and lets the monitor see it.
  void Partition() {
    far->FailEveryCall(absl::UnavailableError("failed to connect to all addresses"));
    registry->monitor().Poll();
  }
  void Heal() { far->FailEveryCall(absl::OkStatus()); }

  std::int64_t NowMs() { return common::ToUnixMillis(clock.Now()); }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  std::shared_ptr<testing::FakeSpokeClient> near = std::make_shared<testing::FakeSpokeClient>();
  std::shared_ptr<testing::FakeSpokeClient> far = std::make_shared<testing::FakeSpokeClient>();
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
};

std::size_t CallsOf(testing::FakeSpokeClient& spoke, const std::string& method) {
  return spoke.Timeouts(method).size();
}

TEST_CASE("get_llmbox answers from the record when the spoke does not answer and says so",
          "[unreachable]") {
  Fixture f;
  f.Create("quiet");
  f.clock.Advance(Options().live_ttl);  // what the create said is old: the get asks the spoke
  f.far->get_status = absl::UnavailableError("connection refused");
  auto details = f.registry->GetDetails(kAlice, "quiet");
  REQUIRE(details.ok());
  CHECK(details->record.phase == Phase::kPending);
  REQUIRE(details->spoke_unreachable.has_value());
  CHECK(*details->spoke_unreachable == "spoke far did not answer in time");
  REQUIRE(details->network.has_value());
  CHECK(absl::IsUnavailable(details->network->status()));

  // A refusal is an answer: the spoke is not unreachable.
  f.far->get_status = absl::InternalError("engine says no");
  details = f.registry->GetDetails(kAlice, "quiet");
  REQUIRE(details.ok());
  CHECK(!details->spoke_unreachable.has_value());
}

TEST_CASE("another principal can neither queue the destroy of a box nor learn that it exists",
          "[unreachable]") {
  Fixture f;
  f.Create("alices", "far", kAlice);
  f.Partition();
  const auto absent = f.registry->Destroy(kMallory, "no-such-box").status();
  const auto others = f.registry->Destroy(kMallory, "alices").status();
  CHECK(absl::IsNotFound(others));
  // The same words as for a box that does not exist, with the caller's own id in them.
  std::string expected(absent.message());
  expected.replace(expected.find("no-such-box"), std::string("no-such-box").size(), "alices");
  CHECK(others.message() == expected);
  CHECK(CallsOf(*f.far, "DestroyBox") == 0);
  auto record = f.db->GetBox("alices");
  REQUIRE(record.ok());
  CHECK(!record->destroy_queued_at_ms.has_value());

  const auto got = f.registry->GetDetails(kMallory, "alices").status();
  CHECK(absl::IsNotFound(got));
  CHECK(got.message().find("unreachable") == std::string::npos);
  CHECK(got.message().find("far") == std::string::npos);
  CHECK(CallsOf(*f.far, "GetBox") == 0);
}

TEST_CASE("reconcile destroys boxes the hub does not know and marks vanished ones gone",
          "[unreachable]") {
  Fixture f;
  f.Create("vanished");
  f.Create("kept");
  // (A create in flight is left alone: "reconcile leaves a create of this process alone while
  // it runs".)
  {
    std::lock_guard lock(f.far->mu);
    f.far->boxes.erase("vanished");
    f.far->boxes["stranger"] = {.box_id = "stranger", .phase = Phase::kPending};
    // Two spokes on one engine list each other's boxes: "on-near" is near's.
    f.far->boxes["on-near"] = {.box_id = "on-near", .phase = Phase::kPending};
  }
  f.Create("on-near", "near");
  f.clock.Advance(1ms);  // a reconcile judges records older than its list
  CHECK(f.registry->ReconcileSpoke("far") == std::vector<std::string>{"far/stranger"});
  std::lock_guard lock(f.far->mu);
  CHECK(f.far->destroyed == std::vector<std::string>{"stranger"});
  CHECK(f.far->boxes.contains("kept"));
  CHECK(f.far->boxes.contains("on-near"));
  CHECK(f.db->GetBox("on-near")->phase == Phase::kPending);
  CHECK(f.db->GetBox("vanished")->phase == Phase::kGone);
  CHECK(f.db->GetBox("kept")->phase == Phase::kPending);
}

TEST_CASE("reconcile of every spoke reconciles each and returns their unknown boxes",
          "[unreachable]") {
  Fixture f;
  {
    std::lock_guard lock(f.near->mu);
    f.near->boxes["stray-near"] = {.box_id = "stray-near", .phase = Phase::kPending};
  }
  {
    std::lock_guard lock(f.far->mu);
    f.far->boxes["stray-far"] = {.box_id = "stray-far", .phase = Phase::kReady};
    // A lying spoke's id that is no box id: neither logged raw nor acted on.
    f.far->boxes["bad\nid"] = {.box_id = "bad\nid", .phase = Phase::kPending};
  }
  CHECK(f.registry->Reconcile() == std::vector<std::string>{"far/stray-far", "near/stray-near"});
  CHECK(f.near->destroyed == std::vector<std::string>{"stray-near"});
  // A ready box is someone's session: reported, never destroyed behind its user's back.
  CHECK(f.far->destroyed.empty());
}

TEST_CASE("a spoke that cannot be listed is left as it is", "[unreachable]") {
  Fixture f;
  f.Create("alive");
  f.far->list_status = absl::UnavailableError("connection refused");
  CHECK(f.registry->ReconcileSpoke("far").empty());
  CHECK(f.db->GetBox("alive")->phase == Phase::kPending);
  CHECK(f.far->destroyed.empty());
}

TEST_CASE("a gone box is forgotten at once even when its spoke does not answer", "[unreachable]") {
  Fixture f;
  f.Create("vanished");
  {
    std::lock_guard lock(f.far->mu);
    f.far->boxes.erase("vanished");
  }
  f.clock.Advance(1ms);  // a reconcile judges records older than its list
  (void)f.registry->ReconcileSpoke("far");
  REQUIRE(f.db->GetBox("vanished")->phase == Phase::kGone);
  f.far->FailEveryCall(absl::UnavailableError("connection refused"));
  auto destroyed = f.registry->Destroy(kAlice, "vanished");
  REQUIRE(destroyed.ok());
  CHECK(!destroyed->queued);
  CHECK(absl::IsNotFound(f.db->GetBox("vanished").status()));
}

TEST_CASE("the destroy of a box whose spoke an operator removed forgets it", "[unreachable]") {
  Fixture f;
  f.Create("orphan");
  f.spokes.Remove("far");
  auto destroyed = f.registry->Destroy(kAlice, "orphan");
  REQUIRE(destroyed.ok());
  CHECK(!destroyed->queued);
  CHECK(absl::IsNotFound(f.db->GetBox("orphan").status()));
  CHECK(f.far->destroyed.empty());  // no spoke was asked
}

TEST_CASE("a destroy the spoke does not answer is queued and a second one answers queued again",
          "[unreachable][after-merge]") {
  Fixture f;
  f.Create("doomed");
  const std::int64_t asked_ms = f.NowMs();
  f.far->FailEveryCall(absl::DeadlineExceededError("Deadline Exceeded"));
  auto first = f.registry->Destroy(kAlice, "doomed");
  REQUIRE(first.ok());
  CHECK(first->queued);
  CHECK(first->note.find("spoke far did not answer") == 0);
  CHECK(first->note.find("Deadline Exceeded") == std::string::npos);
  CHECK(first->note.find("the destroy is queued") != std::string::npos);
  f.clock.Advance(60s);
  auto second = f.registry->Destroy(kAlice, "doomed");
  REQUIRE(second.ok());
  CHECK(second->queued);
  auto record = f.db->GetBox("doomed");
  REQUIRE(record.ok());
  CHECK(record->destroy_queued_at_ms == asked_ms);  // the first time stays

  // The tools say it was queued, not done, and get_llmbox shows since when.
  BoxTools tools(*f.registry);
  testing::CallerContext alice(kAlice);
  auto destroyed = tools.Call("destroy_llmbox", {{"box_id", "doomed"}}, alice);
  REQUIRE(!destroyed.is_error);
  const nlohmann::json& answer = destroyed.structured;
  CHECK(answer["queued"] == true);
  CHECK(answer["note"].get<std::string>().find("queued") != std::string::npos);
  auto got = tools.Call("get_llmbox", {{"box_id", "doomed"}}, alice);
  REQUIRE(!got.is_error);
  const auto shown = nlohmann::json::parse(got.structured_json);
  CHECK(shown["destroy_queued_at"] == common::FormatUtcSeconds(asked_ms));
  CHECK(shown["spoke_unreachable"].get<std::string>().find("spoke far did not answer") == 0);
}

TEST_CASE("a queued destroy survives a hub restart and completes when its spoke answers",
          "[unreachable][after-merge]") {
  Fixture f;
  f.Create("doomed");
  f.Create("other");
  f.Partition();
  auto queued = f.registry->Destroy(kAlice, "doomed");
  REQUIRE(queued.ok());
  CHECK(queued->queued);
  CHECK(queued->note.find("spoke far is unreachable since ") == 0);
  CHECK(CallsOf(*f.far, "DestroyBox") == 0);  // the monitor knew: no call waited out

  f.Open();  // the hub restarts while the spoke is still cut off
  CHECK(f.db->GetBox("doomed")->destroy_queued_at_ms.has_value());
  f.registry->monitor().Poll();
  CHECK(f.db->GetBox("doomed")->destroy_queued_at_ms.has_value());

  f.Heal();
  f.registry->monitor().Poll();  // the spoke answers again: the return hook reconciles it
  REQUIRE(f.registry->monitor().WaitForReturns(10s));
  CHECK(f.far->destroyed == std::vector<std::string>{"doomed"});
  CHECK(absl::IsNotFound(f.db->GetBox("doomed").status()));
  CHECK(f.db->GetBox("other")->phase == Phase::kPending);
  std::lock_guard lock(f.far->mu);
  CHECK(!f.far->boxes.contains("doomed"));
  CHECK(f.far->boxes.contains("other"));
}

TEST_CASE("a queued destroy completes for a box its spoke no longer has and stays on failure",
          "[unreachable][after-merge]") {
  Fixture f;
  f.Create("vanished");
  f.Create("stubborn");
  f.far->destroy_status = absl::UnavailableError("connection refused");
  for (const char* id : {"vanished", "stubborn"}) {
    auto queued = f.registry->Destroy(kAlice, id);
    REQUIRE(queued.ok());
    REQUIRE(queued->queued);
    f.clock.Advance(1s);
  }
  {
    std::lock_guard lock(f.far->mu);
    f.far->boxes.erase("vanished");
    f.far->destroy_status = absl::InternalError("the engine is busy");
  }
  (void)f.registry->ReconcileSpoke("far");
  CHECK(f.db->GetBox("vanished")->destroy_queued_at_ms.has_value());
  CHECK(f.db->GetBox("stubborn")->destroy_queued_at_ms.has_value());

  f.far->destroy_status = absl::OkStatus();
  f.clock.Advance(30s);  // a refused destroy is tried again after its back-off
  (void)f.registry->ReconcileSpoke("far");
  CHECK(absl::IsNotFound(f.db->GetBox("vanished").status()));  // NotFound on the spoke: done
  CHECK(absl::IsNotFound(f.db->GetBox("stubborn").status()));
  std::lock_guard lock(f.far->mu);
  CHECK(!f.far->boxes.contains("stubborn"));
}

TEST_CASE("while the monitor holds a spoke unreachable the hub answers without calling it",
          "[unreachable][after-merge]") {
  Fixture f;
  f.Create("quiet");
  f.Partition();
  const std::size_t health_calls = CallsOf(*f.far, "Health");
  auto details = f.registry->GetDetails(kAlice, "quiet");
  REQUIRE(details.ok());
  REQUIRE(details->spoke_unreachable.has_value());
  CHECK(details->spoke_unreachable->find("spoke far unreachable since " +
                                         common::FormatUtcSeconds(f.NowMs())) == 0);
  // The transport's words (internal addresses) are the operator's, not the chatbot's.
  CHECK(details->spoke_unreachable->find("failed to connect to all addresses") ==
        std::string::npos);
  CHECK(!details->network.has_value());

  auto exec = f.registry->Exec(kAlice, "quiet", {"ls"}, std::nullopt, nullptr);
  CHECK(absl::IsUnavailable(exec.status()));
  CHECK(exec.status().message().find("spoke \"far\", which is unreachable since") !=
        std::string::npos);
  CHECK(absl::IsUnavailable(f.registry->Logs(kAlice, "quiet", std::nullopt).status()));
  CHECK(
      absl::IsUnavailable(f.registry->SetNetwork(kAlice, "quiet", {.add = {"pypi.org"}}).status()));
  for (const char* method : {"GetBox", "Exec", "GetLogs", "SetBoxNetwork"}) {
    CHECK(CallsOf(*f.far, method) == 0);
  }
  CHECK(CallsOf(*f.far, "Health") == health_calls);

  // A box on a spoke that answers is not affected.
  f.Create("fine", "near");
  auto near = f.registry->GetDetails(kAlice, "fine");
  REQUIRE(near.ok());
  CHECK(!near->spoke_unreachable.has_value());
}

TEST_CASE("reconcile leaves a trial box in flight alone", "[unreachable][after-merge]") {
  Fixture f;
  // The spoke's creates fail until it is degraded; its trial create then meets a reconcile.
  f.registry->monitor().Poll();
  for (int i = 0; i < 5; ++i) {
    f.registry->monitor().RecordCreate("far", CreateOutcome::kSpokeFault, "engine down");
  }
  // What the reconcile returned, and what the spoke was asked to destroy until it returned
  // (the monitor destroys its trial box itself once the create answers).
  std::promise<std::pair<std::vector<std::string>, std::vector<std::string>>> reconciled;
  auto seen = reconciled.get_future();
  std::atomic<bool> met = false;
  f.far->during_create = [&](const cluster::CreateBoxArgs& args) {
    if (args.box_id.starts_with(kTrialBoxPrefix) && !met.exchange(true)) {
      std::vector<std::string> unknown = f.registry->ReconcileSpoke("far");
      std::lock_guard lock(f.far->mu);
      reconciled.set_value({std::move(unknown), f.far->destroyed});
    }
  };
  f.clock.Advance(Options().monitor.trial_backoff_max + 1s);
  f.registry->monitor().Poll();
  REQUIRE(seen.wait_for(10s) == std::future_status::ready);
  const auto [unknown, destroyed] = seen.get();
  CHECK(unknown.empty());
  CHECK(destroyed.empty());
}

TEST_CASE("reconcile leaves the record of a create in flight to that create",
          "[unreachable][after-merge]") {
  Fixture f;
  // The spoke has made the box and the create waits for its answer: the record says creating,
  // and only the create knows the authorize URL it will write.
  std::optional<store::BoxRecord> during;
  f.far->during_create = [&](const cluster::CreateBoxArgs& args) {
    (void)f.registry->ReconcileSpoke("far");
    auto record = f.db->GetBox(args.box_id);
    if (record.ok()) during = *record;
  };
  f.Create("in-flight");
  REQUIRE(during.has_value());
  CHECK(during->phase == store::Phase::kCreating);
  auto record = f.db->GetBox("in-flight");
  REQUIRE(record.ok());
  CHECK(record->phase == store::Phase::kPending);
  CHECK_FALSE(record->authorize_url.empty());
  std::lock_guard lock(f.far->mu);
  CHECK(f.far->destroyed.empty());
}

TEST_CASE(
    "a box whose create finished while its spoke's list was on its way is neither marked gone "
    "nor set back",
    "[unreachable][after-merge]") {
  Fixture f;
  f.Create("older");
  f.clock.Advance(1s);
  bool once = false;
  f.far->during_list = [&] {
    if (std::exchange(once, true)) return;
    // Made while the list (which lacks it) travels to the hub.
    f.Create("newer");
  };
  CHECK(f.registry->ReconcileSpoke("far").empty());
  auto newer = f.db->GetBox("newer");
  REQUIRE(newer.ok());
  CHECK(newer->phase == store::Phase::kPending);
  CHECK_FALSE(newer->authorize_url.empty());
  CHECK(f.db->GetBox("older")->phase == store::Phase::kPending);
  // The next reconcile's list has it, and leaves it as it is.
  f.clock.Advance(1s);
  CHECK(f.registry->ReconcileSpoke("far").empty());
  CHECK(f.db->GetBox("newer")->phase == store::Phase::kPending);
}

TEST_CASE("a spoke draining with destroy_pending has its pending boxes destroyed by reconcile",
          "[unreachable][after-merge]") {
  Fixture f;
  f.Create("pending-one");
  f.Create("pending-two");
  f.Create("elsewhere", "near");
  REQUIRE(f.db->SetSpokeAdmin({.name = "far",
                               .state = store::SpokeAdminState::kDraining,
                               .since_ms = f.NowMs(),
                               .destroy_pending = true})
              .ok());
  f.registry->monitor().Poll();
  (void)f.registry->Reconcile();
  CHECK(absl::IsNotFound(f.db->GetBox("pending-one").status()));
  CHECK(absl::IsNotFound(f.db->GetBox("pending-two").status()));
  CHECK(f.db->GetBox("elsewhere").ok());
  CHECK(f.near->destroyed.empty());
}

}  // namespace
}  // namespace llmbox::hub::boxes
