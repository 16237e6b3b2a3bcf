// What the BoxRegistry asks of its spokes, over an in-memory SpokeClient: each call's
// arguments and the timeout RegistryOptions names for it, and how it words what the spoke
// answers. (registry_test.cc runs the registry over the real gRPC client.)
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using Timeouts = std::vector<std::chrono::milliseconds>;

const auth::Principal kAlice = auth::Principal::ApiKey("alice", /*admin=*/false);

RegistryOptions Options() {
  return {.public_url = "https://hub.example.com",
          .create_timeout = 100s,
          .call_timeout = 7s,
          .submit_timeout = 30s,
          .default_exec_timeout = 20s,
          .max_exec_output_bytes = 1000,
          .default_log_lines = 50,
          .max_log_bytes = 2000};
}

struct Fixture {
  Fixture() : dir("registry-calls") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", spoke, true);
    registry = std::make_unique<BoxRegistry>(*db, spokes, clock, Options());
  }

  // Creates a box; returns its activation token.
  std::string Create(const std::string& id) {
    auto created = registry->Create({.box_id = id, .owner = kAlice}, nullptr);
    REQUIRE(created.ok());
    return created->auth_url.substr(created->auth_url.rfind('/') + 1);
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  std::shared_ptr<testing::FakeSpokeClient> spoke = std::make_shared<testing::FakeSpokeClient>();
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
};

TEST_CASE(
    "a create asks the spoke within create_timeout and undoes a lost one within "
    "call_timeout",
    "[registry]") {
  Fixture f;
  f.Create("demo");
  CHECK(f.spoke->Timeouts("CreateBox") == Timeouts{100s});
  REQUIRE(f.spoke->creates.size() == 1);
  CHECK(f.spoke->creates[0].box_id == "demo");
  CHECK(f.spoke->creates[0].owner == "alice");
  CHECK(f.spoke->creates[0].image.empty());

  f.spoke->create_status = absl::DeadlineExceededError("Deadline Exceeded");
  auto lost = f.registry->Create({.box_id = "lost"}, nullptr);
  CHECK(absl::IsDeadlineExceeded(lost.status()));
  CHECK(lost.status().message() == "spoke \"local\" did not answer in time");
  CHECK(f.spoke->destroyed == std::vector<std::string>{"lost"});
  CHECK(f.spoke->Timeouts("DestroyBox") == Timeouts{7s});
  CHECK(absl::IsNotFound(f.db->GetBox("lost").status()));
}

TEST_CASE("destroy, logs and reconcile ask the spoke within call_timeout", "[registry]") {
  Fixture f;
  f.Create("demo");
  f.spoke->logs = {.logs = "hello\n", .truncated = true};
  auto logs = f.registry->Logs(kAlice, "demo", std::nullopt);
  REQUIRE(logs.ok());
  CHECK(logs->logs == "hello\n");
  CHECK(logs->truncated);
  REQUIRE(f.spoke->logs_asked.size() == 1);
  CHECK(f.spoke->logs_asked[0].box_id == "demo");
  CHECK(f.spoke->logs_asked[0].tail_lines == 50);
  CHECK(f.spoke->logs_asked[0].max_bytes == 2000);
  CHECK(f.spoke->Timeouts("GetLogs") == Timeouts{7s});

  CHECK(f.registry->Reconcile().empty());
  // The monitor's return hook may list the spoke too: each list within call_timeout.
  const Timeouts lists = f.spoke->Timeouts("ListBoxes");
  CHECK(!lists.empty());
  for (const auto timeout : lists) CHECK(timeout == 7s);

  REQUIRE(f.registry->Destroy(kAlice, "demo").ok());
  CHECK(f.spoke->Timeouts("DestroyBox") == Timeouts{7s});
}

TEST_CASE("an exec gives the spoke its limit and waits that long plus 15 s", "[registry]") {
  Fixture f;
  f.Create("demo");
  f.spoke->exec_output = {.exit_code = 2,
                          .stdout_text = "out",
                          .stderr_text = "err",
                          .stdout_truncated = false,
                          .stderr_truncated = true,
                          .timed_out = true};
  auto ran = f.registry->Exec(kAlice, "demo", {"ls", "-la"}, std::nullopt, nullptr);
  REQUIRE(ran.ok());
  CHECK(ran->exit_code == 2);
  CHECK(ran->stdout_text == "out");
  CHECK(ran->stderr_text == "err");
  CHECK(ran->truncated);
  CHECK(ran->timed_out);
  REQUIRE(f.registry->Exec(kAlice, "demo", {"true"}, 5s, nullptr).ok());
  CHECK(f.spoke->Timeouts("Exec") == Timeouts{35s, 20s});
  REQUIRE(f.spoke->execs.size() == 2);
  CHECK(f.spoke->execs[0].argv == std::vector<std::string>{"ls", "-la"});
  CHECK(f.spoke->execs[0].timeout == 20s);
  CHECK(f.spoke->execs[0].max_output_bytes == 1000);
  CHECK(f.spoke->execs[1].timeout == 5s);
}

TEST_CASE("an exec the client cancels ends Cancelled in the registry's words", "[registry]") {
  Fixture f;
  f.Create("demo");
  auto ran = f.registry->Exec(kAlice, "demo", {"sleep", "60"}, std::nullopt,
                              [](std::function<void()> cancel) { cancel(); });
  CHECK(absl::IsCancelled(ran.status()));
  CHECK(ran.status().message() == "exec cancelled by the client");
}

TEST_CASE("a code goes to the spoke with submit_timeout, and the call waits 15 s longer",
          "[registry]") {
  Fixture f;
  const std::string token = f.Create("demo");
  f.spoke->submit_outcome = {.activated = true, .session_url = "https://claude.ai/code/s_1"};
  auto submitted = f.registry->SubmitCode(token, "abc#def");
  REQUIRE(submitted.ok());
  CHECK(submitted->activated);
  CHECK(submitted->session_url == "https://claude.ai/code/s_1");
  REQUIRE(f.spoke->submissions.size() == 1);
  CHECK(f.spoke->submissions[0].box_id == "demo");
  CHECK(f.spoke->submissions[0].code == "abc#def");
  CHECK(f.spoke->submissions[0].timeout == 30s);
  CHECK(f.spoke->Timeouts("SubmitCode") == Timeouts{45s});
}

TEST_CASE("a spoke that cannot be reached is named in the error and keeps its words",
          "[registry]") {
  Fixture f;
  const std::string token = f.Create("demo");
  f.spoke->submit_status = absl::UnavailableError("connection refused");
  auto submitted = f.registry->SubmitCode(token, "abc#def");
  CHECK(absl::IsUnavailable(submitted.status()));
  CHECK(submitted.status().message() == "spoke \"local\" cannot be reached: connection refused");
  auto record = f.db->GetBox("demo");
  REQUIRE(record.ok());
  CHECK(record->phase == store::Phase::kPending);
  CHECK(record->last_error == "spoke \"local\" cannot be reached: connection refused");
  f.spoke->logs_status = absl::NotFoundError("no box \"demo\" on this spoke");
  auto logs = f.registry->Logs(kAlice, "demo", 10);
  CHECK(absl::IsNotFound(logs.status()));
  CHECK(logs.status().message() == "no box \"demo\" on this spoke");
}

TEST_CASE("placement asks every spoke's health within the monitor's health_timeout", "[registry]") {
  Fixture f;
  auto other = std::make_shared<testing::FakeSpokeClient>();
  other->health.max_boxes = 50;
  f.spokes.Add("other", other, false);
  auto created = f.registry->Create({.box_id = "placed"}, nullptr);
  REQUIRE(created.ok());
  CHECK(created->record.spoke == "other");
  CHECK(f.spoke->Timeouts("Health") == Timeouts{3s});
  CHECK(other->Timeouts("Health") == Timeouts{3s});
}

}  // namespace
}  // namespace llmbox::hub::boxes
