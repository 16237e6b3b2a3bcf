// A spoke whose engine fails every create, end to end: the hub with its local spoke on the
// rig's engine 1 and a joined spoke on engine 2 behind a fault-injecting proxy
// (tests/support/faulty_engine_proxy.h). While the proxy is broken, the joined spoke's
// creates fail, each is retried on the local spoke, and after degraded_min_creates the joined
// spoke is degraded and placement passes it over; once the proxy is fixed a trial create
// succeeds and the joined spoke takes boxes again.

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/faulty_engine_proxy.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE(
    "a spoke whose engine fails every create goes degraded while the other spoke takes "
    "the creates and comes back after a trial once healed",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-degraded-e2e");
  // The local spoke has room for 4 boxes and the joined one for 20: placement prefers the
  // joined one whenever it is ready.
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "    max_boxes: 4\n",
              "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  AddToHubSection(hub_config,
                  "  spoke_health_interval: 1s\n"
                  "  spokes:\n"
                  "    degraded_window: 4\n"
                  "    degraded_min_creates: 2\n"
                  "    trial_backoff_min: 1s\n"
                  "    trial_backoff_max: 2s\n");
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");

  const std::string spoke_name = UniqueId("monitor-faulty");
  auto proxy = FaultyEngineProxy::Start((dir.path / "engine2.sock").string(), rig.docker_sock2);
  REQUIRE(proxy.ok());
  JoinedSpoke spoke =
      JoinSpoke(dir.path, hub_config, cluster_port, (*proxy)->socket_path(), rig, spoke_name);
  spoke.Serve();

  auto create = [&](const std::string& box_id) {
    const auto made = McpCall(hub.url, "", "create_llmbox", {{"box_id", box_id}},
                              dir.path / ("create-" + box_id + ".log"));
    INFO(made.log);
    REQUIRE(made.exit_code == 0);
    return ResultOf(made).value("spoke", "");
  };
  auto destroy = [&](const std::string& box_id) {
    const auto destroyed = McpCall(hub.url, "", "destroy_llmbox", {{"box_id", box_id}},
                                   dir.path / ("destroy-" + box_id + ".log"));
    INFO(destroyed.log);
    CHECK(destroyed.exit_code == 0);
  };

  // Healthy: the joined spoke takes the box once the hub has its health.
  hub.process.WaitForLog("spoke " + spoke_name + ": answers its health checks");
  const std::string first = UniqueId("monitor");
  const std::string where = create(first);
  REQUIRE(where == spoke_name);
  CHECK(ContainersOf(rig.docker_sock2, first) == 1);
  destroy(first);

  // Broken: each create fails there and is retried on the local spoke, until the joined
  // spoke is degraded (2 of 2 failed) and placement passes it over.
  (*proxy)->SetBroken(true);
  for (int i = 0; i < 2; ++i) {
    const std::string box_id = UniqueId("monitor");
    CHECK(create(box_id) == "local");
    CHECK(ContainersOf(rig.docker_sock, box_id) == 1);
    // Nothing left behind on the broken spoke (unless both spokes share one engine, as when
    // LLMBOX_TEST_DOCKER_SOCK points engine 1 at engine 2).
    if (rig.docker_sock != rig.docker_sock2) CHECK(ContainersOf(rig.docker_sock2, box_id) == 0);
    destroy(box_id);
  }
  CHECK((*proxy)->refused_creates() >= 2);
  hub.process.WaitForLog("spoke " + spoke_name + ": degraded, out of placement");
  const std::string passed_over = UniqueId("monitor");
  CHECK(create(passed_over) == "local");
  const std::string log = ReadFileOrEmpty(dir.path / ("create-" + passed_over + ".log"));
  CHECK(log.find("trying spoke") == std::string::npos);  // not tried there at all
  // Trials keep failing while it is broken.
  hub.process.WaitForLog("spoke " + spoke_name + ": trial create failed");

  // Healed: a trial succeeds, its box is taken down, and placement takes the spoke again.
  (*proxy)->SetBroken(false);
  hub.process.WaitForLog("spoke " + spoke_name + ": trial create succeeded");
  // The trial boxes it made, by the hub's log.
  std::vector<std::string> trials;
  const std::string hub_log = hub.process.Log();
  const std::regex trial_line("degraded; trying a create \\((llmbox-trial-[0-9a-f]+)\\)");
  for (auto it = std::sregex_iterator(hub_log.begin(), hub_log.end(), trial_line);
       it != std::sregex_iterator(); ++it) {
    trials.push_back((*it)[1]);
  }
  CHECK(trials.size() >= 2);
  const std::string back = UniqueId("monitor");
  CHECK(create(back) == spoke_name);
  CHECK(ContainersOf(rig.docker_sock2, back) == 1);
  for (const std::string& trial : trials) CHECK(ContainersOf(rig.docker_sock2, trial) == 0);
  destroy(back);
  destroy(passed_over);

  CHECK(spoke.Stop() == 0);
  const auto removed =
      RunCli({LLMBOX_HUB_BIN, "spoke", "remove", "--name", spoke_name, "--config", hub_config},
             dir.path / "remove.log");
  CHECK(removed.exit_code == 0);
  CHECK(hub.process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
