#include "tests/e2e/cluster_helpers.h"

#include <chrono>
#include <fstream>
#include <regex>

#include <catch2/catch.hpp>

#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {

namespace fs = std::filesystem;

CallResult Run(const std::vector<std::string>& argv, const fs::path& log) {
  ChildProcess process(argv, log);
  const int exit_code = process.Wait(std::chrono::seconds(120));
  return {exit_code, process.Log()};
}

std::size_t ContainersOf(const std::string& socket, const std::string& box_id) {
  auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = socket});
  REQUIRE(engine.ok());
  auto containers = (*engine)->ListContainers({{spoke::box::BoxManager::kBoxIdLabel, box_id}});
  REQUIRE(containers.ok());
  return containers->size();
}

std::string WriteSpokeConfig(const fs::path& dir, const RigEnv& rig, const std::string& name,
                             int port, const std::string& tls_extra) {
  std::ofstream(dir / "spoke.yaml")
      << "spoke:\n  name: " << name << "\n  listen: 127.0.0.1:" << port
      << "\n  state_dir: spoke-state\n"
      << "tls:\n  cert_file: tls/spoke.crt\n  key_file: tls/spoke.key\n  ca_file: tls/ca.crt\n"
      << tls_extra << "docker:\n  socket: " << rig.docker_sock2 << "\n"
      << "boxes:\n  default_image: " << rig.box_image << "\n  claude_bin: " << rig.standin_claude
      << "\n  memory: 1GiB\n  stop_grace: 1s\n"
      << "log:\n  level: debug\n  format: json\n";
  return (dir / "spoke.yaml").string();
}

std::string CreateJoinToken(const fs::path& dir, const std::string& hub_config,
                            const std::string& name) {
  const auto created = Run({LLMBOX_HUB_BIN, "spoke", "token", "create", "--name", name, "--ttl",
                            "10m", "--config", hub_config},
                           dir / "token.log");
  INFO(created.log);
  REQUIRE(created.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(created.log, m,
                            std::regex("(llmboxjoin1\\.[A-Za-z0-9_-]{43}\\.[0-9a-f]{64})")));
  return m[1];
}

}  // namespace llmbox::testing
