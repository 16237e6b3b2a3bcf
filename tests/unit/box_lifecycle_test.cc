// A box's whole life in BoxManager, on the scripted fake engine and a FakeClock: create and
// its rollback at every step, capacity, code submission, restarts and destroy. Milliseconds
// each; nothing sleeps (deadlines pass when the test advances the clock). What only a real
// engine can show stays in tests/integration/box_manager_test.cc.

#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "spoke/box/manager.h"
#include "spoke/docker/engine_wrapper.h"
#include "spoke/hooks/hook_runner.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/fakes/fake_subprocess_runner.h"
#include "tests/fakes/faulty_docker_engine.h"
#include "tests/fakes/scripted_console.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

using namespace std::chrono_literals;

constexpr char kImage[] = "llmbox-box:dev";
constexpr char kShortRecording[] = "claude-2.1.330-auth-login-bad-code.tty";
constexpr char kLongRecording[] = "claude-2.1.328-auth-login-bad-code.tty";
constexpr char kOfflineError[] = "Couldn't log in: getaddrinfo ENOTFOUND platform.claude.com";
// What the create hook answers: a file to inject and a state for the destroy hook.
constexpr char kCreateHookReply[] =
    R"({"version":1,"files":[{"path":"/root/.config/tool/token","mode":384,"content":"tok-1"}],)"
    R"("state":{"account":"acct-9"}})";

// One spoke's world: a fake clock, the scripted engine (behind a fault injector), hooks on a
// fake runner, and a state dir.
struct Lifecycle {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  testing::FaultyDockerEngine faulty{engine};
  testing::FakeSubprocessRunner runner;
  testing::ScratchDir scratch{"lifecycle"};
  std::unique_ptr<hooks::HookRunner> hook_runner;
  std::unique_ptr<BoxManager> boxes;

  Lifecycle() { engine.AddImage(kImage); }

  BoxManagerOptions Options() const {
    BoxManagerOptions options;
    options.spoke_name = "unit";
    options.default_image = kImage;
    options.state_dir = StateDir().string();
    return options;
  }
  std::filesystem::path StateDir() const { return scratch.path() / "state"; }

  // Hooks: "account" (box.create) injects a file and keeps a state, "cleanup" (box.destroy).
  void WithHooks() {
    runner.Answer("create-hook", kCreateHookReply);
    runner.Answer("destroy-hook", "");
    hook_runner = std::make_unique<hooks::HookRunner>(
        runner, std::vector<hooks::HookSpec>{
                    {.name = "account", .event = "box.create", .command = {"create-hook"}},
                    {.name = "cleanup", .event = "box.destroy", .command = {"destroy-hook"}}});
  }

  // A (new) manager over the fault injector: a spoke (re)start.
  BoxManager& Start(BoxManagerOptions options) {
    boxes.reset();
    boxes = std::make_unique<BoxManager>(faulty, clock, std::move(options), hook_runner.get());
    return *boxes;
  }
  BoxManager& Start() { return Start(Options()); }

  size_t Containers(const std::string& box_id) {
    auto list = engine.ListContainers({{BoxManager::kBoxIdLabel, box_id}});
    REQUIRE(list.ok());
    return list->size();
  }
  size_t Networks(const std::string& box_id) {
    auto list = engine.ListNetworks({{BoxManager::kBoxIdLabel, box_id}});
    REQUIRE(list.ok());
    return list->size();
  }
  bool HasHookState(const std::string& box_id) const {
    return std::filesystem::exists(StateDir() / "hook-state" / (box_id + ".json"));
  }
  // What the destroy hook was given, one request per run.
  std::vector<std::string> DestroyHookRuns() { return runner.StdinOf("destroy-hook"); }
  std::shared_ptr<testing::ScriptedConsole> Console(const std::string& box_id) {
    auto console = engine.ConsoleOf("llmbox-pending-" + box_id);
    if (console == nullptr) console = engine.ConsoleOf("llmbox-" + box_id);
    REQUIRE(console != nullptr);
    return console;
  }
};

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

std::optional<BoxView> Listed(BoxManager& boxes, const std::string& box_id) {
  auto listed = boxes.List();
  REQUIRE(listed.ok());
  for (const auto& box : *listed) {
    if (box.box_id == box_id) return box;
  }
  return std::nullopt;
}

// --- create ---------------------------------------------------------------------------------

TEST_CASE("a box is created with the recorded authorize URL on a hardened pending container",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1", .description = "scripted", .owner = "tests"});
  REQUIRE(created.ok());
  CHECK(created->authorize_url ==
        testing::RecordedAuthorizeUrl(testing::ReadRecording(kShortRecording)));
  CHECK(created->authorize_url.rfind("https://claude.ai/oauth/authorize?z-", 0) == 0);
  CHECK(created->box.phase == BoxPhase::kPending);
  CHECK(created->box.container_name == "llmbox-pending-b1");
  CHECK(created->box.description == "scripted");
  CHECK(created->box.owner == "tests");
  CHECK(created->box.image == kImage);
  CHECK(created->box.created == world.clock.Now());
  CHECK(world.Networks("b1") == 1);
  CHECK(world.HasHookState("b1"));

  auto spec = world.engine.SpecOf("llmbox-pending-b1");
  REQUIRE(spec.has_value());
  CHECK(spec->image == kImage);
  CHECK(spec->entrypoint == std::vector<std::string>{"/bin/sh", "/usr/local/lib/llmbox/entrypoint",
                                                     "b1", "--spawn", "same-dir"});
  CHECK(spec->cap_drop == std::vector<std::string>{"ALL"});
  CHECK(spec->cap_add == std::vector<std::string>{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
                                                  "KILL", "SETGID", "SETUID"});
  CHECK(spec->security_opt == std::vector<std::string>{"no-new-privileges"});
  CHECK(spec->network_mode == "llmbox-net-b1");
  CHECK(spec->user == "0:0");
  CHECK(spec->working_dir == "/workspace");
  CHECK(spec->tty);
  CHECK(spec->open_stdin);
  CHECK(spec->binds.empty());  // no claude_bin: the image's own
  CHECK(spec->labels.at(BoxManager::kSpokeLabel) == "unit");
  CHECK(spec->labels.at(BoxManager::kOwnerLabel) == "tests");

  // The entrypoint, the trust seed and the hook's file, in one archive at the root.
  const auto archives = world.engine.ArchivesOf("llmbox-pending-b1");
  REQUIRE(archives.size() == 1);
  CHECK(archives[0].path == "/");
  CHECK(Contains(archives[0].tar, "usr/local/lib/llmbox/entrypoint"));
  CHECK(Contains(archives[0].tar, "hasTrustDialogAccepted"));
  CHECK(Contains(archives[0].tar, "root/.config/tool/token"));
  CHECK(Contains(archives[0].tar, "tok-1"));

  // The console is attached before the box starts, so that nothing it prints is lost.
  const auto calls = world.engine.Calls();
  const auto attach = std::find(calls.begin(), calls.end(), "Attach");
  const auto start = std::find(calls.begin(), calls.end(), "StartContainer");
  CHECK(attach < start);
  CHECK(start != calls.end());
}

TEST_CASE("the long authorize URL form of Claude 2.1.328 is captured too", "[lifecycle]") {
  Lifecycle world;
  world.engine.SetConsoleScript({.recording = kLongRecording});
  BoxManagerOptions options = world.Options();
  options.claude_bin = "/opt/claude/bin/claude";
  BoxManager& boxes = world.Start(options);
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  CHECK(created->authorize_url ==
        testing::RecordedAuthorizeUrl(testing::ReadRecording(kLongRecording)));
  CHECK(created->authorize_url.rfind("https://claude.com/cai/oauth/authorize?code=true&", 0) == 0);
  auto spec = world.engine.SpecOf("llmbox-pending-b1");
  REQUIRE(spec.has_value());
  CHECK(spec->binds == std::vector<std::string>{"/opt/claude/bin/claude:/usr/local/bin/claude:ro"});
}

TEST_CASE("a failure at any engine step of a create leaves nothing behind and undoes its hooks",
          "[lifecycle]") {
  const std::pair<const char*, const char*> steps[] = {
      {"CreateNetwork", "creating its network"}, {"CreateContainer", "creating its container"},
      {"ConnectNetwork", "connecting peer db"},  {"PutArchive", "injecting its files"},
      {"Attach", "attaching to its console"},    {"StartContainer", "starting it"},
      {"InspectContainer", "reading it back"},
  };
  for (const auto& [method, step] : steps) {
    INFO(method);
    Lifecycle world;
    world.WithHooks();
    world.engine.AddContainer({.id = "db-id", .name = "db", .state = "running", .running = true});
    BoxManagerOptions options = world.Options();
    options.allowed_peers = {"db"};
    BoxManager& boxes = world.Start(options);
    world.faulty.FailAt(method);
    auto created = boxes.Create({.box_id = "b1", .peers = {"db"}});
    REQUIRE_FALSE(created.ok());
    CHECK_FALSE(world.faulty.Armed());
    CHECK(absl::IsUnavailable(created.status()));
    CHECK(created.status().message() ==
          std::string("box b1: ") + step + ": injected fault in " + method);
    CHECK(world.Containers("b1") == 0);
    CHECK(world.Networks("b1") == 0);
    CHECK(world.engine.ContainerIds() == std::vector<std::string>{"db-id"});
    CHECK(world.engine.NetworkNames().empty());
    // The destroy hooks ran with the state the create hooks returned, and it is forgotten.
    const auto undone = world.DestroyHookRuns();
    REQUIRE(undone.size() == 1);
    CHECK(Contains(undone[0], R"("account":{"account":"acct-9"})"));
    CHECK_FALSE(world.HasHookState("b1"));
    // The id is free again: nothing in flight, and a retry succeeds.
    CHECK_FALSE(boxes.IsBeingCreated("b1"));
    CHECK(absl::IsNotFound(boxes.Get("b1").status()));
    CHECK(boxes.Create({.box_id = "b1", .peers = {"db"}}).ok());
  }
}

TEST_CASE("a create whose first engine call fails runs no hook and leaves nothing", "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManager& boxes = world.Start();
  world.faulty.FailAt("ListContainers");
  auto created = boxes.Create({.box_id = "b1"});
  CHECK(absl::IsUnavailable(created.status()));
  CHECK(created.status().message() ==
        "box b1: listing the engine's boxes: injected fault in ListContainers");
  CHECK(world.runner.StdinOf("create-hook").empty());
  CHECK(world.DestroyHookRuns().empty());
  CHECK(world.engine.NetworkNames().empty());
  CHECK_FALSE(boxes.IsBeingCreated("b1"));
}

TEST_CASE("a failed console resize does not fail the create", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  world.faulty.FailAt("ResizeTty");
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  CHECK_FALSE(world.faulty.Armed());
  CHECK(created->box.phase == BoxPhase::kPending);
}

TEST_CASE("an allowed image the engine lacks is pulled once, and a failed pull leaves nothing",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManagerOptions options = world.Options();
  options.allowed_images = {"extra:1"};
  BoxManager& boxes = world.Start(options);

  auto refused = boxes.Create({.box_id = "b1", .image = "extra:1"});
  REQUIRE_FALSE(refused.ok());
  CHECK(absl::IsNotFound(refused.status()));
  CHECK(refused.status().message().rfind("box b1: pulling its image extra:1: pull access denied",
                                         0) == 0);
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
  CHECK(world.DestroyHookRuns().size() == 1);
  CHECK_FALSE(world.HasHookState("b1"));

  world.engine.AddPullableImage("extra:1");
  world.faulty.FailAt("PullImage");
  auto faulted = boxes.Create({.box_id = "b1", .image = "extra:1"});
  CHECK(faulted.status().message() ==
        "box b1: pulling its image extra:1: injected fault in PullImage");
  CHECK(world.Networks("b1") == 0);

  auto pulled = boxes.Create({.box_id = "b1", .image = "extra:1"});
  REQUIRE(pulled.ok());
  CHECK(pulled->box.image == "extra:1");
  CHECK(world.engine.HasImage("extra:1"));
  const auto calls = world.engine.Calls();
  CHECK(std::count(calls.begin(), calls.end(), "PullImage") == 2);
}

TEST_CASE("a failing create hook is named, touches no engine object and undoes what ran",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  world.runner.Answer("create-hook", "some-secret", /*exit_code=*/2);
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  CHECK(absl::IsFailedPrecondition(created.status()));
  CHECK(created.status().message() ==
        "box b1: running its box.create hooks: hook account (box.create, create-hook): exited "
        "with status 2");
  CHECK_FALSE(Contains(std::string(created.status().message()), "some-secret"));
  CHECK_FALSE(Contains(world.engine.Calls(), "CreateNetwork"));
  CHECK(world.engine.NetworkNames().empty());
  // HookRunner undoes the create hooks that ran (none kept a state).
  const auto undone = world.DestroyHookRuns();
  REQUIRE(undone.size() == 1);
  CHECK(Contains(undone[0], R"("state":{})"));
  CHECK_FALSE(world.HasHookState("b1"));
  CHECK_FALSE(boxes.IsBeingCreated("b1"));
}

TEST_CASE("a hook state that cannot be saved undoes the hooks before any engine step",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManagerOptions options = world.Options();
  options.state_dir = world.scratch.Write("not-a-dir", "");
  BoxManager& boxes = world.Start(options);
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE_FALSE(created.ok());
  CHECK(absl::IsInternal(created.status()));
  CHECK(created.status().message().rfind(
            "box b1: saving its hook state: spoke state: cannot create ", 0) == 0);
  const auto undone = world.DestroyHookRuns();
  REQUIRE(undone.size() == 1);
  CHECK(Contains(undone[0], R"("account":{"account":"acct-9"})"));
  CHECK(world.engine.NetworkNames().empty());
  CHECK(world.engine.ContainerIds().empty());
}

TEST_CASE(
    "a box that prints no authorize URL within url_timeout is reported creating, then removed",
    "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kSilent});
  BoxManagerOptions options = world.Options();
  options.url_timeout = 30s;
  BoxManager& boxes = world.Start(options);
  auto creating = std::async(std::launch::async, [&] {
    return boxes.Create({.box_id = "b1", .description = "in flight", .owner = "tests"});
  });
  REQUIRE(world.clock.WaitForWaiters(1));  // the create waits for the URL
  // Its container exists by now, and it is reported creating, not pending.
  CHECK(world.Containers("b1") == 1);
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kCreating);
  auto listed = Listed(boxes, "b1");
  REQUIRE(listed.has_value());
  CHECK(listed->phase == BoxPhase::kCreating);
  CHECK(listed->description == "in flight");
  CHECK(boxes.IsBeingCreated("b1"));

  world.clock.Advance(30s);
  auto created = creating.get();
  REQUIRE_FALSE(created.ok());
  CHECK(absl::IsDeadlineExceeded(created.status()));
  CHECK(created.status().message() ==
        "box b1: waiting for the authorize URL: none within 30000 ms; the box printed nothing");
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
  CHECK(world.DestroyHookRuns().size() == 1);
  CHECK_FALSE(world.HasHookState("b1"));
  CHECK(absl::IsNotFound(boxes.Get("b1").status()));
}

TEST_CASE("a URL printed before url_timeout ends the wait at once", "[lifecycle]") {
  Lifecycle world;
  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kSilent});
  BoxManager& boxes = world.Start();
  auto creating = std::async(std::launch::async, [&] { return boxes.Create({.box_id = "b1"}); });
  REQUIRE(world.clock.WaitForWaiters(1));
  world.clock.Advance(10s);  // not yet url_timeout
  REQUIRE(world.clock.WaitForWaiters(1));
  const std::string recording = testing::ReadRecording(kShortRecording);
  world.Console("b1")->Print(recording.substr(0, recording.find("Paste code")));
  auto created = creating.get();
  REQUIRE(created.ok());
  CHECK(created->authorize_url == testing::RecordedAuthorizeUrl(recording));
}

TEST_CASE("a box whose sign-in gives up before any URL fails with its own words", "[lifecycle]") {
  Lifecycle world;
  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kGiveUp});
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE_FALSE(created.ok());
  CHECK(absl::IsFailedPrecondition(created.status()));
  INFO(created.status().message());
  CHECK(created.status().message().rfind(
            "box b1: waiting for the authorize URL: the box's console ended before it printed "
            "one; the box said: ",
            0) == 0);
  CHECK(Contains(std::string(created.status().message()), "sign-in failed 5 times"));
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
}

// --- capacity and admission ----------------------------------------------------------------

TEST_CASE("max_boxes counts the boxes on the engine and the creates in flight", "[lifecycle]") {
  Lifecycle world;
  // The create hook of b1 holds its create until the test lets it go.
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  world.WithHooks();
  world.runner.Handle("create-hook", [&](const common::SubprocessRequest& request) {
    if (Contains(request.stdin_data, R"("box_id":"b1")")) {
      entered.set_value();
      released.wait();
    }
    common::SubprocessResult result;
    result.exit_code = 0;
    result.stdout_data = R"({"version":1})";
    return absl::StatusOr<common::SubprocessResult>(result);
  });
  BoxManagerOptions options = world.Options();
  options.max_boxes = 1;
  BoxManager& boxes = world.Start(options);

  auto first = std::async(std::launch::async, [&] { return boxes.Create({.box_id = "b1"}); });
  entered.get_future().wait();
  // b1 has no container yet, and still counts; it is reported creating.
  CHECK(world.Containers("b1") == 0);
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kCreating);
  CHECK(Listed(boxes, "b1").has_value());
  auto second = boxes.Create({.box_id = "b2"});
  CHECK(absl::IsResourceExhausted(second.status()));
  CHECK(second.status().message() ==
        "spoke unit is full (1 of 1 boxes); destroy a box before creating another");
  release.set_value();
  REQUIRE(first.get().ok());

  // Now b1 is on the engine.
  auto third = boxes.Create({.box_id = "b3"});
  CHECK(absl::IsResourceExhausted(third.status()));
  CHECK(world.Networks("b2") == 0);
  CHECK(world.Networks("b3") == 0);
  REQUIRE(boxes.Destroy("b1").ok());
  CHECK(boxes.Create({.box_id = "b3"}).ok());

  options.max_boxes = 0;
  BoxManager& none = world.Start(options);
  CHECK(absl::IsResourceExhausted(none.Create({.box_id = "b4"}).status()));
}

TEST_CASE("max_concurrent_creates refuses a create while others run, and frees its slot",
          "[lifecycle]") {
  Lifecycle world;
  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kSilent});
  BoxManagerOptions options = world.Options();
  options.max_concurrent_creates = 1;
  BoxManager& boxes = world.Start(options);
  auto first = std::async(std::launch::async, [&] { return boxes.Create({.box_id = "b1"}); });
  REQUIRE(world.clock.WaitForWaiters(1));
  auto second = boxes.Create({.box_id = "b2"});
  CHECK(absl::IsResourceExhausted(second.status()));
  CHECK(second.status().message() ==
        "box b2: 1 creates are already running on spoke unit; try again shortly");
  CHECK(world.Containers("b2") == 0);
  world.clock.Advance(options.url_timeout);
  CHECK(absl::IsDeadlineExceeded(first.get().status()));

  world.engine.SetConsoleScript({});
  CHECK(boxes.Create({.box_id = "b2"}).ok());
}

TEST_CASE("a box id in use, on the engine or by a create in flight, is refused", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto dup = boxes.Create({.box_id = "b1"});
  CHECK(absl::IsAlreadyExists(dup.status()));
  CHECK(dup.status().message() ==
        "box id b1 is already used on spoke unit; choose a different box id");
  CHECK(world.Containers("b1") == 1);
  CHECK(world.Networks("b1") == 1);

  CHECK(absl::IsInvalidArgument(boxes.Create({.box_id = "Not_A_Label"}).status()));

  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kSilent});
  auto creating = std::async(std::launch::async, [&] { return boxes.Create({.box_id = "b2"}); });
  REQUIRE(world.clock.WaitForWaiters(1));
  auto racing = boxes.Create({.box_id = "b2"});
  CHECK(absl::IsAlreadyExists(racing.status()));
  CHECK(racing.status().message() == "box b2 is being created already; choose a different box id");
  world.clock.Advance(world.Options().url_timeout);
  CHECK_FALSE(creating.get().ok());
}

TEST_CASE("only the default image, allowed images and allowed peers are accepted", "[lifecycle]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.allowed_images = {"extra:1"};
  options.allowed_peers = {"db"};
  BoxManager& boxes = world.Start(options);
  auto image = boxes.Create({.box_id = "b1", .image = "ubuntu:latest"});
  CHECK(absl::IsPermissionDenied(image.status()));
  CHECK(image.status().message() ==
        "box b1: image \"ubuntu:latest\" is not allowed on spoke unit; allowed: llmbox-box:dev, "
        "extra:1");
  auto peer = boxes.Create({.box_id = "b1", .peers = {"db", "other"}});
  CHECK(absl::IsPermissionDenied(peer.status()));
  CHECK(peer.status().message() == "box b1: peer \"other\" is not in this spoke's allowed peers");
  CHECK(world.engine.Calls().empty());  // refused before the engine is asked anything

  world.engine.AddContainer({.id = "db-id", .name = "db", .state = "running", .running = true});
  REQUIRE(boxes.Create({.box_id = "b1", .peers = {"db"}}).ok());
  auto connected = world.engine.InspectContainer("db-id");
  REQUIRE(connected.ok());
  CHECK(connected->networks == std::vector<std::string>{"llmbox-net-b1"});
}

// --- code submission ------------------------------------------------------------------------

TEST_CASE("a good code takes a box to ready with its session URL", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto outcome = boxes.SubmitCode("b1", "good-code#state");
  REQUIRE(outcome.ok());
  INFO(outcome->box_error);
  CHECK(outcome->activated);
  CHECK(outcome->session_url == testing::ConsoleScript{}.session_url);
  CHECK(outcome->box_error.empty());
  CHECK(outcome->authorize_url.empty());
  CHECK(outcome->attempts_remaining == 4);
  CHECK(outcome->box.phase == BoxPhase::kReady);
  CHECK(outcome->box.container_name == "llmbox-b1");
  CHECK(world.Console("b1")->Codes() == std::vector<std::string>{"good-code#state"});

  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url == outcome->session_url);
  CHECK(got->activation_attempts == 1);
  auto again = boxes.SubmitCode("b1", "good-again#state");
  CHECK(absl::IsFailedPrecondition(again.status()));
  CHECK(again.status().message() == "box b1 is already activated");

  // A restarted spoke finds the session URL again in the box's console history.
  BoxManager& restarted = world.Start();
  REQUIRE(restarted.Recover().ok());
  auto after = restarted.Get("b1");
  REQUIRE(after.ok());
  CHECK(after->phase == BoxPhase::kReady);
  CHECK(after->session_url == outcome->session_url);
}

TEST_CASE("a bad code returns the box's own words and a fresh authorize URL", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  auto outcome = boxes.SubmitCode("b1", "not-a-real-code#not-a-real-state");
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  CHECK(outcome->box_error == kOfflineError);
  CHECK(outcome->box.phase == BoxPhase::kPending);
  CHECK(outcome->attempts_remaining == 4);
  // The wrapper started a fresh login: a new URL for the next try.
  CHECK(outcome->authorize_url == world.Console("b1")->LoginUrl(2));
  CHECK(outcome->authorize_url != created->authorize_url);

  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kPending);
  CHECK(got->last_error == kOfflineError);
  CHECK(got->activation_attempts == 1);

  auto next = boxes.SubmitCode("b1", "good-second-try#s");
  REQUIRE(next.ok());
  CHECK(next->activated);
  CHECK(next->attempts_remaining == 3);
  got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->last_error.empty());
}

TEST_CASE("what the box says about a code is redacted: the code itself and authorize URLs",
          "[lifecycle]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.max_activation_attempts = 1;  // the last try: no wait for a new login afterwards
  BoxManager& boxes = world.Start(options);
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-secret-code#s"); });
  REQUIRE(world.clock.WaitForWaiters(1));
  world.Console("b1")->Print("Couldn't log in: bad code held-secret-code#s for " +
                             created->authorize_url + "\r\n");
  auto outcome = submitting.get();
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  INFO(outcome->box_error);
  CHECK(outcome->box_error.rfind("Couldn't log in: bad code [REDACTED] for ", 0) == 0);
  CHECK_FALSE(Contains(outcome->box_error, "held-secret-code"));
  CHECK_FALSE(Contains(outcome->box_error, created->authorize_url));
}

TEST_CASE("a box is reported activating while its code is tried, and a second code is refused",
          "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-1#s"); });
  REQUIRE(world.clock.WaitForWaiters(1));  // the code is written; the box has not answered
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kActivating);
  auto listed = Listed(boxes, "b1");
  REQUIRE(listed.has_value());
  CHECK(listed->phase == BoxPhase::kActivating);
  auto second = boxes.SubmitCode("b1", "good-2#s");
  CHECK(absl::IsAborted(second.status()));
  CHECK(second.status().message() == "box b1: another code is being tried right now");

  world.Console("b1")->Answer(/*accept=*/true);
  auto outcome = submitting.get();
  REQUIRE(outcome.ok());
  CHECK(outcome->activated);
  CHECK(outcome->box.phase == BoxPhase::kReady);
  CHECK(outcome->attempts_remaining == 4);  // the refused code used no attempt
  CHECK(world.Console("b1")->Codes() == std::vector<std::string>{"held-1#s"});
}

TEST_CASE("a code with no answer within its timeout reports what the box said", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-1#s", 5s); });
  REQUIRE(world.clock.WaitForWaiters(1));
  world.clock.Advance(5s);
  // It then waits a while for the new login the wrapper would start.
  REQUIRE(world.clock.WaitForWaiters(1));
  world.clock.Advance(15s);
  auto outcome = submitting.get();
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  INFO(outcome->box_error);
  CHECK(outcome->box_error.rfind("no answer from the box within 5000 ms; the box said: ", 0) == 0);
  CHECK(Contains(outcome->box_error, "Paste code here if prompted > [REDACTED]"));
  CHECK_FALSE(Contains(outcome->box_error, "held-1"));
  CHECK(outcome->authorize_url.empty());
  CHECK(outcome->box.phase == BoxPhase::kPending);
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->last_error == outcome->box_error);
}

TEST_CASE("the default submit timeout comes from submit_timeout", "[lifecycle]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.submit_timeout = 2s;
  options.max_activation_attempts = 1;  // no attempt left: no wait for a new URL
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-1#s"); });
  REQUIRE(world.clock.WaitForWaiters(1));
  world.clock.Advance(2s);
  auto outcome = submitting.get();
  REQUIRE(outcome.ok());
  CHECK(outcome->box_error.rfind("no answer from the box within 2000 ms", 0) == 0);
  CHECK(outcome->attempts_remaining == 0);
}

TEST_CASE(
    "activation attempts stop at max_activation_attempts and the box is stopped after its last",
    "[lifecycle][restart]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.max_activation_attempts = 2;
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto first = boxes.SubmitCode("b1", "bad-1#s");
  REQUIRE(first.ok());
  CHECK(first->attempts_remaining == 1);
  CHECK_FALSE(first->authorize_url.empty());
  CHECK_FALSE(Contains(world.engine.Calls(), "StopContainer"));
  auto second = boxes.SubmitCode("b1", "bad-2#s");
  REQUIRE(second.ok());
  CHECK(second->attempts_remaining == 0);
  CHECK(second->authorize_url.empty());  // no further try: no new URL is waited for
  // Stopped through the engine, so that its restart policy does not begin another sign-in.
  CHECK(Contains(world.engine.Calls(), "StopContainer"));
  CHECK(second->box.phase == BoxPhase::kStopped);
  auto third = boxes.SubmitCode("b1", "good-3#s");
  CHECK(absl::IsResourceExhausted(third.status()));
  CHECK(third.status().message() ==
        "box b1: all 2 activation attempts are used; destroy it and create another");
  CHECK(world.Console("b1")->Codes().size() == 2);  // the third never reached the box
}

TEST_CASE("attempts count across a spoke restart through the state dir", "[lifecycle]") {
  Lifecycle world;
  {
    BoxManager& before = world.Start();
    REQUIRE(before.Create({.box_id = "b1"}).ok());
    auto wrong = before.SubmitCode("b1", "not-the-code#state");
    REQUIRE(wrong.ok());
    CHECK(wrong->attempts_remaining == 4);
  }
  CHECK(std::filesystem::exists(world.StateDir() / "attempts" / "b1"));
  BoxManager& boxes = world.Start();  // the spoke restarts; the box stays
  REQUIRE(boxes.Recover().ok());
  auto listed = Listed(boxes, "b1");
  REQUIRE(listed.has_value());
  CHECK(listed->phase == BoxPhase::kPending);
  CHECK(listed->activation_attempts == 1);
  // The console is attached again, and the newest login's URL is the one that is waited on.
  auto wrong = boxes.SubmitCode("b1", "still-not-it#state");
  REQUIRE(wrong.ok());
  CHECK(wrong->attempts_remaining == 3);
  CHECK(wrong->authorize_url == world.Console("b1")->LoginUrl(3));
  auto outcome = boxes.SubmitCode("b1", "good-after-restart#s");
  REQUIRE(outcome.ok());
  CHECK(outcome->activated);
  CHECK(outcome->attempts_remaining == 2);

  // Destroy forgets the count.
  REQUIRE(boxes.Destroy("b1").ok());
  CHECK_FALSE(std::filesystem::exists(world.StateDir() / "attempts" / "b1"));
}

TEST_CASE("without a state dir attempts are counted in memory only", "[lifecycle]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.state_dir.clear();
  REQUIRE(world.Start(options).Create({.box_id = "b1"}).ok());
  REQUIRE(world.boxes->SubmitCode("b1", "bad-1#s").ok());
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Recover().ok());
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->activation_attempts == 0);
  CHECK_FALSE(std::filesystem::exists(world.StateDir()));
}

TEST_CASE("a box that cannot be renamed ready is activated with the failure noted", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  world.faulty.FailAt("RenameContainer");
  auto outcome = boxes.SubmitCode("b1", "good-1#s");
  REQUIRE(outcome.ok());
  CHECK(outcome->activated);
  CHECK(outcome->box.phase == BoxPhase::kPending);  // its name still says pending
  CHECK(outcome->box.last_error == "box b1: marking it ready: injected fault in RenameContainer");
}

TEST_CASE("codes for missing, stopped or invalid boxes are refused", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  CHECK(absl::IsNotFound(boxes.SubmitCode("b1", "good-1#s").status()));
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  CHECK(absl::IsInvalidArgument(boxes.SubmitCode("b1", "").status()));
  CHECK(absl::IsInvalidArgument(boxes.SubmitCode("b1", "has space").status()));
  CHECK(absl::IsInvalidArgument(boxes.SubmitCode("B1", "good-1#s").status()));
  REQUIRE(world.engine.StopContainer("llmbox-pending-b1", 1s).ok());
  auto stopped = boxes.SubmitCode("b1", "good-1#s");
  CHECK(absl::IsFailedPrecondition(stopped.status()));
  CHECK(stopped.status().message() ==
        "box b1 is not running (exited); destroy it and create another");
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kStopped);
}

// --- destroy, logs, exec --------------------------------------------------------------------

TEST_CASE("destroy removes the container and network and hands the hook state to destroy hooks",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1", .description = "d", .owner = "o"}).ok());
  REQUIRE(boxes.SubmitCode("b1", "bad-1#s").ok());
  auto destroyed = boxes.Destroy("b1");
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
  const auto runs = world.DestroyHookRuns();
  REQUIRE(runs.size() == 1);
  CHECK(Contains(runs[0], R"("account":{"account":"acct-9"})"));
  CHECK(Contains(runs[0], R"("owner":"o")"));
  CHECK_FALSE(world.HasHookState("b1"));
  CHECK(absl::IsNotFound(boxes.Get("b1").status()));

  // A new box with the same id starts from nothing.
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto fresh = boxes.Get("b1");
  REQUIRE(fresh.ok());
  CHECK(fresh->activation_attempts == 0);
  CHECK(fresh->last_error.empty());
}

TEST_CASE("destroying a box that is gone returns false", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  auto never = boxes.Destroy("never-made");
  REQUIRE(never.ok());
  CHECK_FALSE(*never);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Destroy("b1").ok());
  auto again = boxes.Destroy("b1");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
  CHECK(absl::IsInvalidArgument(boxes.Destroy("Bad_Id").status()));
}

TEST_CASE("a destroy whose hooks fail keeps their state, and destroying again retries them",
          "[lifecycle]") {
  Lifecycle world;
  world.WithHooks();
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  world.runner.Answer("destroy-hook", "", /*exit_code=*/1);
  auto failed = boxes.Destroy("b1");
  CHECK(absl::IsFailedPrecondition(failed.status()));
  CHECK(failed.status().message() ==
        "box b1: removed, but its box.destroy hooks failed: hook cleanup (box.destroy, "
        "destroy-hook): exited with status 1");
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
  CHECK(world.HasHookState("b1"));

  world.runner.Answer("destroy-hook", "");
  auto retried = boxes.Destroy("b1");
  REQUIRE(retried.ok());
  CHECK_FALSE(*retried);  // nothing was left on the engine
  const auto runs = world.DestroyHookRuns();
  REQUIRE(runs.size() == 2);
  CHECK(Contains(runs[1], R"("account":{"account":"acct-9"})"));
  CHECK_FALSE(world.HasHookState("b1"));
}

// Destroys box b1 on another thread while the engine answers its remove as Docker does (409)
// when another call (a destroy, the reaper) is removing it; returns once the destroy waits on
// the clock for the container to go.
std::future<absl::StatusOr<bool>> DestroyWhileRemoving(Lifecycle& world, BoxManager& boxes) {
  world.faulty.FailAt("RemoveContainer",
                      absl::FailedPreconditionError(
                          "removal of container llmbox-pending-b1 is already in progress"));
  auto destroying = std::async(std::launch::async, [&boxes] { return boxes.Destroy("b1"); });
  REQUIRE(world.clock.WaitForWaiters(1));  // looking again on the clock, not failing
  return destroying;
}

TEST_CASE("a destroy of a box whose removal another call began waits until its container is gone",
          "[lifecycle][destroy]") {
  Lifecycle world;
  world.WithHooks();
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto destroying = DestroyWhileRemoving(world, boxes);
  CHECK(world.Containers("b1") == 1);
  // The other call's removal ends.
  REQUIRE(world.engine.RemoveContainer("llmbox-pending-b1", /*force=*/true).ok());
  world.clock.Advance(200ms);
  auto destroyed = destroying.get();
  INFO(destroyed.status().ToString());
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  CHECK(world.Networks("b1") == 0);
  CHECK(world.DestroyHookRuns().size() == 1);  // the rest of the destroy ran
  CHECK_FALSE(world.HasHookState("b1"));
  CHECK(boxes.CountByPhase().empty());
}

TEST_CASE(
    "a removal in progress that does not end fails the destroy after its bound, and a later "
    "destroy finishes",
    "[lifecycle][destroy]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto destroying = DestroyWhileRemoving(world, boxes);
  world.clock.Advance(10s);
  auto stuck = destroying.get();
  REQUIRE(absl::IsDeadlineExceeded(stuck.status()));
  CHECK(Contains(std::string(stuck.status().message()),
                 "box b1: removing it: its container is still being "
                 "removed by another call after 10 s"));
  auto again = boxes.Destroy("b1");
  REQUIRE(again.ok());
  CHECK(*again);
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
}

TEST_CASE(
    "the box count by phase follows creates activations destroys and listings without "
    "an engine call",
    "[lifecycle][metrics]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Recover().ok());
  CHECK(boxes.CountByPhase().empty());
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Create({.box_id = "b2"}).ok());
  const size_t calls = world.engine.Calls().size();
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kPending, 2}});
  CHECK(world.engine.Calls().size() == calls);

  REQUIRE(boxes.SubmitCode("b1", "good-code#state")->activated);
  CHECK(boxes.CountByPhase() ==
        std::map<BoxPhase, int>{{BoxPhase::kPending, 1}, {BoxPhase::kReady, 1}});
  REQUIRE(boxes.Destroy("b2").ok());
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kReady, 1}});

  // Stopped behind the spoke's back: counted so from the next listing (the reaper's) on.
  REQUIRE(world.engine.StopContainer("llmbox-b1", 0s).ok());
  const size_t before_count = world.engine.Calls().size();
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kReady, 1}});
  CHECK(world.engine.Calls().size() == before_count);
  REQUIRE(boxes.List().ok());
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kStopped, 1}});
  // Removed behind its back: gone from the count at the next lookup.
  REQUIRE(world.engine.RemoveContainer("llmbox-b1", /*force=*/true).ok());
  CHECK(absl::IsNotFound(boxes.Get("b1").status()));
  CHECK(boxes.CountByPhase().empty());
}

TEST_CASE("boxes being created and activated are counted as such", "[lifecycle][metrics]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-1#s"); });
  REQUIRE(world.clock.WaitForWaiters(1));  // the code is written; the box has not answered
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kActivating, 1}});
  world.Console("b1")->Answer(/*accept=*/true);
  REQUIRE(submitting.get().ok());
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kReady, 1}});

  // A create waiting for its authorize URL (the console prints nothing).
  world.engine.SetConsoleScript({.start = testing::ConsoleScript::Start::kSilent});
  auto creating = std::async(std::launch::async, [&] { return boxes.Create({.box_id = "b2"}); });
  REQUIRE(world.clock.WaitForWaiters(1));
  CHECK(boxes.CountByPhase() ==
        std::map<BoxPhase, int>{{BoxPhase::kCreating, 1}, {BoxPhase::kReady, 1}});
  world.clock.Advance(30s);  // url_timeout: the create fails and leaves nothing
  CHECK(absl::IsDeadlineExceeded(creating.get().status()));
  CHECK(boxes.CountByPhase() == std::map<BoxPhase, int>{{BoxPhase::kReady, 1}});
}

TEST_CASE("a destroy that fails at an engine step names it, and destroying again finishes",
          "[lifecycle]") {
  const std::pair<const char*, const char*> steps[] = {
      {"StopContainer", "stopping it"},
      {"RemoveContainer", "removing it"},
      {"ListNetworks", "listing its network"},
      {"RemoveNetwork", "removing its network"},
  };
  for (const auto& [method, step] : steps) {
    INFO(method);
    Lifecycle world;
    world.WithHooks();
    BoxManager& boxes = world.Start();
    REQUIRE(boxes.Create({.box_id = "b1"}).ok());
    world.faulty.FailAt(method);
    auto failed = boxes.Destroy("b1");
    CHECK(absl::IsUnavailable(failed.status()));
    CHECK(failed.status().message() ==
          std::string("box b1: ") + step + ": injected fault in " + method);
    CHECK(world.DestroyHookRuns().empty());  // hooks run only once the engine is clean
    CHECK(world.HasHookState("b1"));
    auto again = boxes.Destroy("b1");
    REQUIRE(again.ok());
    CHECK(world.Containers("b1") == 0);
    CHECK(world.Networks("b1") == 0);
    CHECK(world.DestroyHookRuns().size() == 1);
    CHECK_FALSE(world.HasHookState("b1"));
  }
}

TEST_CASE("a destroy while a code is tried ends the wait for the box's answer", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode("b1", "held-1#s"); });
  REQUIRE(world.clock.WaitForWaiters(1));
  auto destroyed = boxes.Destroy("b1");
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  auto outcome = submitting.get();
  // The console ended under it: the box is gone (or going) and was not activated.
  if (outcome.ok()) {
    CHECK_FALSE(outcome->activated);
    CHECK(outcome->box_error.rfind("the box's console ended", 0) == 0);
  } else {
    CHECK(absl::IsNotFound(outcome.status()));
  }
}

TEST_CASE("logs come back with authorize URLs and typed codes redacted", "[lifecycle]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  REQUIRE(boxes.SubmitCode("b1", "bad-code-typed#s").ok());
  auto logs = boxes.Logs("b1", 0, 1 << 20);
  REQUIRE(logs.ok());
  INFO(logs->output);
  CHECK(Contains(logs->output, kOfflineError));
  CHECK(Contains(logs->output, "[REDACTED authorize URL]"));
  CHECK_FALSE(Contains(logs->output, "https://claude.ai/oauth/authorize"));
  CHECK_FALSE(Contains(logs->output, "bad-code-typed"));
  CHECK_FALSE(Contains(logs->output, "\x1b"));
  CHECK(absl::IsNotFound(boxes.Logs("b2", 0, 1 << 20).status()));
}

TEST_CASE("a code shaped like a URL never reaches the box's console", "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  // Echoed on the console, it would read as the session URL or as a new authorize URL.
  const std::vector<std::string> codes = {
      "https://claude.ai/code/session_01Forged",
      "https://claude.ai/oauth/authorize?z-" + std::string(43, 'F')};
  for (const std::string& code : codes) {
    auto submitted = boxes.SubmitCode("b1", code);
    CHECK(absl::IsInvalidArgument(submitted.status()));
  }
  auto view = boxes.Get("b1");
  REQUIRE(view.ok());
  CHECK(view->phase == BoxPhase::kPending);
  CHECK(view->activation_attempts == 0);
  CHECK(view->session_url.empty());
  CHECK(world.Console("b1")->History().find("Forged") == std::string::npos);
  CHECK(world.Console("b1")->History().find("FFFFFFFF") == std::string::npos);
}

// --- exec: the two identities ---------------------------------------------------------------

// The box's exec containers, by the label that ties them to it.
std::vector<spoke::docker::ContainerInfo> ExecContainers(testing::FakeDockerEngine& engine,
                                                         const std::string& box_id) {
  auto list = engine.ListContainers({{BoxManager::kExecForLabel, box_id}});
  REQUIRE(list.ok());
  return *list;
}

TEST_CASE("exec runs in a running box only", "[lifecycle]") {
  Lifecycle world;
  world.engine.SetExecResult({.exit_code = 3, .stdout_data = "out"});
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto ran = boxes.Exec("b1", {.argv = {"sh", "-c", "exit 3"}}, ExecIdentity::kUser);
  REQUIRE(ran.ok());
  CHECK(ran->exit_code == 3);
  CHECK(ran->stdout_data == "out");
  const auto execs = world.engine.ExecsOf("llmbox-exec-b1");
  REQUIRE(execs.size() == 1);
  CHECK(execs[0].argv == std::vector<std::string>{"sh", "-c", "exit 3"});
  REQUIRE(world.engine.StopContainer("llmbox-pending-b1", 1s).ok());
  auto stopped = boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser);
  CHECK(absl::IsFailedPrecondition(stopped.status()));
  CHECK(stopped.status().message() == "box b1 is not running");
  CHECK(absl::IsNotFound(boxes.Exec("b9", {.argv = {"true"}}, ExecIdentity::kUser).status()));
}

TEST_CASE("a user exec runs as the unprivileged user in the box's own exec container",
          "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  CHECK(ExecContainers(world.engine, "b1").empty());  // made on the first exec, not at create
  REQUIRE(boxes.Exec("b1", {.argv = {"id"}}, ExecIdentity::kUser).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"ls"}, .working_dir = "/tmp"}, ExecIdentity::kUser).ok());

  // Nothing ran beside Claude in the box container.
  CHECK(world.engine.ExecsOf("llmbox-pending-b1").empty());
  const auto execs = world.engine.ExecsOf("llmbox-exec-b1");
  REQUIRE(execs.size() == 2);
  CHECK(execs[0].user == "1000:1000");
  CHECK(execs[0].working_dir == "/workspace");
  CHECK(execs[1].working_dir == "/tmp");
  CHECK(Contains(execs[0].env, "HOME=/home/llmbox"));

  // One exec container, made once, holding nothing of Claude's.
  const auto made = ExecContainers(world.engine, "b1");
  REQUIRE(made.size() == 1);
  CHECK(made[0].running);
  CHECK(made[0].labels.count(BoxManager::kManagedLabel) == 0);  // never listed as a box
  auto spec = world.engine.SpecOf("llmbox-exec-b1");
  auto box = world.engine.SpecOf("llmbox-pending-b1");
  REQUIRE(spec.has_value());
  REQUIRE(box.has_value());
  CHECK(spec->user == "1000:1000");
  CHECK(spec->cap_drop == std::vector<std::string>{"ALL"});
  CHECK(spec->cap_add.empty());
  CHECK(spec->security_opt == std::vector<std::string>{"no-new-privileges"});
  CHECK_FALSE(spec->tty);
  CHECK(spec->image == kImage);
  CHECK(spec->network_mode == "llmbox-net-b1");
  CHECK(spec->pids_limit == 256);
  CHECK(spec->memory_bytes == int64_t{1} << 30);
  CHECK(spec->tmpfs.count("/home/llmbox") == 1);
  // The workspace is the only thing shared: a volume of the box container.
  CHECK(box->local_volumes.count("/workspace") == 1);
  auto box_info = world.engine.InspectContainer("llmbox-pending-b1");
  REQUIRE(box_info.ok());
  REQUIRE(box_info->volumes.count("/workspace") == 1);
  // By the volume's name, and nothing else of the box container (not VolumesFrom).
  CHECK(spec->binds ==
        std::vector<std::string>{box_info->volumes.at("/workspace") + ":/workspace"});
  CHECK(spec->volumes_from.empty());
  CHECK(Contains(box->env, "LLMBOX_EXEC_GID=1000"));
  // The exec container is not a box.
  auto listed = boxes.List();
  REQUIRE(listed.ok());
  CHECK(listed->size() == 1);
}

TEST_CASE("a box exec runs as root in the box container, beside Claude", "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}, .user = "1000"}, ExecIdentity::kBox).ok());
  const auto execs = world.engine.ExecsOf("llmbox-pending-b1");
  REQUIRE(execs.size() == 1);
  CHECK(execs[0].user == "0:0");
  CHECK(ExecContainers(world.engine, "b1").empty());
}

TEST_CASE("a user exec cannot pick its own user", "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}, .user = "0:0"}, ExecIdentity::kUser).ok());
  const auto execs = world.engine.ExecsOf("llmbox-exec-b1");
  REQUIRE(execs.size() == 1);
  CHECK(execs[0].user == "1000:1000");
}

TEST_CASE("the exec user's limits come from the spoke's options", "[lifecycle][trust]") {
  Lifecycle world;
  BoxManagerOptions options = world.Options();
  options.exec = {.uid = 2000, .gid = 3000, .memory_bytes = 512 << 20, .pids_limit = 64};
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  auto spec = world.engine.SpecOf("llmbox-exec-b1");
  REQUIRE(spec.has_value());
  CHECK(spec->user == "2000:3000");
  CHECK(spec->pids_limit == 64);
  CHECK(spec->memory_bytes == 512 << 20);
  CHECK(spec->tmpfs.at("/home/llmbox").find("uid=2000,gid=3000") != std::string::npos);
  CHECK(world.engine.ExecsOf("llmbox-exec-b1").at(0).user == "2000:3000");
  auto box = world.engine.SpecOf("llmbox-pending-b1");
  REQUIRE(box.has_value());
  CHECK(Contains(box->env, "LLMBOX_EXEC_GID=3000"));
}

// Holds every Exec until released, to have execs running at once.
class HeldExecEngine : public spoke::docker::DockerEngineWrapper {
 public:
  using DockerEngineWrapper::DockerEngineWrapper;
  absl::StatusOr<spoke::docker::ExecResult> Exec(const std::string& id,
                                                 const spoke::docker::ExecSpec& spec) override {
    std::unique_lock lock(mu_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_; });
    lock.unlock();
    return DockerEngineWrapper::Exec(id, spec);
  }
  void WaitForWaiting(int n) {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return waiting_ >= n; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int waiting_ = 0;
  bool released_ = false;
};

TEST_CASE("a box runs at most its limit of user execs at once, box execs are not counted",
          "[lifecycle][trust]") {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  engine.AddImage(kImage);
  HeldExecEngine held(engine);
  BoxManagerOptions options;
  options.default_image = kImage;
  options.exec.max_concurrent = 2;
  BoxManager boxes(held, clock, options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Create({.box_id = "b2"}).ok());
  auto run = [&](std::string box_id) {
    return std::async(std::launch::async, [&boxes, box_id] {
      return boxes.Exec(box_id, {.argv = {"sleep", "1"}}, ExecIdentity::kUser);
    });
  };
  auto first = run("b1");
  auto second = run("b1");
  held.WaitForWaiting(2);
  auto refused = boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser);
  CHECK(absl::IsResourceExhausted(refused.status()));
  CHECK(refused.status().message() ==
        "box b1: 2 execs are already running in it (the limit per box is 2); wait for one to "
        "finish");
  // Another box has its own share.
  auto other = run("b2");
  held.WaitForWaiting(3);
  held.Release();
  CHECK(first.get().ok());
  CHECK(second.get().ok());
  CHECK(other.get().ok());
  CHECK(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());  // freed again
}

TEST_CASE("a box container without a workspace volume gets no exec container",
          "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  // As an older spoke made it: managed, running, no volumes.
  world.engine.AddContainer({.id = "old1",
                             .name = "llmbox-old",
                             .image = kImage,
                             .state = "running",
                             .running = true,
                             .labels = {{BoxManager::kManagedLabel, "true"},
                                        {BoxManager::kBoxIdLabel, "old"},
                                        {BoxManager::kImageLabel, kImage}}});
  auto ran = boxes.Exec("old", {.argv = {"true"}}, ExecIdentity::kUser);
  CHECK(absl::IsFailedPrecondition(ran.status()));
  CHECK(ran.status().message() ==
        "box old: its container has no workspace volume (made by an older spoke?); destroy it "
        "and create another");
  CHECK(ExecContainers(world.engine, "old").empty());
}

TEST_CASE("a stopped exec container is started again by the next exec", "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  REQUIRE(world.engine.StopContainer("llmbox-exec-b1", 1s).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  const auto made = ExecContainers(world.engine, "b1");
  REQUIRE(made.size() == 1);
  CHECK(made[0].running);
  CHECK(world.engine.ExecsOf("llmbox-exec-b1").size() == 2);
}

TEST_CASE("an exec container that cannot start is removed and the exec says why",
          "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  world.faulty.FailAt("StartContainer");
  auto ran = boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser);
  CHECK(absl::IsUnavailable(ran.status()));
  CHECK(ran.status().message() ==
        "box b1: starting its exec container: injected fault in StartContainer");
  CHECK(ExecContainers(world.engine, "b1").empty());
  // The next exec makes a new one.
  CHECK(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  CHECK(ExecContainers(world.engine, "b1").size() == 1);
}

TEST_CASE("destroy removes the exec container before the box, and leaves nothing",
          "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  REQUIRE(boxes.Destroy("b1", 1s).ok());
  CHECK(ExecContainers(world.engine, "b1").empty());
  CHECK(world.Containers("b1") == 0);
  CHECK(world.Networks("b1") == 0);
  CHECK(world.engine.ContainerIds().empty());
  // A failed removal of the exec container fails the destroy, naming the step; a retry ends it.
  REQUIRE(boxes.Create({.box_id = "b2"}).ok());
  REQUIRE(boxes.Exec("b2", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  world.faulty.FailAt("RemoveContainer");
  auto failed = boxes.Destroy("b2", 1s);
  CHECK(absl::IsUnavailable(failed.status()));
  CHECK(failed.status().message() ==
        "box b2: removing its exec container: injected fault in RemoveContainer");
  REQUIRE(boxes.Destroy("b2", 1s).ok());
  CHECK(world.engine.ContainerIds().empty());
}

TEST_CASE("a restarted spoke removes exec containers whose box is gone, and keeps the others",
          "[lifecycle][trust]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Create({.box_id = "b2"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  REQUIRE(boxes.Exec("b2", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  // b2's container is removed behind the spoke's back.
  REQUIRE(world.engine.RemoveContainer("llmbox-pending-b2", true).ok());
  BoxManager& restarted = world.Start();
  REQUIRE(restarted.Recover().ok());
  CHECK(ExecContainers(world.engine, "b1").size() == 1);
  CHECK(ExecContainers(world.engine, "b2").empty());
}

// --- restarts (the restarts themselves need a real engine: tests/integration) ----------------

TEST_CASE("a box container comes back with its engine unless stopped and its exec container not",
          "[lifecycle][restart]") {
  Lifecycle world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  auto box = world.engine.SpecOf("llmbox-pending-b1");
  auto exec = world.engine.SpecOf("llmbox-exec-b1");
  REQUIRE(box.has_value());
  REQUIRE(exec.has_value());
  CHECK(box->restart_policy == "unless-stopped");
  // The next exec starts it again; an idle one is not brought back.
  CHECK(exec->restart_policy == "no");
}

TEST_CASE("a spoke lists and destroys only its own boxes on an engine another spoke shares",
          "[lifecycle]") {
  Lifecycle world;
  BoxManager& mine = world.Start();
  REQUIRE(mine.Create({.box_id = "shared-b1", .owner = "tests"}).ok());
  BoxManagerOptions options = world.Options();
  options.spoke_name = "other";
  options.state_dir = (world.scratch.path() / "other-state").string();
  BoxManager other(world.faulty, world.clock, options, nullptr);
  // The other spoke's hub would take down a box it lists and does not know.
  CHECK_FALSE(Listed(other, "shared-b1").has_value());
  auto destroyed = other.Destroy("shared-b1", std::chrono::seconds(1));
  CHECK((!destroyed.ok() || !*destroyed));
  CHECK(world.Containers("shared-b1") == 1);
  CHECK(Listed(mine, "shared-b1").has_value());
}

}  // namespace
}  // namespace llmbox::spoke::box
