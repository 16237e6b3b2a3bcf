// tests/e2e/cluster_helpers.cc
#include "tests/e2e/cluster_helpers.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"

namespace llmbox::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

CallResult RunCli(const std::vector<std::string>& argv, const fs::path& log) {
  ChildProcess process(argv, log);
  const int exit_code = process.Wait(120s);
  return {exit_code, process.Log()};
}

namespace {

std::unique_ptr<spoke::docker::DockerEngine> EngineAt(const std::string& socket) {
  auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = socket});
  REQUIRE(engine.ok());
  return *std::move(engine);
}

}  // namespace

std::size_t ContainersOf(const std::string& socket, const std::string& box_id) {
  auto containers =
      EngineAt(socket)->ListContainers({{spoke::box::BoxManager::kBoxIdLabel, box_id}});
  REQUIRE(containers.ok());
  return containers->size();
}

std::size_t NetworksOf(const std::string& socket, const std::string& box_id) {
  auto networks = EngineAt(socket)->ListNetworks({{spoke::box::BoxManager::kBoxIdLabel, box_id}});
  REQUIRE(networks.ok());
  return networks->size();
}

std::string CreateJoinToken(const fs::path& dir, const std::string& hub_config,
                            const std::string& name) {
  const auto created = RunCli({LLMBOX_HUB_BIN, "spoke", "token", "create", "--name", name, "--ttl",
                               "10m", "--config", hub_config},
                              dir / ("token-" + name + ".log"));
  INFO(created.log);
  REQUIRE(created.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(created.log, m,
                            std::regex("(llmboxjoin1\\.[A-Za-z0-9_-]{43}\\.[0-9a-f]{64})")));
  return m[1];
}

std::string WriteSpokeConfig(const fs::path& dir, const RigEnv& rig,
                             const std::string& docker_socket, const std::string& name, int port,
                             const std::string& tls_extra, const std::string& extra_yaml) {
  std::ofstream(dir / "spoke.yaml")
      << "spoke:\n  name: " << name << "\n  listen: 127.0.0.1:" << port
      << "\n  state_dir: spoke-state\n"
      << "tls:\n  cert_file: tls/spoke.crt\n  key_file: tls/spoke.key\n  ca_file: tls/ca.crt\n"
      << tls_extra << "docker:\n  socket: " << docker_socket << "\n"
      << "boxes:\n  default_image: " << rig.box_image << "\n  claude_bin: " << rig.standin_claude
      << "\n  memory: 1GiB\n  stop_grace: 1s\n"
      << "log:\n  level: debug\n  format: json\n"
      << extra_yaml;
  return (dir / "spoke.yaml").string();
}

void JoinedSpoke::Serve(const std::string& log_name) {
  process = std::make_unique<ChildProcess>(
      std::vector<std::string>{LLMBOX_SPOKE_BIN, "serve", "--config", config}, dir / log_name);
  process->WaitForLog("serving on port");
}

int JoinedSpoke::Stop() {
  if (process == nullptr) return 0;
  const int code = process->Stop();
  process.reset();
  return code;
}

JoinedSpoke JoinSpoke(const fs::path& dir, const std::string& hub_config,
                      const std::string& cluster_port, const std::string& docker_socket,
                      const RigEnv& rig, const std::string& name, const std::string& extra_yaml,
                      const std::string& advertise) {
  JoinedSpoke spoke{.name = name, .dir = dir / name, .port = UnusedLoopbackPort()};
  fs::create_directories(spoke.dir);
  spoke.config = WriteSpokeConfig(spoke.dir, rig, docker_socket, name, spoke.port, "", extra_yaml);
  const std::string token = CreateJoinToken(dir, hub_config, name);
  const auto joined = RunCli(
      {LLMBOX_SPOKE_BIN, "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
       "--advertise", advertise.empty() ? "127.0.0.1:" + std::to_string(spoke.port) : advertise,
       "--config", spoke.config},
      spoke.dir / "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  return spoke;
}

std::optional<nlohmann::json> ListedSpoke(const std::string& output, const std::string& name) {
  // The last result: a log a caller reuses holds every call's.
  const auto at = output.rfind("RESULT ");
  if (at == std::string::npos) return std::nullopt;
  const auto line = output.substr(at + 7, output.find('\n', at) - at - 7);
  const auto result = nlohmann::json::parse(line, nullptr, false);
  if (!result.is_object() || !result.contains("spokes") || !result["spokes"].is_array()) {
    return std::nullopt;
  }
  for (const auto& spoke : result["spokes"]) {
    if (spoke.is_object() && spoke.value("name", "") == name) return spoke;
  }
  return std::nullopt;
}

bool Eventually(std::chrono::seconds limit, const std::function<bool()>& check) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (check()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1s);
  }
}

bool WaitForSpokeState(const std::string& hub_url, const std::string& key, const std::string& name,
                       const std::string& state, const fs::path& log_prefix,
                       std::chrono::seconds limit) {
  int n = 0;
  for (auto deadline = std::chrono::steady_clock::now() + limit;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(250ms)) {
    const auto listed = McpCall(hub_url, key, "list_spokes", {{"limit", 500}},
                                log_prefix.string() + "-" + std::to_string(++n) + ".log");
    const auto spoke = ListedSpoke(listed.log, name);
    // A spoke not asked yet shows ready but not connected: placement waits for its answer.
    if (spoke.has_value() && spoke->value("state", "") == state &&
        (state != "ready" || spoke->value("connected", false))) {
      return true;
    }
  }
  return false;
}

std::string CreateBoxForUrl(const std::string& hub_url, const std::string& key,
                            const nlohmann::json& arguments, const fs::path& log) {
  const auto created = McpCall(hub_url, key, "create_llmbox", arguments, log);
  INFO(created.log);
  REQUIRE(created.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(created.log, m, std::regex("\"auth_url\":\"([^\"]+)\"")));
  return m[1];
}

bool ActivateBox(const std::string& hub_url, const std::string& auth_url, const fs::path& log) {
  // The URL's origin is the hub's public one; the token is what matters.
  const std::string token = auth_url.substr(auth_url.rfind('/') + 1);
  ChildProcess activate({"node", NodeScript("activate.mjs"), hub_url + "/auth/" + token,
                         "standin-ok-1234#state-abcdef"},
                        log);
  return activate.Wait(120s) == 0;
}

}  // namespace llmbox::testing
