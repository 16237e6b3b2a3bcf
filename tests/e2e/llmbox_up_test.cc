// scripts/llmbox-up, the README's first command, as a process: it supervises its hub, so a hub
// killed with -9 comes back by itself, and the engine (with every box on it) outlives it. The
// script runs on the rig's engine 1 with the test build (LLMBOX_UP_SKIP_SETUP, _SKIP_IMAGE) and
// the stand-in Claude, which can reach ready offline.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The pid in `file` (a pid file the script writes), 0 when there is none.
pid_t PidIn(const fs::path& file) {
  const std::string text = ReadFileOrEmpty(file);
  return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
}

bool Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// Stops the script at the end of the test, whatever happened (ChildProcess alone would kill
// it with -9 and leave its hub running), and the hub it named if that is still up.
struct StopScript {
  ChildProcess& script;
  fs::path hub_pid_file;
  ~StopScript() {
    const pid_t hub = PidIn(hub_pid_file);
    (void)script.Stop();
    if (Alive(hub)) ::kill(hub, SIGKILL);
  }
};

// get_llmbox of `box_id` once the hub at `url` answers it (it may be restarting).
nlohmann::json GetWhenServed(const std::string& url, const std::string& box_id,
                             const fs::path& log) {
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  CallResult call{-1, ""};
  while (std::chrono::steady_clock::now() < deadline) {
    call = McpCall(url, "", "get_llmbox", {{"box_id", box_id}}, log);
    if (call.exit_code == 0) return ResultOf(call);
    std::this_thread::sleep_for(200ms);
  }
  FAIL("get_llmbox " << box_id << " did not answer within 90 s: " << call.log);
  return {};
}

std::string TokenOf(const CallResult& created) {
  std::smatch m;
  REQUIRE(std::regex_search(created.log, m, std::regex("\"auth_url\":\"([^\"]+)\"")));
  const std::string auth_url = m[1];
  return auth_url.substr(auth_url.rfind('/') + 1);
}

TEST_CASE("kill -9 of the hub under llmbox-up loses neither a pending nor a ready box",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-up-e2e");
  const fs::path build = fs::path(LLMBOX_HUB_BIN).parent_path().parent_path();
  const std::string listen = "127.0.0.1:" + std::to_string(UnusedLoopbackPort());
  ChildProcess up({"env", "LLMBOX_UP_SKIP_SETUP=1", "LLMBOX_UP_SKIP_IMAGE=1",
                   "LLMBOX_BUILD_DIR=" + build.string(), "DOCKER_HOST=unix://" + rig.docker_sock,
                   "LLMBOX_LISTEN=" + listen, "LLMBOX_STATE_DIR=" + dir.path.string(),
                   "LLMBOX_CLAUDE_BIN=" + rig.standin_claude,
                   std::string(LLMBOX_SOURCE_DIR) + "/scripts/llmbox-up"},
                  dir.path / "up.log");
  StopScript stop{up, dir.path / "hub.pid"};
  const std::string url = up.WaitForLog("MCP URL: (http://127\\.0\\.0\\.1:[0-9]+)/", 120s);
  CHECK(PidIn(dir.path / "llmbox-up.pid") == up.pid());

  // A pending box, and a ready one (the stand-in signs in with any standin-ok code).
  const std::string pending_id = UniqueId("up-pending");
  const std::string ready_id = UniqueId("up-ready");
  const auto pending_created =
      McpCall(url, "", "create_llmbox", {{"box_id", pending_id}}, dir.path / "create-p.log");
  REQUIRE(pending_created.exit_code == 0);
  const auto ready_created =
      McpCall(url, "", "create_llmbox", {{"box_id", ready_id}}, dir.path / "create-r.log");
  REQUIRE(ready_created.exit_code == 0);
  ChildProcess activate({"node", NodeScript("activate.mjs"),
                         url + "/auth/" + TokenOf(ready_created), "standin-ok-1234#state-abcdef"},
                        dir.path / "activate.log");
  REQUIRE(activate.Wait(120s) == 0);
  const nlohmann::json ready_before = GetWhenServed(url, ready_id, dir.path / "get-r0.log");
  REQUIRE(ready_before.value("status", "") == "ready");
  const std::string session = ready_before.value("session_url", "");
  CHECK_FALSE(session.empty());

  const pid_t first_hub = PidIn(dir.path / "hub.pid");
  REQUIRE(Alive(first_hub));
  REQUIRE(::kill(first_hub, SIGKILL) == 0);
  up.WaitForLog("(was killed by SIGKILL)", 30s);
  up.WaitForLog("(llmbox-hub started again)", 30s);

  // Both boxes are still there and answer through the restarted hub: the engine kept them.
  const nlohmann::json ready_after = GetWhenServed(url, ready_id, dir.path / "get-r1.log");
  CHECK(ready_after.value("status", "") == "ready");
  CHECK(ready_after.value("session_url", "") == session);
  const nlohmann::json pending_after = GetWhenServed(url, pending_id, dir.path / "get-p1.log");
  CHECK(pending_after.value("status", "") == "pending");
  const pid_t second_hub = PidIn(dir.path / "hub.pid");
  CHECK(second_hub != first_hub);
  CHECK(Alive(second_hub));

  // The pending box's link from before the kill still signs it in.
  ChildProcess activate_pending(
      {"node", NodeScript("activate.mjs"), url + "/auth/" + TokenOf(pending_created),
       "standin-ok-5678#state-ghijkl"},
      dir.path / "activate-p.log");
  REQUIRE(activate_pending.Wait(120s) == 0);
  CHECK(GetWhenServed(url, pending_id, dir.path / "get-p2.log").value("status", "") == "ready");

  for (const auto& id : {pending_id, ready_id}) {
    CHECK(McpCall(url, "", "destroy_llmbox", {{"box_id", id}}, dir.path / ("destroy-" + id))
              .exit_code == 0);
  }
  // The banner (the MCP URL) was printed once, not at the restart.
  const std::string log = up.Log();
  CHECK(log.find("MCP URL:") == log.rfind("MCP URL:"));

  // `llmbox-up down` from another shell ends the script and its hub, and leaves no pid file.
  ChildProcess down({"env", "LLMBOX_STATE_DIR=" + dir.path.string(),
                     std::string(LLMBOX_SOURCE_DIR) + "/scripts/llmbox-up", "down"},
                    dir.path / "down.log");
  CHECK(down.Wait(30s) == 0);
  CHECK(up.Wait(60s) == 0);
  CHECK_FALSE(Alive(second_hub));
  CHECK_FALSE(fs::exists(dir.path / "hub.pid"));
  CHECK_FALSE(fs::exists(dir.path / "llmbox-up.pid"));
}

}  // namespace
}  // namespace llmbox::testing
