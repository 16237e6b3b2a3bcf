// A network partition between the hub and a joined spoke, end to end: the spoke on the rig's
// second engine advertises a loopback proxy (tests/support/loopback_proxy.h) in front of its
// gRPC port; closing the proxy cuts the hub off while both processes run. The spoke is then
// unreachable, not removed; get_llmbox answers from the registry; destroy_llmbox is queued,
// also across a hub killed and restarted meanwhile; and when the proxy opens again the
// queued destroys complete (the containers are gone from the engine) and the spoke is ready.

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/loopback_proxy.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST_CASE(
    "a partitioned spoke is unreachable not removed and its queued destroys complete when it "
    "returns also across a hub restart",
    "[e2e][cluster][unreachable]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-unreachable-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  AddToHubSection(dir.path / "hub.yaml", "  spoke_health_interval: 1s\n  reconcile_interval: 2s\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  const std::string spoke_name = UniqueId("unreach");

  auto hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-1.log");
  const std::string cluster_port = hub->process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string token = CreateJoinToken(dir.path, hub_config, spoke_name);

  // The spoke listens behind the proxy and advertises the proxy's address.
  const int spoke_port = UnusedLoopbackPort();
  LoopbackProxy proxy(spoke_port);
  const std::string spoke_config =
      WriteSpokeConfig(dir.path, rig, rig.docker_sock2, spoke_name, spoke_port, "");
  const auto joined =
      RunCli({LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
              "--advertise", "127.0.0.1:" + std::to_string(proxy.port()), "--config", spoke_config},
             dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config}, dir.path / "spoke.log");
  spoke.WaitForLog("serving on port");

  int calls = 0;
  auto call = [&](const std::string& tool, const nlohmann::json& arguments) {
    return McpCall(hub->url, "", tool, arguments,
                   dir.path / (tool + "-" + std::to_string(++calls) + ".log"));
  };
  auto shows = [&](const std::string& state, const std::string& step, std::chrono::seconds limit) {
    return WaitForSpokeState(hub->url, "", spoke_name, state, dir.path / step, limit);
  };
  REQUIRE(shows("ready", "ready-1", 60s));

  const std::string first = UniqueId("unreach-first");
  const std::string second = UniqueId("unreach-second");
  const std::string kept = UniqueId("unreach-kept");
  for (const std::string& id : {first, second, kept}) {
    const auto made = call("create_llmbox", {{"box_id", id}, {"spoke", spoke_name}});
    INFO(made.log);
    REQUIRE(made.exit_code == 0);
    REQUIRE(ContainersOf(rig.docker_sock2, id) == 1);
  }

  proxy.Close();  // the partition: the spoke's port is closed to the hub; both still run
  CHECK(shows("unreachable", "unreachable", 90s));

  const auto got = call("get_llmbox", {{"box_id", first}});
  INFO(got.log);
  REQUIRE(got.exit_code == 0);
  const nlohmann::json shown = ResultOf(got);
  CHECK(shown["status"] == "pending");  // the registry's last word, not gone
  CHECK(shown.value("spoke_unreachable", "").find("spoke " + spoke_name) == 0);

  const auto destroyed = call("destroy_llmbox", {{"box_id", first}});
  INFO(destroyed.log);
  REQUIRE(destroyed.exit_code == 0);
  const nlohmann::json answer = ResultOf(destroyed);
  CHECK(answer.value("queued", false));
  CHECK(answer.value("note", "").find("spoke " + spoke_name) == 0);
  CHECK(ContainersOf(rig.docker_sock2, first) == 1);  // not yet: the spoke was not reached

  // The hub dies during the partition and comes back: the queued destroy is still there.
  REQUIRE(kill(hub->process.pid(), SIGKILL) == 0);
  CHECK(hub->process.Wait(20s) == 128 + SIGKILL);
  hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-2.log");
  const auto after = call("get_llmbox", {{"box_id", first}});
  INFO(after.log);
  REQUIRE(after.exit_code == 0);
  CHECK(ResultOf(after).contains("destroy_queued_at"));
  const auto again = call("destroy_llmbox", {{"box_id", second}});
  INFO(again.log);
  REQUIRE(again.exit_code == 0);
  CHECK(ResultOf(again).value("queued", false));

  proxy.Open();  // healed
  CHECK(Eventually(120s, [&] {
    return ContainersOf(rig.docker_sock2, first) == 0 &&
           ContainersOf(rig.docker_sock2, second) == 0;
  }));
  CHECK(shows("ready", "ready-2", 60s));
  for (const std::string& id : {first, second}) {
    const auto gone = call("get_llmbox", {{"box_id", id}});
    CHECK(gone.exit_code == 1);
    CHECK(ErrorOf(gone).find("no box") != std::string::npos);
  }
  // The box nobody destroyed lives on.
  CHECK(ContainersOf(rig.docker_sock2, kept) == 1);
  const auto alive = call("get_llmbox", {{"box_id", kept}});
  REQUIRE(alive.exit_code == 0);
  CHECK(ResultOf(alive)["status"] == "pending");
  CHECK(!ResultOf(alive).contains("spoke_unreachable"));
  CHECK(call("destroy_llmbox", {{"box_id", kept}}).exit_code == 0);
  CHECK(ContainersOf(rig.docker_sock2, kept) == 0);

  // Per box, in the logs: queued, then completed.
  const std::string log =
      ReadFileOrEmpty(dir.path / "hub-1.log") + ReadFileOrEmpty(dir.path / "hub-2.log");
  CHECK(log.find("box " + first + ": destroy queued") != std::string::npos);
  CHECK(log.find("box " + first + ": the destroy queued for spoke " + spoke_name +
                 " is complete") != std::string::npos);
  CHECK(spoke.Stop() == 0);
  CHECK(hub->process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
