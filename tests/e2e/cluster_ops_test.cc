// Cluster operations end to end: a hub with its local spoke and two joined spokes on the rig's
// two engines, an operator who cordons, drains and uncordons one of them with `llmbox-hub
// spoke ...` while the official SDK client keeps creating boxes.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
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

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The `CREATE <json>` lines of tests/e2e/node/create_loop.mjs.
std::vector<nlohmann::json> CreatesOf(const std::string& log) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("CREATE ", 0) != 0) continue;
    auto parsed = nlohmann::json::parse(line.substr(7), nullptr, false);
    if (parsed.is_object()) out.push_back(std::move(parsed));
  }
  return out;
}

TEST_CASE(
    "an operator cordons, drains and uncordons a spoke while the SDK client keeps creating boxes",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-cluster-ops-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  // The creates below are more than the default quota of an hour allows.
  AddToHubSection(dir.path / "hub.yaml",
                  "  spoke_health_interval: 1s\n  reconcile_interval: 1s\n"
                  "  quotas:\n    creates_per_hour: 100000\n    boxes_alive: 1000\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");

  JoinedSpoke w1 =
      JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock2, rig, UniqueId("w1"));
  JoinedSpoke w2 =
      JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock, rig, UniqueId("w2"));
  w1.Serve();
  w2.Serve();
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "ready", dir.path / "w1-ready"));
  REQUIRE(WaitForSpokeState(hub.url, "", w2.name, "ready", dir.path / "w2-ready"));

  // Two boxes on w1 before the maintenance: one a person activated, one never activated.
  const std::string used = UniqueId("used");
  const std::string idle = UniqueId("idle");
  const std::string used_url = CreateBoxForUrl(hub.url, "", {{"box_id", used}, {"spoke", w1.name}},
                                               dir.path / "create-used.log");
  REQUIRE(ActivateBox(hub.url, used_url, dir.path / "activate-used.log"));
  (void)CreateBoxForUrl(hub.url, "", {{"box_id", idle}, {"spoke", w1.name}},
                        dir.path / "create-idle.log");

  // Creates run throughout, with placement.
  const fs::path stop_file = dir.path / "stop-creates";
  ChildProcess creates({"node", NodeScript("create_loop.mjs"), hub.url, "", stop_file.string()},
                       dir.path / "creates.log");
  creates.WaitForLog("CREATE ");

  // Cordon: new boxes go elsewhere; w1's boxes live on; naming w1 is refused with its state.
  const auto cordoned = RunCli({LLMBOX_HUB_BIN, "spoke", "cordon", w1.name, "--reason",
                                "kernel upgrade", "--config", hub_config},
                               dir.path / "cordon.log");
  INFO(cordoned.log);
  REQUIRE(cordoned.exit_code == 0);
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "cordoned", dir.path / "w1-cordoned"));
  const std::int64_t cordoned_at = NowMs();
  const auto listed =
      RunCli({LLMBOX_HUB_BIN, "spoke", "list", "--config", hub_config}, dir.path / "list-1.log");
  INFO(listed.log);
  CHECK(listed.exit_code == 0);
  CHECK(std::regex_search(listed.log, std::regex(w1.name + ".*cordoned.*kernel upgrade")));
  const auto named =
      McpCall(hub.url, "", "create_llmbox", {{"box_id", UniqueId("named")}, {"spoke", w1.name}},
              dir.path / "create-named-cordoned.log");
  CHECK(named.exit_code == 1);
  CHECK(named.log.find("cordoned") != std::string::npos);

  // Drain: still no new boxes, and the count of what is left.
  const auto drained = RunCli({LLMBOX_HUB_BIN, "spoke", "drain", w1.name, "--config", hub_config},
                              dir.path / "drain-1.log");
  INFO(drained.log);
  REQUIRE(drained.exit_code == 0);
  CHECK(std::regex_search(drained.log, std::regex("\\b2 live box")));
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "draining", dir.path / "w1-draining"));
  CHECK(ContainersOf(rig.docker_sock2, used) == 1);
  CHECK(ContainersOf(rig.docker_sock2, idle) == 1);

  // --destroy-pending takes the box nobody activated, never the one in use: waiting for the
  // spoke to empty runs out with the used box left.
  const auto pending_gone = RunCli({LLMBOX_HUB_BIN, "spoke", "drain", w1.name, "--destroy-pending",
                                    "--wait", "--timeout", "20s", "--config", hub_config},
                                   dir.path / "drain-2.log");
  INFO(pending_gone.log);
  CHECK(pending_gone.exit_code != 0);
  CHECK(std::regex_search(pending_gone.log, std::regex("\\b1 live box")));
  CHECK(ContainersOf(rig.docker_sock2, idle) == 0);
  CHECK(ContainersOf(rig.docker_sock2, used) == 1);
  const auto used_still =
      McpCall(hub.url, "", "get_llmbox", {{"box_id", used}}, dir.path / "get-used.log");
  CHECK(used_still.log.find("\"status\":\"ready\"") != std::string::npos);

  // Its user destroys it: the drain is done.
  CHECK(McpCall(hub.url, "", "destroy_llmbox", {{"box_id", used}}, dir.path / "destroy-used.log")
            .exit_code == 0);
  const auto done = RunCli({LLMBOX_HUB_BIN, "spoke", "drain", w1.name, "--wait", "--timeout", "60s",
                            "--config", hub_config},
                           dir.path / "drain-3.log");
  INFO(done.log);
  CHECK(done.exit_code == 0);
  CHECK(done.log.find("drained") != std::string::npos);
  const std::int64_t uncordon_at = NowMs();

  // Uncordon: w1 takes boxes again.
  const auto uncordoned =
      RunCli({LLMBOX_HUB_BIN, "spoke", "uncordon", w1.name, "--config", hub_config},
             dir.path / "uncordon.log");
  REQUIRE(uncordoned.exit_code == 0);
  REQUIRE(WaitForSpokeState(hub.url, "", w1.name, "ready", dir.path / "w1-ready-again"));
  const std::string back_id = UniqueId("back");
  const auto back = McpCall(hub.url, "", "create_llmbox", {{"box_id", back_id}, {"spoke", w1.name}},
                            dir.path / "create-back.log");
  INFO(back.log);
  CHECK(back.exit_code == 0);
  CHECK(McpCall(hub.url, "", "destroy_llmbox", {{"box_id", back_id}}, dir.path / "destroy-back.log")
            .exit_code == 0);

  std::ofstream(stop_file) << "stop\n";
  REQUIRE(creates.Wait(300s) == 0);
  const auto made = CreatesOf(creates.Log());
  int during = 0;
  for (const auto& create : made) {
    INFO(create.dump());
    // Every create of the loop succeeded: cordon and drain never failed one.
    CHECK(create.value("ok", false));
    CHECK_FALSE(create.contains("destroy_error"));
    const std::int64_t start = create.value("start", std::int64_t{0});
    const std::int64_t end = create.value("end", std::int64_t{0});
    if (start >= cordoned_at && end <= uncordon_at) {
      ++during;
      CHECK(create.value("spoke", "") != w1.name);
    }
  }
  CHECK(during >= 2);  // the loop really ran while w1 was out
  CHECK(w1.Stop() == 0);
  CHECK(w2.Stop() == 0);
  CHECK(hub.process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
