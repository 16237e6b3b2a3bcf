// The hub's local_spoke section: `enabled` is the hub's, the rest is the spoke's own keys,
// read by hub/local with the spoke's reader, with the file's key paths and lines.
#include <string>

#include <catch2/catch.hpp>

#include "hub/config/hub_config.h"
#include "hub/local/local_spoke.h"

namespace llmbox::hub::local {
namespace {

using namespace std::chrono_literals;

[[nodiscard]] absl::StatusOr<spoke::config::SpokeConfig> Read(const std::string& yaml) {
  auto hub = config::ParseHubConfig(yaml, "hub.yaml", "/etc/llmbox");
  if (!hub.ok()) return hub.status();
  return ReadLocalSpokeConfig(*hub);
}

std::string ErrorOf(const std::string& yaml) {
  auto parsed = Read(yaml);
  REQUIRE_FALSE(parsed.ok());
  return std::string(parsed.status().message());
}

TEST_CASE("an empty hub config has a local spoke named local on the default Docker socket",
          "[hub-config]") {
  auto hub = config::ParseHubConfig("{}", "hub.yaml", "/etc/llmbox");
  REQUIRE(hub.ok());
  CHECK(hub->local_spoke);
  auto local = ReadLocalSpokeConfig(*hub);
  REQUIRE(local.ok());
  CHECK(local->name == "local");
  CHECK(local->state_dir == "/var/lib/llmbox-hub/local-spoke");
  CHECK(local->boxes.spoke_name == "local");
  CHECK(local->boxes.state_dir == "/var/lib/llmbox-hub/local-spoke");
  CHECK(local->docker.unix_socket == "/var/run/docker.sock");
}

TEST_CASE("the local_spoke section sets the spoke's keys, paths relative to the file",
          "[hub-config]") {
  auto local = Read(
      "hub:\n"
      "  state_dir: /srv/hub\n"
      "local_spoke:\n"
      "  enabled: true\n"
      "  docker:\n"
      "    socket: /run/user/1000/docker.sock\n"
      "  boxes:\n"
      "    max_boxes: 7\n"
      "    claude_bin: bin/claude\n"
      "  reaper:\n"
      "    auth_ttl: 20m\n"
      "  hooks:\n"
      "    - name: audit\n"
      "      event: box.create\n"
      "      command: [hooks/audit.sh]\n");
  REQUIRE(local.ok());
  CHECK(local->state_dir == "/srv/hub/local-spoke");
  CHECK(local->docker.unix_socket == "/run/user/1000/docker.sock");
  CHECK(local->boxes.max_boxes == 7);
  CHECK(local->boxes.claude_bin == "/etc/llmbox/bin/claude");
  CHECK(local->reaper.auth_ttl == 20min);
  REQUIRE(local->hooks.size() == 1);
  CHECK(local->hooks[0].command[0] == "/etc/llmbox/hooks/audit.sh");
}

TEST_CASE("a disabled local spoke is off in the hub's config and its keys still checked",
          "[hub-config]") {
  auto hub = config::ParseHubConfig("local_spoke:\n  enabled: false\n", "hub.yaml", "/etc");
  REQUIRE(hub.ok());
  CHECK_FALSE(hub->local_spoke);
  CHECK(ErrorOf("local_spoke:\n  enabled: false\n  boxes:\n    max_boxes: 0\n")
            .find("local_spoke.boxes.max_boxes (line 4)") != std::string::npos);
}

TEST_CASE("bad local_spoke keys are refused with the key path and the line", "[hub-config]") {
  CHECK(ErrorOf("local_spoke:\n  boxes:\n    max_boxes: 0\n")
            .find("config: local_spoke.boxes.max_boxes (line 3)") != std::string::npos);
  CHECK(ErrorOf("hub:\n  listen: 127.0.0.1:0\nlocal_spoke:\n  reaper:\n    interval: 10ms\n") ==
        "config: local_spoke.reaper.interval (line 5): must be at least 1s");
  CHECK(ErrorOf("local_spoke:\n  docker:\n    sockt: /x\n")
            .find("config: local_spoke.docker.sockt (line 3): unknown key") != std::string::npos);
  CHECK(ErrorOf("local_spoke:\n  enabled: maybe\n").find("local_spoke.enabled (line 2)") !=
        std::string::npos);
}

TEST_CASE("an unknown key in local_spoke is refused with a suggestion", "[hub-config]") {
  CHECK(ErrorOf("local_spoke:\n  enabled: true\n  dockr:\n    socket: /x\n") ==
        "config: local_spoke.dockr (line 3): unknown key (did you mean docker?)");
  CHECK(ErrorOf("local_spoke:\n  spoke_name: x\n").find("local_spoke.spoke_name (line 2)") !=
        std::string::npos);
}

TEST_CASE("a duplicate key in local_spoke is refused with both lines", "[hub-config]") {
  CHECK(ErrorOf("local_spoke:\n  boxes:\n    max_boxes: 2\n  boxes:\n    max_boxes: 3\n") ==
        "config: local_spoke.boxes (line 4): duplicate key (first at line 2)");
}

}  // namespace
}  // namespace llmbox::hub::local
