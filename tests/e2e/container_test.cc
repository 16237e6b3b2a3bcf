// The container images (deploy/container): build-images builds the hub and spoke images on the
// rig's engine 1 from the same Debian base as the box image, and Debian's docker-compose (v1)
// runs deploy/container/compose.yaml against that engine (the spoke's socket is the engine's),
// with copies of its hub.yaml and spoke.yaml that differ only in ports and the Claude binary
// (the rig's stand-in). The spoke joins as docs/container.md says, and a box lives and goes
// through the official SDK client against the hub's published port.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "spoke/docker/curl_engine.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kContainerDir = fs::path(LLMBOX_SOURCE_DIR) / "deploy" / "container";

// Replaces the one occurrence of `from` in the file at `path` with `to`.
void ReplaceIn(const fs::path& path, const std::string& from, const std::string& to) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::string content = text.str();
  const size_t at = content.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(content.find(from, at + 1) == std::string::npos);
  content.replace(at, from.size(), to);
  std::ofstream(path) << content;
}

// docker-compose with the compose file's settings in `dir`, as project `project`, against the
// rig's engine 1.
class Compose {
 public:
  Compose(const fs::path& dir, std::string project, std::vector<std::string> settings)
      : dir_(dir), project_(std::move(project)), settings_(std::move(settings)) {}

  // Runs `docker-compose ARGS...` to its end (at most `limit`); its exit code and output.
  CallResult Run(const std::vector<std::string>& args, const std::string& log_name,
                 std::chrono::seconds limit = 120s) const {
    std::vector<std::string> argv = {"env"};
    argv.insert(argv.end(), settings_.begin(), settings_.end());
    const std::vector<std::string> prefix = {"docker-compose",
                                             "--ansi",
                                             "never",
                                             "-p",
                                             project_,
                                             "-f",
                                             (dir_ / "compose.yaml").string()};
    argv.insert(argv.end(), prefix.begin(), prefix.end());
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess compose(argv, dir_ / log_name);
    const int exit_code = compose.Wait(limit);
    return {exit_code, compose.Log()};
  }

  const std::string& project() const { return project_; }

 private:
  fs::path dir_;
  std::string project_;
  std::vector<std::string> settings_;
};

// At the end of the test, whatever happened: the containers' logs into `dir` (hub.log and
// spoke.log, which HubDir searches for activation tokens), `compose down -v` (containers, their
// network and the state volumes), and whatever of the box a failed test left on the engine.
struct TearDown {
  const Compose& compose;
  spoke::docker::DockerEngine& engine;
  std::string box_id;
  ~TearDown() {
    for (const char* service : {"hub", "spoke"}) {
      (void)compose.Run({"logs", "--no-color", service}, std::string(service) + ".log", 60s);
    }
    (void)compose.Run({"down", "-v", "--timeout", "10"}, "compose-down.log", 120s);
    if (auto left = engine.ListContainers({{"io.llmbox.box-id", box_id}}); left.ok()) {
      for (const auto& container : *left) (void)engine.RemoveContainer(container.id, true);
    }
    if (auto networks = engine.ListNetworks({{"io.llmbox.box-id", box_id}}); networks.ok()) {
      for (const auto& network : *networks) (void)engine.RemoveNetwork(network.id);
    }
  }
};

// `pattern`'s first group in `text`; fails the test when it is not there.
std::string Find(const std::string& text, const std::string& pattern) {
  std::smatch match;
  INFO(text.substr(0, 4096));
  REQUIRE(std::regex_search(text, match, std::regex(pattern)));
  return match[1];
}

// Distinct loopback ports nothing listens on now.
std::vector<int> FreePorts(size_t count) {
  std::set<int> ports;
  while (ports.size() < count) ports.insert(UnusedLoopbackPort());
  return {ports.begin(), ports.end()};
}

// Waits (60 s at most) until the hub at `url` answers /healthz with 200 (each try's status in
// a log of its own under `log_prefix`).
void WaitForHealthz(const std::string& url, const fs::path& log_prefix) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (int attempt = 0;
       HttpStatusOfGet(url + "/healthz",
                       log_prefix.string() + "-" + std::to_string(attempt) + ".log") != 200;
       ++attempt) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(200ms);
  }
}

// Waits (90 s at most) until list_spokes shows `name` connected and ready.
void WaitForConnectedSpoke(const std::string& url, const std::string& key, const std::string& name,
                           const fs::path& dir) {
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  for (;;) {
    const auto listed =
        McpCall(url, key, "list_spokes", nlohmann::json::object(), dir / "list-spokes.log");
    if (listed.exit_code == 0) {
      for (const auto& spoke : ResultOf(listed).value("spokes", nlohmann::json::array())) {
        if (spoke.value("name", "") == name && spoke.value("connected", false) &&
            spoke.value("state", "") == "ready") {
          return;
        }
      }
    }
    INFO(listed.log);
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(500ms);
  }
}

TEST_CASE(
    "the hub and spoke images run a box life under the compose file through the official "
    "SDK client",
    "[e2e][hub][container]") {
  const auto& rig = Rig();
  HubDir dir("container-e2e");
  const std::string engine_host = "unix://" + rig.docker_sock;
  const fs::path build = fs::path(LLMBOX_HUB_BIN).parent_path().parent_path();

  // The images, cached by content: a second run with the same binaries builds nothing.
  ChildProcess images({"env", "DOCKER_HOST=" + engine_host,
                       (kContainerDir / "build-images").string(), "--build-dir", build.string()},
                      dir.path / "build-images.log");
  {
    const int built = images.Wait(480s);
    INFO(images.Log());
    REQUIRE(built == 0);
  }

  // The compose file and its configs as shipped, on ports of this run and the rig's stand-in.
  for (const char* file : {"compose.yaml", "hub.yaml", "spoke.yaml"}) {
    fs::copy_file(kContainerDir / file, dir.path / file, fs::copy_options::overwrite_existing);
  }
  const std::vector<int> ports = FreePorts(3);
  const std::string mcp_port = std::to_string(ports[0]);
  const std::string cluster_port = std::to_string(ports[1]);
  const std::string spoke_port = std::to_string(ports[2]);
  ReplaceIn(dir.path / "hub.yaml", "public_url: http://127.0.0.1:8080",
            "public_url: http://127.0.0.1:" + mcp_port);
  ReplaceIn(dir.path / "spoke.yaml", "listen: 0.0.0.0:7443", "listen: 0.0.0.0:" + spoke_port);
  ReplaceIn(dir.path / "spoke.yaml", "claude_bin: /opt/llmbox/claude",
            "claude_bin: " + rig.standin_claude);
  const Compose compose(
      dir.path, UniqueId("img"),
      {"DOCKER_HOST=" + engine_host, "LLMBOX_MCP_PORT=" + mcp_port,
       "LLMBOX_CLUSTER_PORT=" + cluster_port, "LLMBOX_DOCKER_SOCKET=" + rig.docker_sock,
       "LLMBOX_CLAUDE_BIN=" + rig.standin_claude});
  auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = rig.docker_sock});
  REQUIRE(engine.ok());
  EngineHttp engine_http(rig.docker_sock);
  const std::string box_id = UniqueId("img-box");
  TearDown tear_down{compose, **engine, box_id};

  // The hub, healthy from outside on its published port.
  const auto hub_up = compose.Run({"up", "-d", "hub"}, "up-hub.log");
  INFO(hub_up.log);
  REQUIRE(hub_up.exit_code == 0);
  const std::string url = "http://127.0.0.1:" + mcp_port;
  WaitForHealthz(url, dir.path / "healthz");

  // The image's HEALTHCHECK command passes, and the hub runs as its own user.
  CHECK(compose.Run({"exec", "-T", "hub", "/usr/lib/llmbox/hub-healthcheck"}, "health.log")
            .exit_code == 0);
  const auto whoami = compose.Run({"exec", "-T", "hub", "id", "-un"}, "id.log");
  CHECK(whoami.exit_code == 0);
  CHECK(std::regex_search(whoami.log, std::regex("(^|\n)llmbox\n")));

  // The documented enrolment: a key and a join token from the hub's container, the spoke's
  // join, then the spoke.
  const auto key_made = compose.Run({"exec", "-T", "hub", "llmbox-hub", "apikey", "create",
                                     "--name", "compose", "--config", "/etc/llmbox/hub.yaml"},
                                    "apikey.log");
  REQUIRE(key_made.exit_code == 0);
  const std::string key = Find(key_made.log, "(llmbox_[A-Za-z0-9_-]{40,})");
  const auto token_made =
      compose.Run({"exec", "-T", "hub", "llmbox-hub", "spoke", "token", "create", "--name",
                   "spoke-1", "--config", "/etc/llmbox/hub.yaml"},
                  "token.log");
  REQUIRE(token_made.exit_code == 0);
  const std::string token =
      Find(token_made.log, "(llmboxjoin1\\.[A-Za-z0-9_-]{43}\\.[0-9a-f]{64})");
  const auto joined = compose.Run(
      {"run", "--rm", "spoke", "join", "--hub", "127.0.0.1:" + cluster_port, "--token", token,
       "--advertise", "host.docker.internal:" + spoke_port, "--config", "/etc/llmbox/spoke.yaml"},
      "join.log");
  INFO(joined.log);
  REQUIRE(joined.exit_code == 0);
  CHECK(joined.log.find("joined as spoke \"spoke-1\"") != std::string::npos);
  REQUIRE(compose.Run({"up", "-d", "spoke"}, "up-spoke.log").exit_code == 0);

  // The hub dials the spoke in the host's network; placement waits for its first health
  // answer (hub.spoke_health_interval, 10 s), and a create refused before it leaves nothing.
  const auto ready_deadline = std::chrono::steady_clock::now() + 90s;
  CallResult created{-1, ""};
  for (;;) {
    created = McpCall(url, key, "create_llmbox", {{"box_id", box_id}}, dir.path / "create.log");
    if (created.exit_code != 1 ||
        ErrorOf(created).find("has not answered a health check yet") == std::string::npos) {
      break;
    }
    INFO(created.log);
    REQUIRE(std::chrono::steady_clock::now() < ready_deadline);
    std::this_thread::sleep_for(500ms);
  }

  // A box life through the official SDK client.
  const nlohmann::json box = ResultOf(created);
  CHECK(box.value("auth_url", "").rfind(url + "/auth/", 0) == 0);
  const nlohmann::json got =
      ResultOf(McpCall(url, key, "get_llmbox", {{"box_id", box_id}}, dir.path / "get.log"));
  CHECK(got.value("status", "") == "pending");
  CHECK(got.value("spoke", "") == "spoke-1");

  // What the box has on the engine: its container (and the volumes it mounts) and network.
  const auto containers = (*engine)->ListContainers({{"io.llmbox.box-id", box_id}});
  REQUIRE(containers.ok());
  REQUIRE(containers->size() == 1);
  const HttpReply inspected =
      engine_http.Call("GET", "/v1.41/containers/" + containers->front().id + "/json");
  REQUIRE(inspected.status == 200);
  std::vector<std::string> volumes;
  for (const auto& mount :
       nlohmann::json::parse(inspected.body).value("Mounts", nlohmann::json::array())) {
    if (mount.value("Type", "") == "volume") volumes.push_back(mount.value("Name", ""));
  }
  CHECK_FALSE(volumes.empty());  // its /workspace
  const auto networks = (*engine)->ListNetworks({{"io.llmbox.box-id", box_id}});
  REQUIRE(networks.ok());
  CHECK(networks->size() == 1);

  // An upgrade as docs/container.md says (`up -d` with new images; here the same ones,
  // recreated): new containers, the same volumes, and the box lives on.
  const auto recreated =
      compose.Run({"up", "-d", "--force-recreate", "hub", "spoke"}, "recreate.log");
  INFO(recreated.log);
  REQUIRE(recreated.exit_code == 0);
  WaitForHealthz(url, dir.path / "healthz-recreated");
  const nlohmann::json got_again =
      ResultOf(McpCall(url, key, "get_llmbox", {{"box_id", box_id}}, dir.path / "get-again.log"));
  CHECK(got_again.value("status", "") == "pending");
  CHECK(got_again.value("container_id", "") == got.value("container_id", "-"));
  WaitForConnectedSpoke(url, key, "spoke-1", dir.path);

  const nlohmann::json destroyed =
      ResultOf(McpCall(url, key, "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log"));
  CHECK(destroyed.value("destroyed", "") == box_id);
  CHECK_FALSE(destroyed.contains("queued"));  // done on the spoke, not left for later
  const auto containers_after = (*engine)->ListContainers({{"io.llmbox.box-id", box_id}});
  REQUIRE(containers_after.ok());
  CHECK(containers_after->empty());
  const auto networks_after = (*engine)->ListNetworks({{"io.llmbox.box-id", box_id}});
  REQUIRE(networks_after.ok());
  CHECK(networks_after->empty());
  for (const auto& volume : volumes) {
    INFO(volume);
    CHECK(engine_http.Call("GET", "/v1.41/volumes/" + volume).status == 404);
  }

  // Neither the key nor the join token is in the containers' logs.
  const auto logs = compose.Run({"logs", "--no-color"}, "compose-logs.log", 60s);
  REQUIRE(logs.exit_code == 0);
  CHECK(logs.log.find(key) == std::string::npos);
  CHECK(logs.log.find(token) == std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
