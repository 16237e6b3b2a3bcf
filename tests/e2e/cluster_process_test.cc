// A remote spoke, end to end: the hub with its enrollment listener, a one-time join token from
// `llmbox-hub spoke token create`, `llmbox-spoke join` and `llmbox-spoke serve` on the rig's
// second engine, a box made on that spoke through MCP before and after a hub restart, the
// spoke's certificate renewed, and the spoke removed.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/grpc_tls.h"
#include "common/pki.h"
#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/test_pki.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Whether list_spokes (its `RESULT <json>` line) shows `name` as a connected remote spoke.
bool ListedConnected(const std::string& output, const std::string& name) {
  const auto spoke = ListedSpoke(output, name);
  return spoke.has_value() && spoke->value("state", "") == "ready" &&
         spoke->value("connected", false) && !spoke->value("local", true);
}

TEST_CASE("a spoke joins with a one-time token and the hub runs boxes on it across a restart",
          "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-cluster-e2e");
  // The local spoke takes one box and the joined one 20: placement prefers the joined one.
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "    max_boxes: 1\n",
              "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  const std::string spoke_name = UniqueId("remote");

  auto hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-1.log");
  const std::string cluster_port = hub->process.WaitForLog("enrollment service on port ([0-9]+)");

  const std::string token = CreateJoinToken(dir.path, hub_config, spoke_name);

  const int spoke_port = UnusedLoopbackPort();
  const std::string spoke_config =
      WriteSpokeConfig(dir.path, rig, rig.docker_sock2, spoke_name, spoke_port, /*tls_extra=*/"");
  const std::vector<std::string> join = {
      LLMBOX_SPOKE_BIN, "join",       "--hub",       "127.0.0.1:" + cluster_port,
      "--token",        token,        "--advertise", "127.0.0.1:" + std::to_string(spoke_port),
      "--config",       spoke_config, "--label",     "zone=e2e"};
  const auto joined = RunCli(join, dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  CHECK(joined.log.find("joined as spoke \"" + spoke_name + "\"") != std::string::npos);
  CHECK((fs::status(dir.path / "tls/spoke.key").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));

  SECTION("the same token a second time is refused with the hub's reason") {
    const auto again = RunCli(join, dir.path / "join-again.log");
    INFO(again.log);
    CHECK(again.exit_code == 1);
    CHECK(again.log.find("was already used") != std::string::npos);
  }

  SECTION("the hub creates, gets and destroys a box on the joined spoke, also after a restart") {
    ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config},
                       dir.path / "spoke.log");
    spoke.WaitForLog("serving on port");

    // Placeable once the hub's next health round has heard from it.
    REQUIRE(WaitForSpokeState(hub->url, "", spoke_name, "ready", dir.path / "spokes-1"));

    const auto listed = RunCli({LLMBOX_HUB_BIN, "spoke", "list", "--config", hub_config},
                               dir.path / "spoke-list.log");
    CHECK(listed.exit_code == 0);
    CHECK(std::regex_search(listed.log, std::regex(spoke_name + " +127\\.0\\.0\\.1:" +
                                                   std::to_string(spoke_port) + " .*zone=e2e")));

    // With `named`, the create names the spoke; without, placement picks it (the joined spoke
    // has the most room).
    auto box_round_trip = [&](const std::string& box_id, const std::string& tag, bool named) {
      nlohmann::json arguments = {{"box_id", box_id}};
      if (named) arguments["spoke"] = spoke_name;
      const auto made =
          McpCall(hub->url, "", "create_llmbox", arguments, dir.path / ("create-" + tag + ".log"));
      INFO(made.log);
      REQUIRE(made.exit_code == 0);
      CHECK(made.log.find("\"spoke\":\"" + spoke_name + "\"") != std::string::npos);
      const auto got = McpCall(hub->url, "", "get_llmbox", {{"box_id", box_id}},
                               dir.path / ("get-" + tag + ".log"));
      INFO(got.log);
      REQUIRE(got.exit_code == 0);
      CHECK(got.log.find("\"status\":\"pending\"") != std::string::npos);
      CHECK(got.log.find("\"spoke\":\"" + spoke_name + "\"") != std::string::npos);
      // The box is a container on engine 2, not on engine 1.
      CHECK(ContainersOf(rig.docker_sock2, box_id) == 1);
      CHECK(ContainersOf(rig.docker_sock, box_id) == 0);
      const auto destroyed = McpCall(hub->url, "", "destroy_llmbox", {{"box_id", box_id}},
                                     dir.path / ("destroy-" + tag + ".log"));
      INFO(destroyed.log);
      CHECK(destroyed.exit_code == 0);
    };
    box_round_trip(UniqueId("onremote"), "1", /*named=*/false);

    REQUIRE(hub->process.Stop() == 0);
    hub = std::make_unique<HubProcess>(hub_config, dir.path / "hub-2.log");
    const auto after =
        McpCall(hub->url, "", "list_spokes", nlohmann::json::object(), dir.path / "spokes-2.log");
    INFO(after.log);
    REQUIRE(after.exit_code == 0);
    CHECK(ListedConnected(after.log, spoke_name));
    box_round_trip(UniqueId("onremote"), "2", /*named=*/true);

    // The spoke renews its certificate with the restarted hub (mutual TLS, current certificate).
    const std::string new_cluster_port =
        hub->process.WaitForLog("enrollment service on port ([0-9]+)");
    const auto renewed = RunCli({LLMBOX_SPOKE_BIN, "renew", "--hub",
                                 "127.0.0.1:" + new_cluster_port, "--config", spoke_config},
                                dir.path / "renew.log");
    INFO(renewed.log);
    CHECK(renewed.exit_code == 0);
    CHECK(renewed.log.find("renewed spoke \"" + spoke_name + "\"") != std::string::npos);

    // Removed: the hub stops dialing it and it can no longer renew.
    const auto removed =
        RunCli({LLMBOX_HUB_BIN, "spoke", "remove", "--name", spoke_name, "--config", hub_config},
               dir.path / "remove.log");
    CHECK(removed.exit_code == 0);
    const auto refused = RunCli({LLMBOX_SPOKE_BIN, "renew", "--hub",
                                 "127.0.0.1:" + new_cluster_port, "--config", spoke_config},
                                dir.path / "renew-refused.log");
    CHECK(refused.exit_code == 1);
    CHECK(refused.log.find("is not enrolled") != std::string::npos);
    CHECK(spoke.Stop() == 0);
  }

  CHECK(hub->process.Stop() == 0);
  // Neither side logged the token's secret.
  const std::string secret = token.substr(token.find('.') + 1, 43);
  for (const char* log : {"hub-1.log", "hub-2.log", "spoke.log", "join.log"}) {
    CHECK(ReadFileOrEmpty(dir.path / log).find(secret) == std::string::npos);
  }
}

TEST_CASE("a serving spoke renews its certificate by itself before it expires", "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("llmbox-cluster-renew-e2e");
  // Certificates of one hour that are due for renewal three seconds after they are issued.
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "",
              "cluster:\n  listen: 127.0.0.1:0\n  cert_validity: 1h\n  renew_before: 3597s\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  const std::string spoke_name = UniqueId("renewing");
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string token = CreateJoinToken(dir.path, hub_config, spoke_name);
  const int spoke_port = UnusedLoopbackPort();
  const std::string spoke_config = WriteSpokeConfig(dir.path, rig, rig.docker_sock2, spoke_name,
                                                    spoke_port, "  renew_check: 1s\n");
  const auto joined =
      RunCli({LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
              "--advertise", "127.0.0.1:" + std::to_string(spoke_port), "--config", spoke_config},
             dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  const std::string first_cert = ReadFileOrEmpty(dir.path / "tls/spoke.crt");
  REQUIRE_FALSE(first_cert.empty());

  ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config}, dir.path / "spoke.log");
  spoke.WaitForLog("serving on port");
  // Renewed with the hub it joined (enrollment.json), twice: the second renewal presents the
  // certificate of the first, which the hub now holds as the spoke's.
  spoke.WaitForLog("renewed its certificate with the hub at 127\\.0\\.0\\.1:" + cluster_port);
  auto renewals = [&spoke] {
    const std::string log = spoke.Log();
    int count = 0;
    for (size_t at = log.find("renewed its certificate"); at != std::string::npos;
         at = log.find("renewed its certificate", at + 1)) {
      ++count;
    }
    return count;
  };
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       renewals() < 2 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(200ms);
  }
  REQUIRE(renewals() >= 2);
  CHECK(ReadFileOrEmpty(dir.path / "tls/spoke.crt") != first_cert);
  // The hub still reaches the spoke, which now serves a renewed certificate.
  CHECK(WaitForSpokeState(hub.url, "", spoke_name, "ready", dir.path / "spokes"));
  CHECK(spoke.Stop() == 0);
  CHECK(hub.process.Stop() == 0);
  CHECK(spoke.Log().find("could not renew") == std::string::npos);
}

// Health from the spoke at `port`, presenting `hub` (a certificate and key) over mutual TLS.
grpc::Status SpokeHealth(int port, const common::TlsPems& hub) {
  auto stub = v1::BoxService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), common::MutualTlsChannelCredentials(hub)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::HealthResponse response;
  return stub->Health(&context, v1::HealthRequest(), &response);
}

TEST_CASE(
    "a joined spoke refuses a hub certificate from the cluster CA that it was not told about, "
    "also after a restart, and the hub still reaches it",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("hubid-cluster-pin-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  const std::string spoke_name = UniqueId("hubid");
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string token = CreateJoinToken(dir.path, hub_config, spoke_name);
  const int spoke_port = UnusedLoopbackPort();
  const std::string spoke_config =
      WriteSpokeConfig(dir.path, rig, rig.docker_sock2, spoke_name, spoke_port, "");
  const auto joined =
      RunCli({LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
              "--advertise", "127.0.0.1:" + std::to_string(spoke_port), "--config", spoke_config},
             dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  CHECK(ReadFileOrEmpty(dir.path / "spoke-state/hub_pins.json").find("hub_key_sha256") !=
        std::string::npos);

  // The hub's own pair, and a pair with the hub's name signed by the same cluster CA.
  const fs::path cluster = dir.path / "state/cluster";
  const common::TlsPems real_hub{.cert_pem = ReadFileOrEmpty(cluster / "hub.crt"),
                                 .key_pem = ReadFileOrEmpty(cluster / "hub.key"),
                                 .ca_pem = ReadFileOrEmpty(cluster / "ca.crt")};
  REQUIRE_FALSE(real_hub.key_pem.empty());
  const common::CertifiedKey ca{.key_pem = ReadFileOrEmpty(cluster / "ca.key"),
                                .cert_pem = real_hub.ca_pem};
  const common::TlsPems rogue = IssueForTest(ca, std::string(common::kHubIdentity), "llmbox-hub");

  for (const char* log : {"spoke-1.log", "spoke-2.log"}) {  // the second reads the pins from disk
    ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config}, dir.path / log);
    spoke.WaitForLog("serving on port");
    CHECK(spoke.Log().find("with one of 1 pinned key(s)") != std::string::npos);
    const grpc::Status as_hub = SpokeHealth(spoke_port, real_hub);
    INFO(as_hub.error_message());
    CHECK(as_hub.ok());
    const grpc::Status as_rogue = SpokeHealth(spoke_port, rogue);
    CHECK(as_rogue.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(as_rogue.error_message().find("not one this spoke was told about") != std::string::npos);
    spoke.WaitForLog("refused a call from the hub");
    // The serving hub dials it with its pinned key.
    bool connected = false;
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         !connected && std::chrono::steady_clock::now() < deadline;
         std::this_thread::sleep_for(500ms)) {
      const auto spokes = McpCall(hub.url, "", "list_spokes", nlohmann::json::object(),
                                  dir.path / (std::string(log) + ".spokes"));
      connected = ListedConnected(spokes.log, spoke_name);
    }
    CHECK(connected);
    CHECK(spoke.Stop() == 0);
  }
  // Renewal goes to the enrollment listener (which rereads the hub's renewed files) with a
  // pinned key, and the pins stay.
  const std::string pins = ReadFileOrEmpty(dir.path / "spoke-state/hub_pins.json");
  const auto renewed = RunCli(
      {LLMBOX_SPOKE_BIN, "renew", "--hub", "127.0.0.1:" + cluster_port, "--config", spoke_config},
      dir.path / "renew.log");
  INFO(renewed.log);
  CHECK(renewed.exit_code == 0);
  CHECK(ReadFileOrEmpty(dir.path / "spoke-state/hub_pins.json") == pins);
  const auto removed =
      RunCli({LLMBOX_HUB_BIN, "spoke", "remove", "--name", spoke_name, "--config", hub_config},
             dir.path / "remove.log");
  CHECK(removed.exit_code == 0);
  CHECK(hub.process.Stop() == 0);
}

TEST_CASE(
    "llmbox-hub cluster rotate-identity keeps a joined spoke working, and afterwards the spoke "
    "refuses the hub's previous key",
    "[e2e][cluster]") {
  const auto& rig = RigWithSecondEngine();
  HubDir dir("hubid-cluster-rotate-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  const std::string spoke_name = UniqueId("hubid");
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");
  const std::string token = CreateJoinToken(dir.path, hub_config, spoke_name);
  const int spoke_port = UnusedLoopbackPort();
  const std::string spoke_config =
      WriteSpokeConfig(dir.path, rig, rig.docker_sock2, spoke_name, spoke_port, "");
  const auto joined =
      RunCli({LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
              "--advertise", "127.0.0.1:" + std::to_string(spoke_port), "--config", spoke_config},
             dir.path / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  ChildProcess spoke({LLMBOX_SPOKE_BIN, "serve", "--config", spoke_config}, dir.path / "spoke.log");
  spoke.WaitForLog("serving on port");

  std::string last;
  auto connected = [&](const std::string& tag) {
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(500ms)) {
      const auto spokes = McpCall(hub.url, "", "list_spokes", nlohmann::json::object(),
                                  dir.path / ("spokes-" + tag + ".log"));
      if (ListedConnected(spokes.log, spoke_name)) return true;
      last = spokes.log;
    }
    UNSCOPED_INFO("list_spokes said: " << last << "\nhub log: " << hub.process.Log());
    return false;
  };
  REQUIRE(connected("before"));
  const fs::path cluster = dir.path / "state/cluster";
  const common::TlsPems old_hub{.cert_pem = ReadFileOrEmpty(cluster / "hub.crt"),
                                .key_pem = ReadFileOrEmpty(cluster / "hub.key"),
                                .ca_pem = ReadFileOrEmpty(cluster / "ca.crt")};

  const auto rotated = RunCli(
      {LLMBOX_HUB_BIN, "cluster", "rotate-identity", "--overlap", "3s", "--config", hub_config},
      dir.path / "rotate.log");
  INFO(rotated.log);
  REQUIRE(rotated.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(rotated.log, m, std::regex("new hub key sha256:([0-9a-f]{64})")));
  const std::string new_key = m[1];
  // A second rotation while this one runs is refused.
  const auto again = RunCli({LLMBOX_HUB_BIN, "cluster", "rotate-identity", "--config", hub_config},
                            dir.path / "rotate-again.log");
  CHECK(again.exit_code == 1);
  CHECK(again.log.find("already in progress") != std::string::npos);

  // The overlap: the spoke takes both keys, the hub still reaches it with the old one.
  hub.process.WaitForLog("rotating the hub's key");
  spoke.WaitForLog("the hub set the hub keys it accepts \\(2\\)");
  CHECK(connected("overlap"));
  // The switch: the hub dials with the new key, the spoke accepts only it.
  hub.process.WaitForLog("switched to the new hub key sha256:" + new_key);
  spoke.WaitForLog("the hub set the hub keys it accepts \\(1\\)");
  CHECK(connected("after"));
  const common::TlsPems new_hub{.cert_pem = ReadFileOrEmpty(cluster / "hub.crt"),
                                .key_pem = ReadFileOrEmpty(cluster / "hub.key"),
                                .ca_pem = old_hub.ca_pem};
  CHECK(new_hub.key_pem != old_hub.key_pem);
  CHECK(ReadFileOrEmpty(dir.path / "spoke-state/hub_pins.json").find(new_key) != std::string::npos);
  const grpc::Status as_old = SpokeHealth(spoke_port, old_hub);
  CHECK(as_old.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status as_new = SpokeHealth(spoke_port, new_hub);
  INFO(as_new.error_message());
  CHECK(as_new.ok());
  // Renewal with the hub's enrollment listener, which presents the new key once it has
  // reread its files (every 5 s).
  CallResult renewed;
  for (int attempt = 0; attempt < 10; ++attempt) {
    renewed = RunCli(
        {LLMBOX_SPOKE_BIN, "renew", "--hub", "127.0.0.1:" + cluster_port, "--config", spoke_config},
        dir.path / "renew.log");
    if (renewed.exit_code == 0) break;
    std::this_thread::sleep_for(1s);
  }
  INFO(renewed.log);
  CHECK(renewed.exit_code == 0);

  CHECK(spoke.Stop() == 0);
  const auto removed =
      RunCli({LLMBOX_HUB_BIN, "spoke", "remove", "--name", spoke_name, "--config", hub_config},
             dir.path / "remove.log");
  CHECK(removed.exit_code == 0);
  CHECK(hub.process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
