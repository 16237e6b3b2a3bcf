// kill -9 at every phase of a box's life. Boxes are put in every phase at once — being
// created (a create hook that holds), pending, activating (a code the stand-in Claude holds
// on), ready, being destroyed (a destroy hook that holds) — then the hub (or a joined spoke)
// is killed with SIGKILL and started again. Afterwards every box must be in a true state: what
// get_llmbox says matches the engines (a live box has its container and network, a box the
// registry does not have or calls gone has none), no id is stuck (each can be destroyed and
// its id taken again), and no container or network is left that the registry does not know.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A hook that says it started (touches $1) and then holds while $2 exists.
void WriteHoldHook(const fs::path& path) {
  std::ofstream(path) << "#!/bin/sh\n"
                         "cat >/dev/null\n"
                         ": > \"$1\"\n"
                         "while [ -e \"$2\" ]; do sleep 0.05; done\n"
                         "echo '{\"version\":1}'\n";
  fs::permissions(path, fs::perms::owner_all);
}

// The hooks section of a spoke (or the local spoke, indented by `indent`) whose create and
// destroy hooks hold on <dir>/hold-create and <dir>/hold-destroy.
std::string HoldHooks(const fs::path& dir, const std::string& indent) {
  const std::string hook = (dir / "hold-hook.sh").string();
  auto entry = [&](const std::string& event, const std::string& what) {
    return indent + "  - name: hold-" + what + "\n" + indent + "    event: " + event + "\n" +
           indent + "    timeout: 300s\n" + indent + "    command: [/bin/sh, " + hook + ", " +
           (dir / ("started-" + what)).string() + ", " + (dir / ("hold-" + what)).string() + "]\n";
  };
  return indent + "hooks:\n" + entry("box.create", "create") + entry("box.destroy", "destroy");
}

void Touch(const fs::path& path) { std::ofstream(path) << "hold\n"; }

bool WaitForFile(const fs::path& path, std::chrono::seconds limit = 60s) {
  for (auto deadline = std::chrono::steady_clock::now() + limit;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    if (fs::exists(path)) return true;
  }
  return false;
}

// One MCP tool call with the SDK client, running in the background.
std::unique_ptr<ChildProcess> StartCall(const std::string& url, const std::string& tool,
                                        const nlohmann::json& arguments, const fs::path& log) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{"node", NodeScript("mcp_call.mjs"), url, "", tool, arguments.dump()},
      log);
}

// Activation in the background with a code the stand-in Claude holds on (until the box has
// /tmp/standin-release): the box stays activating.
std::unique_ptr<ChildProcess> StartHeldActivation(const std::string& hub_url,
                                                  const std::string& auth_url,
                                                  const fs::path& log) {
  const std::string token = auth_url.substr(auth_url.rfind('/') + 1);
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{"node", NodeScript("activate.mjs"), hub_url + "/auth/" + token,
                               "standin-hold-1234#state-abcdef"},
      log);
}

// What get_llmbox says of a box: its status, or "absent" when the hub has no such box.
std::string StatusOf(const std::string& hub_url, const std::string& box_id, const fs::path& log) {
  const auto got = McpCall(hub_url, "", "get_llmbox", {{"box_id", box_id}}, log);
  if (got.exit_code == 1 && got.log.find("no box") != std::string::npos) return "absent";
  if (got.exit_code != 0) return "error: " + got.log;
  const auto result = ResultOf(got);
  return result.value("status", "?");
}

// Containers and networks of a box on the engine at `socket`.
std::pair<std::size_t, std::size_t> OnEngine(const std::string& socket, const std::string& box_id) {
  return {ContainersOf(socket, box_id), NetworksOf(socket, box_id)};
}

// Whether what the hub says of the box matches the engine it lives on: a live box (pending,
// ready, error) has its one container and network; an absent or gone one has neither; creating
// and activating are not states a box may be left in.
bool TrueState(const std::string& status, std::pair<std::size_t, std::size_t> engine) {
  if (status == "absent" || status == "gone") return engine.first == 0 && engine.second == 0;
  if (status == "pending" || status == "ready" || status == "error") {
    return engine.first == 1 && engine.second == 1;
  }
  return false;
}

// Waits until every box is in a true state (the hub reconciles every second); then checks
// each, so that a failure names the box, what the hub says and what the engine has.
void CheckTrueStates(const std::string& hub_url, const std::map<std::string, std::string>& boxes,
                     const fs::path& dir, const std::string& tag) {
  int round = 0;
  auto all_true = [&] {
    ++round;
    for (const auto& [box_id, socket] : boxes) {
      const auto log = dir / (tag + "-" + box_id + "-" + std::to_string(round) + ".log");
      if (!TrueState(StatusOf(hub_url, box_id, log), OnEngine(socket, box_id))) return false;
    }
    return true;
  };
  // A code the spoke was still trying when the hub died keeps its box activating on the spoke
  // until the hub's submit timeout (90 s) runs out there; then reconcile takes its phase.
  for (auto deadline = std::chrono::steady_clock::now() + 180s;
       !all_true() && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(500ms)) {
  }
  for (const auto& [box_id, socket] : boxes) {
    const std::string status = StatusOf(hub_url, box_id, dir / (tag + "-final-" + box_id + ".log"));
    const auto engine = OnEngine(socket, box_id);
    INFO(box_id << ": the hub says " << status << "; the engine has " << engine.first
                << " container(s) and " << engine.second << " network(s)");
    CHECK(TrueState(status, engine));
  }
}

// No id is stuck: each box can be destroyed (or is gone already) and its id taken again on
// `spoke`, then destroyed; afterwards the engine has nothing of it.
void CheckIdsFree(const std::string& hub_url, const std::map<std::string, std::string>& boxes,
                  const std::map<std::string, std::string>& spokes, const fs::path& dir) {
  for (const auto& [box_id, socket] : boxes) {
    INFO(box_id);
    (void)McpCall(hub_url, "", "destroy_llmbox", {{"box_id", box_id}},
                  dir / ("free-destroy-" + box_id + ".log"));
    const auto again =
        McpCall(hub_url, "", "create_llmbox", {{"box_id", box_id}, {"spoke", spokes.at(box_id)}},
                dir / ("free-create-" + box_id + ".log"));
    INFO(again.log);
    CHECK(again.exit_code == 0);
    CHECK(McpCall(hub_url, "", "destroy_llmbox", {{"box_id", box_id}},
                  dir / ("free-destroy2-" + box_id + ".log"))
              .exit_code == 0);
    CHECK(OnEngine(socket, box_id) == std::pair<std::size_t, std::size_t>{0, 0});
  }
}

void KillNine(ChildProcess& process) {
  REQUIRE(::kill(process.pid(), SIGKILL) == 0);
  CHECK(process.Wait(30s) == 128 + SIGKILL);
}

TEST_CASE(
    "kill -9 of the hub with boxes in every phase leaves each in a true state after the restart",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-kill-hub-e2e");
  const fs::path local_holds = dir.path / "local-holds";
  fs::create_directories(local_holds);
  WriteHoldHook(dir.path / "hold-hook.sh");
  fs::copy_file(dir.path / "hold-hook.sh", local_holds / "hold-hook.sh");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", HoldHooks(local_holds, "  "),
              "cluster:\n  listen: 127.0.0.1:0\n");
  AddToHubSection(dir.path / "hub.yaml", "  spoke_health_interval: 1s\n  reconcile_interval: 1s\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  auto hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-1.log");
  const std::string cluster_port = hub->process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string w1_name = UniqueId("w1");
  const fs::path w1_holds = dir.path / w1_name;
  fs::create_directories(w1_holds);
  fs::copy_file(dir.path / "hold-hook.sh", w1_holds / "hold-hook.sh");
  JoinedSpoke w1 = JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock2, rig, w1_name,
                             HoldHooks(w1_holds, ""));
  w1.Serve();
  REQUIRE(WaitForSpokeState(hub->url, "", w1.name, "ready", dir.path / "w1-ready"));

  // box -> the engine it lives on, and -> its spoke.
  std::map<std::string, std::string> boxes, spokes;
  std::vector<std::unique_ptr<ChildProcess>> calls;
  for (const auto& [spoke, socket, holds] :
       {std::tuple{std::string("local"), rig.docker_sock, local_holds},
        std::tuple{w1.name, rig.docker_sock2, w1_holds}}) {
    const std::string tag = spoke == "local" ? "l" : "r";
    const std::string pending = UniqueId("pending-" + tag);
    const std::string ready = UniqueId("ready-" + tag);
    const std::string activating = UniqueId("activating-" + tag);
    const std::string destroying = UniqueId("destroying-" + tag);
    const std::string creating = UniqueId("creating-" + tag);
    for (const auto& id : {pending, ready, activating, destroying, creating}) {
      boxes[id] = socket;
      spokes[id] = spoke;
    }
    (void)CreateBoxForUrl(hub->url, "", {{"box_id", pending}, {"spoke", spoke}},
                          dir.path / ("create-" + pending + ".log"));
    const std::string ready_url =
        CreateBoxForUrl(hub->url, "", {{"box_id", ready}, {"spoke", spoke}},
                        dir.path / ("create-" + ready + ".log"));
    REQUIRE(ActivateBox(hub->url, ready_url, dir.path / ("activate-" + ready + ".log")));
    (void)CreateBoxForUrl(hub->url, "", {{"box_id", destroying}, {"spoke", spoke}},
                          dir.path / ("create-" + destroying + ".log"));
    const std::string activating_url =
        CreateBoxForUrl(hub->url, "", {{"box_id", activating}, {"spoke", spoke}},
                        dir.path / ("create-" + activating + ".log"));
    calls.push_back(StartHeldActivation(hub->url, activating_url,
                                        dir.path / ("activate-" + activating + ".log")));
    // Held in their hooks: a create and a destroy.
    Touch(holds / "hold-create");
    Touch(holds / "hold-destroy");
    calls.push_back(StartCall(hub->url, "create_llmbox", {{"box_id", creating}, {"spoke", spoke}},
                              dir.path / ("create-" + creating + ".log")));
    REQUIRE(WaitForFile(holds / "started-create"));
    calls.push_back(StartCall(hub->url, "destroy_llmbox", {{"box_id", destroying}},
                              dir.path / ("destroy-" + destroying + ".log")));
    REQUIRE(WaitForFile(holds / "started-destroy"));
  }
  for (const auto& [box_id, spoke] : spokes) {
    if (box_id.rfind("activating-", 0) != 0) continue;
    bool activating = false;
    for (auto deadline = std::chrono::steady_clock::now() + 60s;
         !activating && std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(200ms)) {
      activating =
          StatusOf(hub->url, box_id, dir.path / ("wait-" + box_id + ".log")) == "activating";
    }
    REQUIRE(activating);
  }

  KillNine(hub->process);
  for (const auto& holds : {local_holds, w1_holds}) {
    fs::remove(holds / "hold-create");
    fs::remove(holds / "hold-destroy");
  }
  for (auto& call : calls) (void)call->Wait(60s);
  hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-2.log");
  REQUIRE(WaitForSpokeState(hub->url, "", w1.name, "ready", dir.path / "w1-ready-2"));
  CheckTrueStates(hub->url, boxes, dir.path, "after");
  CheckIdsFree(hub->url, boxes, spokes, dir.path);
  CHECK(w1.Stop() == 0);
  CHECK(hub->process.Stop() == 0);
}

TEST_CASE(
    "kill -9 of a joined spoke with boxes in every phase leaves each in a true state, and a "
    "destroy issued while it was down completes after it returns",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-kill-spoke-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  AddToHubSection(dir.path / "hub.yaml", "  spoke_health_interval: 1s\n  reconcile_interval: 1s\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string w1_name = UniqueId("w1");
  const fs::path holds = dir.path / w1_name;
  fs::create_directories(holds);
  WriteHoldHook(holds / "hold-hook.sh");
  JoinedSpoke w1 = JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock2, rig, w1_name,
                             HoldHooks(holds, ""));
  w1.Serve();
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "ready", dir.path / "w1-ready"));

  std::map<std::string, std::string> boxes, spokes;
  const std::string pending = UniqueId("pending");
  const std::string ready = UniqueId("ready");
  const std::string activating = UniqueId("activating");
  const std::string destroying = UniqueId("destroying");
  const std::string creating = UniqueId("creating");
  const std::string doomed = UniqueId("doomed");  // destroyed while the spoke is down
  for (const auto& id : {pending, ready, activating, destroying, creating, doomed}) {
    boxes[id] = rig.docker_sock2;
    spokes[id] = w1.name;
  }
  std::vector<std::unique_ptr<ChildProcess>> calls;
  for (const auto& id : {pending, destroying, doomed}) {
    (void)CreateBoxForUrl(hub.url, "", {{"box_id", id}, {"spoke", w1.name}},
                          dir.path / ("create-" + id + ".log"));
  }
  const std::string ready_url =
      CreateBoxForUrl(hub.url, "", {{"box_id", ready}, {"spoke", w1.name}},
                      dir.path / ("create-" + ready + ".log"));
  REQUIRE(ActivateBox(hub.url, ready_url, dir.path / "activate-ready.log"));
  const std::string activating_url =
      CreateBoxForUrl(hub.url, "", {{"box_id", activating}, {"spoke", w1.name}},
                      dir.path / ("create-" + activating + ".log"));
  calls.push_back(
      StartHeldActivation(hub.url, activating_url, dir.path / "activate-activating.log"));
  Touch(holds / "hold-create");
  Touch(holds / "hold-destroy");
  calls.push_back(StartCall(hub.url, "create_llmbox", {{"box_id", creating}, {"spoke", w1.name}},
                            dir.path / "create-creating.log"));
  REQUIRE(WaitForFile(holds / "started-create"));
  calls.push_back(StartCall(hub.url, "destroy_llmbox", {{"box_id", destroying}},
                            dir.path / "destroy-destroying.log"));
  REQUIRE(WaitForFile(holds / "started-destroy"));

  KillNine(*w1.process);
  w1.process.reset();
  fs::remove(holds / "hold-create");
  fs::remove(holds / "hold-destroy");
  for (auto& call : calls) (void)call->Wait(120s);

  // While it is down: unreachable (not removed), get_llmbox answers from the registry, a
  // destroy is queued.
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "unreachable", dir.path / "w1-unreachable"));
  const auto got = McpCall(hub.url, "", "get_llmbox", {{"box_id", pending}}, dir.path / "get.log");
  INFO(got.log);
  CHECK(got.exit_code == 0);
  CHECK(got.log.find("unreachable since") != std::string::npos);
  const auto queued =
      McpCall(hub.url, "", "destroy_llmbox", {{"box_id", doomed}}, dir.path / "destroy-doomed.log");
  INFO(queued.log);
  CHECK(queued.exit_code == 0);
  CHECK(queued.log.find("\"queued\":true") != std::string::npos);
  CHECK(OnEngine(rig.docker_sock2, doomed).first == 1);

  w1.Serve("spoke-2.log");
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "ready", dir.path / "w1-ready-2"));
  CheckTrueStates(hub.url, boxes, dir.path, "after");
  CHECK(StatusOf(hub.url, doomed, dir.path / "doomed-final.log") == "absent");
  CHECK(OnEngine(rig.docker_sock2, doomed) == std::pair<std::size_t, std::size_t>{0, 0});
  boxes.erase(doomed);
  CheckIdsFree(hub.url, boxes, spokes, dir.path);
  CHECK(w1.Stop() == 0);
  CHECK(hub.process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
