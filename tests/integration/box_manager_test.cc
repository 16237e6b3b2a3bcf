// BoxManager on the rig's real engine, with the real box image and either the real Claude
// binary (which reaches the authorize URL and the real offline error) or the stand-in (which
// reaches ready).

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/reaper/reaper.h"
#include "tests/fakes/faulty_docker_engine.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<docker::DockerEngine> RigEngine(const std::string& socket) {
  docker::EngineEndpoint endpoint;
  endpoint.unix_socket = socket;
  auto engine = docker::CurlDockerEngine::Create(endpoint);
  REQUIRE(engine.ok());
  return std::move(*engine);
}

std::string UniqueBoxId(const std::string& what) {
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  return "t-" + what + "-" + common::HexEncode(*token).substr(0, 10);
}

BoxManagerOptions Options(const std::string& claude_bin) {
  BoxManagerOptions options;
  options.spoke_name = "rig";
  options.default_image = testing::Rig().box_image;
  options.claude_bin = claude_bin;
  options.memory_bytes = int64_t{1} << 30;
  options.stop_grace = 2s;
  return options;
}

// What the engine holds for a box id: containers and networks with its label.
struct Leftovers {
  size_t containers = 0;
  size_t networks = 0;
};

Leftovers LeftoversOf(docker::DockerEngine& engine, const std::string& box_id) {
  auto containers = engine.ListContainers({{BoxManager::kBoxIdLabel, box_id}});
  auto execs = engine.ListContainers({{BoxManager::kExecForLabel, box_id}});
  auto networks = engine.ListNetworks({{BoxManager::kBoxIdLabel, box_id}});
  REQUIRE(containers.ok());
  REQUIRE(execs.ok());
  REQUIRE(networks.ok());
  return {containers->size() + execs->size(), networks->size()};
}

// Destroys the box when the test ends, whatever happened.
struct BoxGuard {
  BoxManager& boxes;
  std::string box_id;
  ~BoxGuard() { (void)boxes.Destroy(box_id, 1s); }
};

// Creates box `id` (with the stand-in claude) and activates it with `code`, checking each step.
SubmitOutcome CreateAndActivate(BoxManager& boxes, const std::string& id, const std::string& code) {
  auto created = boxes.Create({.box_id = id});
  REQUIRE(created.ok());
  CHECK(created->authorize_url.rfind("https://claude.ai/oauth/authorize?z-", 0) == 0);
  CHECK(created->box.phase == BoxPhase::kPending);
  auto outcome = boxes.SubmitCode(id, code);
  REQUIRE(outcome.ok());
  INFO(outcome->box_error);
  REQUIRE(outcome->activated);
  CHECK(outcome->session_url.rfind("https://claude.ai/code/session_01", 0) == 0);
  CHECK(outcome->box.phase == BoxPhase::kReady);
  CHECK(outcome->box.container_name == "llmbox-" + id);
  return *outcome;
}

TEST_CASE("a real box prints an authorize URL and surfaces the real error for a bad code",
          "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManager boxes(*engine, common::SystemClock::Get(), Options(rig.claude_bin));
  const std::string id = UniqueBoxId("real");
  BoxGuard guard{boxes, id};

  auto created = boxes.Create({.box_id = id, .description = "real claude", .owner = "tests"});
  REQUIRE(created.ok());
  INFO("authorize URL: " << created->authorize_url);
  CHECK((created->authorize_url.rfind("https://claude.ai/oauth/authorize?", 0) == 0 ||
         created->authorize_url.rfind("https://claude.com/cai/oauth/authorize?", 0) == 0));
  CHECK(created->box.phase == BoxPhase::kPending);
  CHECK(created->box.container_name == "llmbox-pending-" + id);
  CHECK(created->box.description == "real claude");
  CHECK(LeftoversOf(*engine, id).networks == 1);

  // The box is hardened and has the binary read-only, not copied.
  auto inside = boxes.Exec(id,
                           {.argv = {"sh", "-c",
                                     "grep CapEff /proc/self/status; "
                                     "grep ' /usr/local/bin/claude ' /proc/mounts; pwd; id -u"}},
                           ExecIdentity::kBox);
  REQUIRE(inside.ok());
  INFO(inside->stdout_data << inside->stderr_data);
  // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID, nothing else.
  CHECK(inside->stdout_data.find("CapEff:\t00000000000000fb\n") != std::string::npos);
  CHECK(inside->stdout_data.find(" ro,") != std::string::npos);
  CHECK(inside->stdout_data.find("/workspace\n0\n") != std::string::npos);

  auto outcome = boxes.SubmitCode(id, "not-a-real-code#not-a-real-state");
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  // Its network has no route out (and here no proxy): the resolver's failure, in its words.
  CHECK(outcome->box_error.rfind("Couldn't log in: getaddrinfo ", 0) == 0);
  CHECK(outcome->box_error.find("platform.claude.com") != std::string::npos);
  CHECK(outcome->box.phase == BoxPhase::kPending);
  // The wrapper started a fresh login: a new URL for the next try.
  CHECK_FALSE(outcome->authorize_url.empty());
  CHECK(outcome->authorize_url != created->authorize_url);
  CHECK(outcome->attempts_remaining == 4);

  auto got = boxes.Get(id);
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kPending);
  CHECK(got->last_error == outcome->box_error);

  // The code never shows in logs.
  auto logs = boxes.Logs(id, 0, 1 << 20);
  REQUIRE(logs.ok());
  CHECK(logs->output.find("Couldn't log in") != std::string::npos);

  auto destroyed = boxes.Destroy(id, 1s);
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  CHECK(LeftoversOf(*engine, id).containers == 0);
  CHECK(LeftoversOf(*engine, id).networks == 0);
  auto again = boxes.Destroy(id, 1s);
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("the stand-in claude takes a good code to ready with a session URL", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManager boxes(*engine, common::SystemClock::Get(), Options(rig.standin_claude));
  const std::string id = UniqueBoxId("ready");
  BoxGuard guard{boxes, id};
  const SubmitOutcome outcome = CreateAndActivate(boxes, id, "standin-ok-1234#state");

  auto got = boxes.Get(id);
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kReady);
  CHECK(got->session_url == outcome.session_url);
  CHECK(absl::IsFailedPrecondition(boxes.SubmitCode(id, "standin-ok-again#x").status()));

  // A restarted spoke finds the session URL again.
  BoxManager restarted(*engine, common::SystemClock::Get(), Options(rig.standin_claude));
  REQUIRE(restarted.Recover().ok());
  auto after = restarted.Get(id);
  REQUIRE(after.ok());
  CHECK(after->phase == BoxPhase::kReady);
  CHECK(after->session_url == outcome.session_url);
}

TEST_CASE("a spoke restarted while a box is pending can still activate it", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  testing::ScratchDir state("spoke-state");
  BoxManagerOptions options = Options(rig.standin_claude);
  options.state_dir = state.path().string();
  const std::string id = UniqueBoxId("restart");
  {
    BoxManager before(*engine, common::SystemClock::Get(), options);
    auto created = before.Create({.box_id = id});
    REQUIRE(created.ok());
    auto wrong = before.SubmitCode(id, "not-the-code#state");
    REQUIRE(wrong.ok());
    CHECK_FALSE(wrong->activated);
    CHECK(wrong->attempts_remaining == 4);
  }  // the spoke goes away; the box stays
  BoxManager boxes(*engine, common::SystemClock::Get(), options);
  BoxGuard guard{boxes, id};
  REQUIRE(boxes.Recover().ok());
  auto listed = boxes.List();
  REQUIRE(listed.ok());
  bool found = false;
  for (const auto& box : *listed) {
    if (box.box_id != id) continue;
    found = box.phase == BoxPhase::kPending;
    CHECK(box.activation_attempts == 1);  // the restart did not reset the count
  }
  CHECK(found);
  auto outcome = boxes.SubmitCode(id, "standin-ok-after-restart#s");
  REQUIRE(outcome.ok());
  CHECK(outcome->activated);
  CHECK(outcome->attempts_remaining == 3);
}

// A spoke with the stand-in Claude and a state dir, and the engine's API for what a crash does.
struct RestartWorld {
  std::unique_ptr<docker::DockerEngine> engine = RigEngine(testing::Rig().docker_sock);
  testing::EngineHttp http{testing::Rig().docker_sock};
  testing::ScratchDir state{"spoke-state"};
  BoxManagerOptions options = [this] {
    BoxManagerOptions made = Options(testing::Rig().standin_claude);
    made.state_dir = state.path().string();
    return made;
  }();
  BoxManager boxes{*engine, common::SystemClock::Get(), options};

  // Kills the container's main process from the host and waits until the engine ran it again.
  void Crash(const std::string& container) {
    testing::WaitForRestart(http, container, testing::KillMainProcess(http, container));
  }
};

// The box's session URL once Get reports one other than `old` (a restarted box begins a new
// session); fails the test when none comes within a minute.
std::string WaitForNewSession(BoxManager& boxes, const std::string& id, const std::string& old) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto got = boxes.Get(id);
    REQUIRE(got.ok());
    if (got->phase == BoxPhase::kReady && !got->session_url.empty() && got->session_url != old) {
      return got->session_url;
    }
    last = std::string(PhaseName(got->phase)) + " " + got->session_url;
    std::this_thread::sleep_for(100ms);
  }
  FAIL("box " << id << " reported no new session within 60 s; last: " << last);
  return "";
}

TEST_CASE("a ready box whose main process dies is restarted by its engine and resumes signed in",
          "[box]") {
  RestartWorld world;
  BoxManager& boxes = world.boxes;
  const std::string id = UniqueBoxId("resume");
  BoxGuard guard{boxes, id};
  const SubmitOutcome activated = CreateAndActivate(boxes, id, "standin-ok-resume#state");
  const std::string container = activated.box.container_id;
  const testing::HttpReply inspected = world.http.Call("GET", "/containers/" + container + "/json");
  CHECK(inspected.body.find(R"("RestartPolicy":{"Name":"unless-stopped")") != std::string::npos);

  // A crash of Claude (or of the box's init), as the engine's restart would cause too.
  world.Crash(container);
  // The same container, still ready: its credentials survived, so no new code was asked for.
  const std::string session = WaitForNewSession(boxes, id, activated.session_url);
  CHECK(session.rfind("https://claude.ai/code/session_01", 0) == 0);
  auto logs = boxes.Logs(id, 0, 1 << 20);
  REQUIRE(logs.ok());
  // One sign-in in its whole console history: the restart asked for no code.
  const size_t prompt = logs->output.find("Paste code here");
  CHECK(prompt != std::string::npos);
  CHECK(prompt == logs->output.rfind("Paste code here"));
  auto got = boxes.Get(id);
  REQUIRE(got.ok());
  CHECK(got->container_id == container);
  CHECK(got->phase == BoxPhase::kReady);

  // A spoke restarted after the box's restart reports the new session, not the first.
  BoxManager restarted(*world.engine, common::SystemClock::Get(), world.options);
  REQUIRE(restarted.Recover().ok());
  auto after = restarted.Get(id);
  REQUIRE(after.ok());
  CHECK(after->phase == BoxPhase::kReady);
  CHECK(after->session_url == session);

  // A box that is destroyed stays gone: its restart policy does not bring it back.
  auto destroyed = boxes.Destroy(id, 1s);
  REQUIRE(destroyed.ok());
  CHECK(LeftoversOf(*world.engine, id).containers == 0);
}

TEST_CASE("a pending box whose main process dies comes back pending with a new sign-in link",
          "[box]") {
  RestartWorld world;
  BoxManager& boxes = world.boxes;
  const std::string id = UniqueBoxId("relogin");
  BoxGuard guard{boxes, id};
  auto created = boxes.Create({.box_id = id});
  REQUIRE(created.ok());
  const std::string container = created->box.container_id;

  world.Crash(container);
  auto got = boxes.Get(id);
  REQUIRE(got.ok());
  CHECK(got->phase == BoxPhase::kPending);

  // The code for the old link is not typed into the new login (it could not work there): the
  // answer is the new link, and no attempt is spent.
  auto outcome = boxes.SubmitCode(id, "standin-ok-for-the-old-link#state");
  REQUIRE(outcome.ok());
  INFO(outcome->box_error);
  CHECK_FALSE(outcome->activated);
  CHECK(outcome->box_error.find("the box restarted") != std::string::npos);
  CHECK(outcome->authorize_url.rfind("https://claude.ai/oauth/authorize?z-", 0) == 0);
  CHECK(outcome->authorize_url != created->authorize_url);
  CHECK(outcome->attempts_remaining == 5);
  CHECK(outcome->box.phase == BoxPhase::kPending);

  // A code from the new link signs it in.
  auto signed_in = boxes.SubmitCode(id, "standin-ok-new-link#state");
  REQUIRE(signed_in.ok());
  INFO(signed_in->box_error);
  CHECK(signed_in->activated);
  CHECK(signed_in->attempts_remaining == 4);
  CHECK(signed_in->box.phase == BoxPhase::kReady);
}

TEST_CASE("bad create requests are refused clearly and leave nothing behind", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManager boxes(*engine, common::SystemClock::Get(), Options(rig.standin_claude));

  auto bad_id = boxes.Create({.box_id = "Not_A_Label"});
  CHECK(absl::IsInvalidArgument(bad_id.status()));

  const std::string id = UniqueBoxId("dup");
  BoxGuard guard{boxes, id};
  REQUIRE(boxes.Create({.box_id = id}).ok());
  auto dup = boxes.Create({.box_id = id});
  CHECK(absl::IsAlreadyExists(dup.status()));
  CHECK(dup.status().message().find("already used") != std::string::npos);
  CHECK(LeftoversOf(*engine, id).containers == 1);

  const std::string other = UniqueBoxId("img");
  auto image = boxes.Create({.box_id = other, .image = "ubuntu:latest"});
  CHECK(absl::IsPermissionDenied(image.status()));
  CHECK(image.status().message().find("\"ubuntu:latest\" is not allowed") != std::string::npos);
  CHECK(LeftoversOf(*engine, other).containers == 0);

  // Allowed, but not on this engine: pulled (no registry is reachable here, so it fails).
  BoxManagerOptions absent = Options(rig.standin_claude);
  absent.allowed_images = {"llmbox-absent:1"};
  BoxManager pulling(*engine, common::SystemClock::Get(), absent);
  auto pull = pulling.Create({.box_id = other, .image = "llmbox-absent:1"});
  INFO(pull.status());
  CHECK(pull.status().message().find("box " + other + ": pulling its image llmbox-absent:1: ") ==
        0);
  CHECK(LeftoversOf(*engine, other).networks == 0);

  auto peer = boxes.Create({.box_id = other, .peers = {"some-database"}});
  CHECK(absl::IsPermissionDenied(peer.status()));

  BoxManagerOptions full = Options(rig.standin_claude);
  full.max_boxes = 0;
  BoxManager no_room(*engine, common::SystemClock::Get(), full);
  auto capacity = no_room.Create({.box_id = other});
  CHECK(absl::IsResourceExhausted(capacity.status()));
  CHECK(LeftoversOf(*engine, other).networks == 0);

  auto down_engine = RigEngine("/run/llmbox/no-such-engine.sock");
  BoxManager down(*down_engine, common::SystemClock::Get(), Options(rig.standin_claude));
  auto unavailable = down.Create({.box_id = other});
  CHECK(absl::IsUnavailable(unavailable.status()));
  CHECK(unavailable.status().message().find("no-such-engine.sock") != std::string::npos);
}

TEST_CASE("a box that never prints an authorize URL fails with its own words and is removed",
          "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  // /bin/false as "claude": every login fails at once, then the wrapper gives up.
  BoxManager boxes(*engine, common::SystemClock::Get(), Options("/bin/false"));
  const std::string id = UniqueBoxId("mute");
  auto created = boxes.Create({.box_id = id});
  REQUIRE_FALSE(created.ok());
  INFO(created.status().message());
  CHECK(created.status().message().find("box " + id + ": waiting for the authorize URL") == 0);
  CHECK(created.status().message().find("sign-in failed 5 times") != std::string::npos);
  CHECK(LeftoversOf(*engine, id).containers == 0);
  CHECK(LeftoversOf(*engine, id).networks == 0);
}

TEST_CASE("the reaper destroys a pending box past auth_ttl on the real engine", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManager boxes(*engine, common::SystemClock::Get(), Options(rig.standin_claude));
  const std::string id = UniqueBoxId("reap");
  BoxGuard guard{boxes, id};
  REQUIRE(boxes.Create({.box_id = id}).ok());
  // A create takes far longer than 1 ms, so the box is already past this ttl.
  reaper::Reaper short_ttl(boxes, *engine, common::SystemClock::Get(),
                           {.auth_ttl = std::chrono::milliseconds(1), .grace = 1s});
  reaper::Sweep sweep = short_ttl.RunOnce();
  CHECK(std::find(sweep.expired_boxes.begin(), sweep.expired_boxes.end(), id) !=
        sweep.expired_boxes.end());
  CHECK(LeftoversOf(*engine, id).containers == 0);
  CHECK(LeftoversOf(*engine, id).networks == 0);
}

TEST_CASE("a failure at any create step removes everything made before it", "[box]") {
  const auto& rig = testing::Rig();
  auto real = RigEngine(rig.docker_sock);
  testing::FaultyDockerEngine faulty(*real);
  BoxManager boxes(faulty, common::SystemClock::Get(), Options(rig.standin_claude));
  const std::pair<const char*, const char*> steps[] = {
      {"CreateNetwork", "creating its network"}, {"CreateContainer", "creating its container"},
      {"PutArchive", "injecting its files"},     {"Attach", "attaching to its console"},
      {"StartContainer", "starting it"},         {"InspectContainer", "reading it back"},
  };
  for (const auto& [method, step] : steps) {
    const std::string id = UniqueBoxId("fault");
    faulty.FailAt(method);
    auto created = boxes.Create({.box_id = id});
    INFO(method << ": " << created.status());
    REQUIRE_FALSE(created.ok());
    CHECK(absl::IsUnavailable(created.status()));
    CHECK(created.status().message() ==
          "box " + id + ": " + step + ": injected fault in " + method);
    const Leftovers left = LeftoversOf(*real, id);
    CHECK(left.containers == 0);
    CHECK(left.networks == 0);
  }
}

TEST_CASE("the exec user shares only the workspace with Claude and holds no capabilities",
          "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  BoxManager boxes(*engine, common::SystemClock::Get(), Options(rig.claude_bin));
  const std::string id = UniqueBoxId("trust");
  BoxGuard guard{boxes, id};
  auto created = boxes.Create({.box_id = id});
  REQUIRE(created.ok());
  // As Claude would: root, with the umask the box's entrypoint gives Claude.
  auto as_box = [&](const std::string& script) {
    auto ran = boxes.Exec(id, {.argv = {"sh", "-c", "umask 0002; " + script}}, ExecIdentity::kBox);
    REQUIRE(ran.ok());
    return *ran;
  };
  auto as_user = [&](const std::string& script) {
    auto ran = boxes.Exec(id, {.argv = {"sh", "-c", script}}, ExecIdentity::kUser);
    REQUIRE(ran.ok());
    return *ran;
  };
  // Claude's credentials, as the box's own identity would have them after a sign-in.
  const std::string secret = "trustprobe" + UniqueBoxId("s").substr(4);
  REQUIRE(as_box("mkdir -p /root/.claude && printf '%s' '" + secret +
                 "' > /root/.claude/.credentials.json && chmod 600 "
                 "/root/.claude/.credentials.json")
              .exit_code == 0);

  auto who = as_user(
      "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; pwd; echo $HOME");
  INFO(who.stdout_data << who.stderr_data);
  CHECK(who.stdout_data ==
        "1000\n1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
        "/workspace\n/home/llmbox\n");
  // Nothing of Claude's is there: no process, no credentials, no console.
  auto look = as_user(
      "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; "
      "cat /root/.claude/.credentials.json; ls /dev/pts; "
      "grep -rl --exclude-dir=proc --exclude-dir=sys " +
      secret.substr(0, 12) + " / 2>/dev/null; echo done");
  INFO(look.stdout_data << look.stderr_data);
  CHECK(look.stdout_data.find("auth login") == std::string::npos);
  CHECK(look.stdout_data.find("entrypoint") == std::string::npos);
  CHECK(look.stdout_data.find(secret) == std::string::npos);
  CHECK(look.stderr_data.find(secret) == std::string::npos);
  CHECK(look.stdout_data.find("done") != std::string::npos);
  // Nothing of the box container is mounted but the workspace (not the Claude binary's bind).
  CHECK(as_user("test -e /usr/local/bin/claude && echo present || echo absent").stdout_data ==
        "absent\n");
  auto console = as_user("echo forged > /dev/console && echo wrote");
  CHECK(console.stdout_data.find("wrote") == std::string::npos);

  // The workspace, both ways.
  CHECK(as_user("echo from-user > /workspace/u.txt").exit_code == 0);
  auto box_side = as_box(
      "cat /workspace/u.txt && echo from-box > /workspace/b.txt && "
      "mkdir /workspace/d && echo in-dir > /workspace/d/f && "
      "echo more >> /workspace/u.txt && echo ok");
  INFO(box_side.stdout_data << box_side.stderr_data);
  CHECK(box_side.stdout_data == "from-user\nok\n");
  auto user_side = as_user(
      "cat /workspace/b.txt && echo again >> /workspace/b.txt && echo x >> /workspace/d/f && "
      "touch /workspace/d/new && echo ok");
  INFO(user_side.stdout_data << user_side.stderr_data);
  CHECK(user_side.stdout_data == "from-box\nok\n");
  // Claude's project settings are not the exec user's to write or move.
  CHECK(as_user("touch /workspace/.claude/settings.json").exit_code != 0);
  CHECK(as_user("mv /workspace/.claude /workspace/moved").exit_code != 0);
  CHECK(as_user("echo x > /workspace/.mcp.json").exit_code != 0);
  CHECK(as_user("rm -rf /workspace/.mcp.json").exit_code != 0);
  CHECK(as_box("test -d /workspace/.claude && test ! -e /workspace/.claude/settings.json && "
               "test ! -e /workspace/moved && grep -q mcpServers /workspace/.mcp.json")
            .exit_code == 0);

  // A timed-out exec ends with everything it started: nothing of it holds the exec user's pids.
  auto slow = boxes.Exec(
      id, {.argv = {"sh", "-c", "sleep 300 & sleep 300 & sleep 300 & wait"}, .timeout = 1s},
      ExecIdentity::kUser);
  REQUIRE(slow.ok());
  CHECK(slow->timed_out);
  auto left = as_user(
      "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null | "
      "grep -c '^sleep 300 $'");
  CHECK(left.stdout_data == "0\n");
  // A caller that gives up ends the command the same way.
  std::atomic<bool> give_up{false};
  auto cancelled = std::async(std::launch::async, [&] {
    return boxes.Exec(id,
                      {.argv = {"sh", "-c", "sleep 300 & sleep 300 & wait"},
                       .timeout = 120s,
                       .cancelled = [&] { return give_up.load(); }},
                      ExecIdentity::kUser);
  });
  std::this_thread::sleep_for(1s);  // the command is running (a cancel before it also ends it)
  give_up = true;
  REQUIRE(cancelled.wait_for(30s) == std::future_status::ready);
  CHECK(absl::IsCancelled(cancelled.get().status()));
  left = as_user(
      "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null | "
      "grep -c '^sleep 300 $'");
  CHECK(left.stdout_data == "0\n");

  auto destroyed = boxes.Destroy(id, 1s);
  REQUIRE(destroyed.ok());
  CHECK(LeftoversOf(*engine, id).containers == 0);
  CHECK(LeftoversOf(*engine, id).networks == 0);
}

}  // namespace
}  // namespace llmbox::spoke::box

namespace llmbox::spoke::box {
namespace {

// Hook scripts and the spoke's state in a scratch folder.
struct HookFixture : testing::ScratchDir {
  HookFixture() : ScratchDir("box-hooks") {}
  BoxManagerOptions Options(const std::string& claude_bin) const {
    BoxManagerOptions options = box::Options(claude_bin);
    options.state_dir = (path() / "state").string();
    return options;
  }
  bool HasState(const std::string& box_id) const {
    return std::filesystem::exists(path() / "state" / "hook-state" / (box_id + ".json"));
  }
};

TEST_CASE("hooks inject files into a box, and its destroy hook gets their state", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  HookFixture f;
  const std::string create = f.Script(
      "create",
      R"(printf '%s' '{"version":1,"files":[{"path":"/root/.config/llmbox-test/token","mode":384,"uid":1000,"gid":1000,"content":"tok-1"}],"state":{"account":"acct-9"}}')");
  const std::string destroy =
      f.Script("destroy", "cat >> " + f.path().string() + "/destroyed" + "\n");
  common::PosixSubprocessRunner runner;
  hooks::HookRunner hook_runner(
      runner, {{.name = "account", .event = "box.create", .command = {create}},
               {.name = "cleanup", .event = "box.destroy", .command = {destroy}}});
  BoxManager boxes(*engine, common::SystemClock::Get(), f.Options(rig.standin_claude),
                   &hook_runner);
  const std::string id = UniqueBoxId("hooks");
  BoxGuard guard{boxes, id};
  auto created = boxes.Create({.box_id = id});
  REQUIRE(created.ok());
  auto inside = boxes.Exec(id,
                           {.argv = {"sh", "-c",
                                     "stat -c '%a %u' /root/.config/llmbox-test/token; "
                                     "cat /root/.config/llmbox-test/token; env"}},
                           ExecIdentity::kBox);
  REQUIRE(inside.ok());
  CHECK(inside->stdout_data.find("600 1000\ntok-1") == 0);
  // Hook files never travel in the environment.
  CHECK(inside->stdout_data.find("tok-1", 10) == std::string::npos);
  CHECK(f.HasState(id));

  auto destroyed = boxes.Destroy(id, std::chrono::seconds(1));
  REQUIRE(destroyed.ok());
  CHECK(f.Read("destroyed").find("\"account\":\"acct-9\"") != std::string::npos);
  CHECK_FALSE(f.HasState(id));
}

TEST_CASE("a failing or hanging create hook is named and leaves nothing behind", "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  HookFixture f;
  const std::string failing = f.Script("failing", "echo some-secret; exit 2\n");
  const std::string hanging = f.Script("hanging", "sleep 30\n");
  common::PosixSubprocessRunner runner;
  {
    hooks::HookRunner hook_runner(runner,
                                  {{.name = "quota", .event = "box.create", .command = {failing}}});
    BoxManager boxes(*engine, common::SystemClock::Get(), f.Options(rig.standin_claude),
                     &hook_runner);
    const std::string id = UniqueBoxId("hookfail");
    auto created = boxes.Create({.box_id = id});
    CHECK(absl::IsFailedPrecondition(created.status()));
    CHECK(created.status().message() ==
          "box " + id + ": running its box.create hooks: hook quota (box.create, " + failing +
              "): exited with status 2");
    CHECK(LeftoversOf(*engine, id).containers == 0);
    CHECK(LeftoversOf(*engine, id).networks == 0);
  }
  {
    hooks::HookRunner hook_runner(runner, {{.name = "slow",
                                            .event = "box.create",
                                            .command = {hanging},
                                            .timeout = std::chrono::milliseconds(300)}});
    BoxManager boxes(*engine, common::SystemClock::Get(), f.Options(rig.standin_claude),
                     &hook_runner);
    const std::string id = UniqueBoxId("hookhang");
    auto created = boxes.Create({.box_id = id});
    CHECK(absl::IsDeadlineExceeded(created.status()));
    CHECK(created.status().message().find("did not finish within 300 ms") != std::string::npos);
    CHECK(LeftoversOf(*engine, id).containers == 0);
  }
}

TEST_CASE("a create that fails after its hooks ran undoes them", "[box]") {
  const auto& rig = testing::Rig();
  auto real = RigEngine(rig.docker_sock);
  testing::FaultyDockerEngine faulty(*real);
  HookFixture f;
  const std::string create = f.Script("create", R"(echo '{"version":1,"state":"s-1"}')");
  const std::string destroy = f.Script("destroy", "cat >> " + f.path().string() + "/undone" + "\n");
  common::PosixSubprocessRunner runner;
  hooks::HookRunner hook_runner(runner,
                                {{.name = "make", .event = "box.create", .command = {create}},
                                 {.name = "unmake", .event = "box.destroy", .command = {destroy}}});
  BoxManager boxes(faulty, common::SystemClock::Get(), f.Options(rig.standin_claude), &hook_runner);
  const std::string id = UniqueBoxId("hookundo");
  faulty.FailAt("StartContainer");
  auto created = boxes.Create({.box_id = id});
  REQUIRE_FALSE(created.ok());
  CHECK(f.Read("undone").find("\"make\":\"s-1\"") != std::string::npos);
  CHECK_FALSE(f.HasState(id));
  CHECK(LeftoversOf(*real, id).containers == 0);
  CHECK(LeftoversOf(*real, id).networks == 0);
}

// Polls Get (bounded: 30 s) until the box shows `phase`; true when it did.
bool WaitForPhase(BoxManager& boxes, const std::string& box_id, BoxPhase phase) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto got = boxes.Get(box_id);
    if (got.ok() && got->phase == phase) return true;
    std::this_thread::sleep_for(20ms);  // the poll interval, not a wait for an outcome
  }
  return false;
}

std::optional<BoxView> Listed(BoxManager& boxes, const std::string& box_id) {
  auto listed = boxes.List();
  REQUIRE(listed.ok());
  for (const auto& box : *listed) {
    if (box.box_id == box_id) return box;
  }
  return std::nullopt;
}

TEST_CASE("a box is reported creating while its create runs and activating while a code is tried",
          "[box]") {
  const auto& rig = testing::Rig();
  auto engine = RigEngine(rig.docker_sock);
  HookFixture f;
  // The create hook holds the create until the test makes the release file.
  const std::string release = (f.path() / "release").string();
  const std::string gate = f.Script(
      "gate", "while [ ! -e " + release + " ]; do sleep 0.05; done\necho '{\"version\":1}'\n");
  common::PosixSubprocessRunner runner;
  hooks::HookRunner hook_runner(runner,
                                {{.name = "gate", .event = "box.create", .command = {gate}}});
  BoxManager boxes(*engine, common::SystemClock::Get(), f.Options(rig.standin_claude),
                   &hook_runner);
  const std::string id = UniqueBoxId("phases");
  BoxGuard guard{boxes, id};

  auto creating = std::async(std::launch::async, [&] {
    return boxes.Create({.box_id = id, .description = "in flight", .owner = "tests"});
  });
  CHECK(WaitForPhase(boxes, id, BoxPhase::kCreating));
  auto listed = Listed(boxes, id);
  REQUIRE(listed.has_value());
  CHECK(listed->phase == BoxPhase::kCreating);
  CHECK(listed->description == "in flight");
  CHECK(listed->owner == "tests");
  f.Write("release", "");
  auto created = creating.get();
  REQUIRE(created.ok());
  CHECK(created->box.phase == BoxPhase::kPending);
  auto pending = boxes.Get(id);
  REQUIRE(pending.ok());
  CHECK(pending->phase == BoxPhase::kPending);

  // The stand-in holds a "standin-hold" code until /tmp/standin-release exists in the box.
  auto submitting =
      std::async(std::launch::async, [&] { return boxes.SubmitCode(id, "standin-hold-1#s"); });
  CHECK(WaitForPhase(boxes, id, BoxPhase::kActivating));
  listed = Listed(boxes, id);
  REQUIRE(listed.has_value());
  CHECK(listed->phase == BoxPhase::kActivating);
  auto released = boxes.Exec(id, {.argv = {"touch", "/tmp/standin-release"}}, ExecIdentity::kBox);
  REQUIRE(released.ok());
  CHECK(released->exit_code == 0);
  auto outcome = submitting.get();
  REQUIRE(outcome.ok());
  INFO(outcome->box_error);
  CHECK(outcome->activated);
  CHECK(outcome->box.phase == BoxPhase::kReady);
  auto ready = boxes.Get(id);
  REQUIRE(ready.ok());
  CHECK(ready->phase == BoxPhase::kReady);
}

TEST_CASE("a box on a remote engine over TCP+TLS is created, activated, used and destroyed",
          "[box-tls]") {
  const auto& rig = testing::RigWithTlsEngine();
  docker::EngineEndpoint endpoint;
  endpoint.tcp_url = rig.tls3_url;
  endpoint.tls_ca_file = rig.tls3_ca;
  endpoint.tls_cert_file = rig.tls3_cert;
  endpoint.tls_key_file = rig.tls3_key;
  auto made = docker::CurlDockerEngine::Create(endpoint);
  REQUIRE(made.ok());
  docker::DockerEngine& engine = **made;
  BoxManagerOptions options;
  options.spoke_name = "rig-tls";
  options.default_image = rig.box_image;
  options.claude_bin = rig.standin_claude;  // the engine runs on this host: a bind mount works
  options.memory_bytes = int64_t{1} << 30;
  options.stop_grace = 2s;
  BoxManager boxes(engine, common::SystemClock::Get(), options);
  const std::string id = UniqueBoxId("tls");
  BoxGuard guard{boxes, id};

  // The console is attached over TLS before start, so the authorize URL is not lost; the code
  // goes to the box's stdin over TLS and the session URL comes back on the same stream.
  CreateAndActivate(boxes, id, "standin-ok-over-tls#state");

  auto inside =
      boxes.Exec(id, {.argv = {"sh", "-c", "cat /root/.claude.json; exit 3"}}, ExecIdentity::kBox);
  REQUIRE(inside.ok());
  CHECK(inside->exit_code == 3);
  CHECK(inside->stdout_data.find("hasTrustDialogAccepted") != std::string::npos);

  auto destroyed = boxes.Destroy(id, 1s);
  REQUIRE(destroyed.ok());
  CHECK(*destroyed);
  CHECK(LeftoversOf(engine, id).containers == 0);
  CHECK(LeftoversOf(engine, id).networks == 0);
}

}  // namespace
}  // namespace llmbox::spoke::box
