// A spoke whose engine fails every create, end to end: the hub with its local spoke on the
// rig's engine 1 and a joined spoke on engine 2 behind a fault-injecting proxy
// (tests/support/faulty_engine_proxy.h). While the proxy is broken, the joined spoke's
// creates fail, each is retried on the local spoke, and after degraded_min_creates the joined
// spoke is degraded and placement passes it over; once the proxy is fixed a trial create
// succeeds and the joined spoke takes boxes again.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/faulty_engine_proxy.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The containers of box `box_id` on the engine at `socket`.
std::size_t BoxContainers(const std::string& socket, const std::string& box_id) {
  auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = socket});
  REQUIRE(engine.ok());
  auto containers = (*engine)->ListContainers({{spoke::box::BoxManager::kBoxIdLabel, box_id}});
  REQUIRE(containers.ok());
  return containers->size();
}

CallResult RunCli(const std::vector<std::string>& argv, const fs::path& log) {
  ChildProcess process(argv, log);
  const int exit_code = process.Wait(120s);
  return {exit_code, process.Log()};
}

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
  const auto token_made = RunCli({LLMBOX_HUB_BIN, "spoke", "token", "create", "--name", spoke_name,
                                  "--ttl", "10m", "--config", hub_config},
                                 dir.path / "token.log");
  REQUIRE(token_made.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(token_made.log, m,
                            std::regex("(llmboxjoin1\\.[A-Za-z0-9_-]{43}\\.[0-9a-f]{64})")));
  const std::string token = m[1];

  auto proxy = FaultyEngineProxy::Start((dir.path / "engine2.sock").string(), rig.docker_sock2);
  REQUIRE(proxy.ok());
  const int spoke_port = UnusedLoopbackPort();
  std::ofstream(dir.path / "spoke.yaml")
      << "spoke:\n  name: " << spoke_name << "\n  listen: 127.0.0.1:" << spoke_port
      << "\n  state_dir: spoke-state\n"
      << "tls:\n  cert_file: tls/spoke.crt\n  key_file: tls/spoke.key\n  ca_file: tls/ca.crt\n"
      << "docker:\n  socket: " << (*proxy)->socket_path() << "\n"
      << "boxes:\n  default_image: " << rig.box_image << "\n  claude_bin: " << rig.standin_claude
      << "\n  memory: 1GiB\n  stop_grace: 1s\n"
      << "log:\n  level: debug\n  format: json\n";
  const std::string spoke_config = (dir.path / "spoke.yaml").string();
  const auto joined =
      RunCli({LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
              "--advertise", "127.0.0.1:" + std::to_string(spoke_port), "--config", spoke_config},
             dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config}, dir.path / "spoke.log");
  spoke.WaitForLog("serving on port");

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
  hub.process.WaitForLog("spoke " + spoke_name + ": first health answer");
  const std::string first = UniqueId("monitor");
  const std::string where = create(first);
  REQUIRE(where == spoke_name);
  CHECK(BoxContainers(rig.docker_sock2, first) == 1);
  destroy(first);

  // Broken: each create fails there and is retried on the local spoke, until the joined
  // spoke is degraded (2 of 2 failed) and placement passes it over.
  (*proxy)->SetBroken(true);
  for (int i = 0; i < 2; ++i) {
    const std::string box_id = UniqueId("monitor");
    CHECK(create(box_id) == "local");
    CHECK(BoxContainers(rig.docker_sock, box_id) == 1);
    // Nothing left behind on the broken spoke (unless both spokes share one engine, as when
    // LLMBOX_TEST_DOCKER_SOCK points engine 1 at engine 2).
    if (rig.docker_sock != rig.docker_sock2) CHECK(BoxContainers(rig.docker_sock2, box_id) == 0);
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
  CHECK(BoxContainers(rig.docker_sock2, back) == 1);
  for (const std::string& trial : trials) CHECK(BoxContainers(rig.docker_sock2, trial) == 0);
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
