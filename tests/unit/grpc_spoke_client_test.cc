// The hub's gRPC SpokeClient against a fake spoke service on a real in-process gRPC server:
// every call carries the hub's fields to the proto and back, runs under the deadline it was
// given, and keeps the spoke's error code and message.
#include "hub/cluster/grpc_spoke_client.h"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/fakes/fake_box_service.h"

namespace llmbox::hub::cluster {
namespace {

using namespace std::chrono_literals;
using store::Phase;

struct Fixture {
  testing::FakeBoxService spoke;
  std::shared_ptr<SpokeClient> client = MakeGrpcSpokeClient(spoke.Channel());

  // How far ahead of now the deadline of `method`'s last call was.
  std::chrono::milliseconds DeadlineAhead(const std::string& method) {
    std::lock_guard lock(spoke.mu);
    auto it = spoke.deadlines.find(method);
    REQUIRE(it != spoke.deadlines.end());
    return std::chrono::duration_cast<std::chrono::milliseconds>(it->second -
                                                                 std::chrono::system_clock::now());
  }
};

// The deadline a call ran under was the timeout it was given, less the time it took. (gRPC
// sends the timeout rounded up to its wire units, so the spoke may see a little more.)
void CheckDeadline(std::chrono::milliseconds ahead, std::chrono::milliseconds timeout) {
  CHECK(ahead <= timeout + 1s);
  CHECK(ahead > timeout - 5s);
}

TEST_CASE("a create carries the hub's request to the spoke and its box back", "[spoke_client]") {
  Fixture f;
  auto created = f.client->CreateBox(
      {.box_id = "demo", .image = "custom:1", .description = "a box", .owner = "alice"}, 180s);
  REQUIRE(created.ok());
  {
    std::lock_guard lock(f.spoke.mu);
    CHECK(f.spoke.last_create.box_id() == "demo");
    CHECK(f.spoke.last_create.image() == "custom:1");
    CHECK(f.spoke.last_create.description() == "a box");
    CHECK(f.spoke.last_create.owner() == "alice");
  }
  CHECK(created->box.box_id == "demo");
  CHECK(created->box.container_id == "c0ffeedemo");
  CHECK(created->box.phase == Phase::kPending);
  CHECK(created->box.image == "custom:1");
  CHECK(created->box.expires_at.time_since_epoch() == 4'000'000'000'000ms);
  CHECK(created->authorize_url == "https://claude.ai/oauth/authorize?fake=1");
  CheckDeadline(f.DeadlineAhead("CreateBox"), 180s);
}

TEST_CASE("a listed box's phase, session, error and expiry come back in the hub's terms",
          "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    auto add = [&](const std::string& id, v1::BoxPhase phase) -> v1::Box& {
      v1::Box& box = f.spoke.boxes[id];
      box.set_box_id(id);
      box.set_phase(phase);
      return box;
    };
    add("a-creating", v1::BOX_PHASE_CREATING);
    add("b-pending", v1::BOX_PHASE_PENDING).mutable_expires_at()->set_seconds(12);
    f.spoke.boxes["b-pending"].mutable_expires_at()->set_nanos(345'678'901);
    add("c-activating", v1::BOX_PHASE_ACTIVATING);
    v1::Box& ready = add("d-ready", v1::BOX_PHASE_READY);
    ready.set_session_url("https://claude.ai/code/session_1");
    ready.set_container_id("cid");
    ready.set_image("llmbox-box:dev");
    add("e-error", v1::BOX_PHASE_ERROR).set_last_error("the container stopped");
    add("f-destroyed", v1::BOX_PHASE_DESTROYED);
    add("g-unspecified", v1::BOX_PHASE_UNSPECIFIED);
  }
  auto listed = f.client->ListBoxes(15s);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 7);
  const std::vector<SpokeBox>& boxes = *listed;
  CHECK(boxes[0].phase == Phase::kCreating);
  CHECK(boxes[1].phase == Phase::kPending);
  CHECK(boxes[1].expires_at.time_since_epoch() == 12'345ms);
  CHECK(boxes[2].phase == Phase::kActivating);
  CHECK(boxes[3].phase == Phase::kReady);
  CHECK(boxes[3].box_id == "d-ready");
  CHECK(boxes[3].session_url == "https://claude.ai/code/session_1");
  CHECK(boxes[3].container_id == "cid");
  CHECK(boxes[3].image == "llmbox-box:dev");
  CHECK(boxes[3].expires_at.time_since_epoch() == 0ms);
  CHECK(boxes[4].phase == Phase::kError);
  CHECK(boxes[4].last_error == "the container stopped");
  CHECK(boxes[5].phase == Phase::kGone);
  CHECK(boxes[6].phase == Phase::kError);
  CheckDeadline(f.DeadlineAhead("ListBoxes"), 15s);
}

TEST_CASE("a spoke's error keeps its code and its words through every call", "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.create_status =
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "spoke local is full (20 boxes)");
    f.spoke.list_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "engine down");
    f.spoke.logs_status = grpc::Status(grpc::StatusCode::NOT_FOUND, "no box \"x\"");
    f.spoke.exec_status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "argv is empty");
    f.spoke.submit_status =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "box \"x\" is not pending");
    f.spoke.health_status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the hub");
  }
  auto created = f.client->CreateBox({.box_id = "x"}, 1s);
  CHECK(absl::IsResourceExhausted(created.status()));
  CHECK(created.status().message() == "spoke local is full (20 boxes)");
  auto listed = f.client->ListBoxes(1s);
  CHECK(absl::IsUnavailable(listed.status()));
  CHECK(listed.status().message() == "engine down");
  auto logs = f.client->GetLogs({.box_id = "x"}, 1s);
  CHECK(absl::IsNotFound(logs.status()));
  CHECK(logs.status().message() == "no box \"x\"");
  auto ran = f.client->Exec({.box_id = "x"}, 1s, nullptr);
  CHECK(absl::IsInvalidArgument(ran.status()));
  CHECK(ran.status().message() == "argv is empty");
  auto submitted = f.client->SubmitCode({.box_id = "x", .code = "c#s"}, 1s);
  CHECK(absl::IsFailedPrecondition(submitted.status()));
  CHECK(submitted.status().message() == "box \"x\" is not pending");
  auto health = f.client->Health(1s);
  CHECK(absl::IsPermissionDenied(health.status()));
  CHECK(health.status().message() == "not the hub");
  // The fake answers NotFound for a box it does not have.
  absl::Status destroyed = f.client->DestroyBox("x", 1s);
  CHECK(absl::IsNotFound(destroyed));
  CHECK(destroyed.message() == "no such box");
}

TEST_CASE("a destroy names the box and runs under its timeout", "[spoke_client]") {
  Fixture f;
  REQUIRE(f.client->CreateBox({.box_id = "gone-soon"}, 5s).ok());
  CHECK(f.client->DestroyBox("gone-soon", 15s).ok());
  CheckDeadline(f.DeadlineAhead("DestroyBox"), 15s);
  std::lock_guard lock(f.spoke.mu);
  CHECK(f.spoke.destroyed == std::vector<std::string>{"gone-soon"});
  CHECK(f.spoke.boxes.empty());
}

TEST_CASE("a logs call carries its bounds and brings back the text and whether it was cut",
          "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.logs_response.set_logs("line 1\nline 2\n");
    f.spoke.logs_response.set_truncated(true);
  }
  auto logs = f.client->GetLogs({.box_id = "demo", .tail_lines = 200, .max_bytes = 65536}, 15s);
  REQUIRE(logs.ok());
  CHECK(logs->logs == "line 1\nline 2\n");
  CHECK(logs->truncated);
  {
    std::lock_guard lock(f.spoke.mu);
    CHECK(f.spoke.last_logs.box_id() == "demo");
    CHECK(f.spoke.last_logs.tail_lines() == 200);
    CHECK(f.spoke.last_logs.max_bytes() == 65536);
  }
  CheckDeadline(f.DeadlineAhead("GetLogs"), 15s);
}

TEST_CASE("an exec carries argv, the spoke's limit and the output cap, and brings back the result",
          "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.exec_response.set_exit_code(3);
    f.spoke.exec_response.set_stdout(std::string("out\0put", 7));
    f.spoke.exec_response.set_stderr("err");
    f.spoke.exec_response.set_stderr_truncated(true);
    f.spoke.exec_response.set_timed_out(true);
  }
  auto ran = f.client->Exec({.box_id = "demo",
                             .argv = {"/bin/sh", "-c", "echo hi"},
                             .timeout = 61'500ms,
                             .max_output_bytes = 1024},
                            75s, nullptr);
  REQUIRE(ran.ok());
  CHECK(ran->exit_code == 3);
  CHECK(ran->stdout_text == std::string("out\0put", 7));
  CHECK(ran->stderr_text == "err");
  CHECK_FALSE(ran->stdout_truncated);
  CHECK(ran->stderr_truncated);
  CHECK(ran->timed_out);
  {
    std::lock_guard lock(f.spoke.mu);
    const v1::ExecRequest& request = f.spoke.last_exec;
    CHECK(request.box_id() == "demo");
    CHECK(std::vector<std::string>(request.argv().begin(), request.argv().end()) ==
          std::vector<std::string>{"/bin/sh", "-c", "echo hi"});
    CHECK(request.timeout().seconds() == 61);
    CHECK(request.timeout().nanos() == 500'000'000);
    CHECK(request.max_output_bytes() == 1024);
    CHECK(request.identity() == v1::EXEC_AS_USER);  // the hub never asks for more
  }
  CheckDeadline(f.DeadlineAhead("Exec"), 75s);
}

TEST_CASE("an exec cancelled through its hook ends Cancelled", "[spoke_client]") {
  Fixture f;
  bool hooked = false;
  auto ran = f.client->Exec({.box_id = "demo", .argv = {"sleep", "100"}, .timeout = 100s}, 115s,
                            [&](std::function<void()> cancel) {
                              hooked = true;
                              cancel();  // before the call starts: it never reaches the spoke
                            });
  CHECK(hooked);
  CHECK(absl::IsCancelled(ran.status()));
}

TEST_CASE("a code submission carries the code and the spoke's wait, and brings back the outcome",
          "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.submit_response.set_activated(false);
    f.spoke.submit_response.set_box_error("Couldn't log in: bad code");
    f.spoke.submit_response.set_authorize_url("https://claude.ai/oauth/authorize?again=1");
    f.spoke.submit_response.set_attempts_remaining(2);
  }
  auto refused = f.client->SubmitCode({.box_id = "demo", .code = "abc#def", .timeout = 90s}, 105s);
  REQUIRE(refused.ok());
  CHECK_FALSE(refused->activated);
  CHECK(refused->box_error == "Couldn't log in: bad code");
  CHECK(refused->authorize_url == "https://claude.ai/oauth/authorize?again=1");
  CHECK(refused->attempts_remaining == 2);
  CHECK(refused->session_url.empty());
  {
    std::lock_guard lock(f.spoke.mu);
    CHECK(f.spoke.last_submit.box_id() == "demo");
    CHECK(f.spoke.last_submit.code() == "abc#def");
    CHECK(f.spoke.last_submit.timeout().seconds() == 90);
    CHECK(f.spoke.last_submit.timeout().nanos() == 0);
    f.spoke.submit_response = v1::SubmitCodeResponse();
    f.spoke.submit_response.set_activated(true);
    f.spoke.submit_response.set_session_url("https://claude.ai/code/session_2");
  }
  CheckDeadline(f.DeadlineAhead("SubmitCode"), 105s);
  auto activated =
      f.client->SubmitCode({.box_id = "demo", .code = "ghi#jkl", .timeout = 90s}, 105s);
  REQUIRE(activated.ok());
  CHECK(activated->activated);
  CHECK(activated->session_url == "https://claude.ai/code/session_2");
  CHECK(activated->box_error.empty());
}

TEST_CASE("health brings back capacity by phase, the engine and the images", "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    v1::HealthResponse health;
    health.set_spoke_name("worker-1");
    health.mutable_capacity()->set_max_boxes(20);
    health.mutable_capacity()->set_creating(1);
    health.mutable_capacity()->set_pending(2);
    health.mutable_capacity()->set_ready(3);
    health.mutable_capacity()->set_error(4);
    health.mutable_engine()->set_reachable(false);
    health.mutable_engine()->set_error("cannot connect to the socket");
    health.add_allowed_images("llmbox-box:dev");
    health.add_allowed_images("custom:1");
    f.spoke.health_response = health;
  }
  auto health = f.client->Health(2s);
  REQUIRE(health.ok());
  CHECK(health->spoke_name == "worker-1");
  CHECK(health->max_boxes == 20);
  CHECK(health->creating == 1);
  CHECK(health->pending == 2);
  CHECK(health->ready == 3);
  CHECK(health->error == 4);
  CHECK(health->Boxes() == 10);
  CHECK_FALSE(health->engine_reachable);
  CHECK(health->engine_error == "cannot connect to the socket");
  CHECK(health->allowed_images == std::vector<std::string>{"llmbox-box:dev", "custom:1"});
  CheckDeadline(f.DeadlineAhead("Health"), 2s);
}

// cfg (issue 18): why a spoke cannot create, in its own words.
TEST_CASE("a spoke's reason it cannot create comes back bounded and redacted", "[spoke_client]") {
  Fixture f;
  {
    std::lock_guard lock(f.spoke.mu);
    v1::HealthResponse health;
    health.mutable_engine()->set_reachable(true);
    health.set_cannot_create("image missing; key sk-ant-api03-AbC_dEf-123 " +
                             std::string(1 << 20, 'x'));
    f.spoke.health_response = health;
  }
  auto health = f.client->Health(2s);
  REQUIRE(health.ok());
  CHECK(health->cannot_create.rfind("image missing; key [REDACTED] xxx", 0) == 0);
  CHECK(health->cannot_create.size() <= 2048);
  CHECK(health->cannot_create.find("sk-ant") == std::string::npos);
}

TEST_CASE("a spoke that does not answer within the timeout is DeadlineExceeded", "[spoke_client]") {
  Fixture f;
  // The spoke stays silent until the client has given up (no sleep: the call's own deadline
  // is what ends it).
  std::promise<void> gave_up;
  std::shared_future<void> released = gave_up.get_future().share();
  {
    std::lock_guard lock(f.spoke.mu);
    f.spoke.on_health = [released] { released.wait(); };
  }
  auto health = f.client->Health(1ms);
  gave_up.set_value();
  INFO(health.status().ToString());
  CHECK(absl::IsDeadlineExceeded(health.status()));
}

}  // namespace
}  // namespace llmbox::hub::cluster
