// The spoke's config file: defaults, what each section sets, and errors that name the key
// path and the line.
#include "spoke/config/spoke_config.h"

#include <string>

#include <catch2/catch.hpp>

namespace llmbox::spoke::config {
namespace {

using namespace std::chrono_literals;

const std::string kTls =
    "tls:\n  cert_file: tls/spoke.crt\n  key_file: tls/spoke.key\n  ca_file: tls/ca.crt\n";

[[nodiscard]] absl::StatusOr<SpokeConfig> Parse(const std::string& yaml) {
  return ParseSpokeConfig(yaml, "spoke.yaml", "/etc/llmbox");
}

std::string ErrorOf(const std::string& yaml) {
  auto parsed = Parse(yaml);
  REQUIRE_FALSE(parsed.ok());
  return std::string(parsed.status().message());
}

TEST_CASE("a spoke config with only its tls files takes the defaults", "[spoke-config]") {
  auto config = Parse(kTls);
  INFO(config.status().message());
  REQUIRE(config.ok());
  CHECK(config->name == "local");
  CHECK(config->listen == "0.0.0.0:7443");
  CHECK(config->state_dir == "/var/lib/llmbox-spoke");
  // Paths are relative to the config file's folder.
  CHECK(config->tls.cert_file == "/etc/llmbox/tls/spoke.crt");
  CHECK(config->tls.ca_file == "/etc/llmbox/tls/ca.crt");
  CHECK(config->renew_check == 10min);
  CHECK(config->docker.unix_socket == "/var/run/docker.sock");
  CHECK(config->boxes.max_boxes == 20);
  CHECK(config->boxes.spoke_name == "local");
  CHECK(config->boxes.exec.uid == 1000);
  CHECK(config->boxes.exec.pids_limit == 256);
  CHECK(config->boxes.exec.memory_bytes == (int64_t{1} << 30));
  CHECK(config->boxes.exec.max_concurrent == 4);
}

TEST_CASE("the spoke config's sections set what they say", "[spoke-config]") {
  auto config =
      Parse("spoke:\n  name: worker-1\n  listen: 10.0.0.5:7443\n  state_dir: state\n" + kTls +
            "  renew_check: 30s\n"
            "docker:\n  socket: /run/docker.sock\n"
            "boxes:\n  default_image: llmbox-box:1\n  allowed_images: [custom:2]\n  max_boxes: 50\n"
            "  memory: 2GiB\n  cpus: 2\n  stop_grace: 5s\n"
            "  exec:\n    uid: 2000\n    gid: 2001\n    memory: 512MiB\n    pids_limit: 64\n"
            "    max_concurrent: 2\n"
            "reaper:\n  interval: 10s\n  auth_ttl: 20m\n");
  INFO(config.status().message());
  REQUIRE(config.ok());
  CHECK(config->name == "worker-1");
  CHECK(config->listen == "10.0.0.5:7443");
  CHECK(config->state_dir == "/etc/llmbox/state");
  CHECK(config->boxes.state_dir == "/etc/llmbox/state");
  CHECK(config->boxes.spoke_name == "worker-1");
  CHECK(config->renew_check == 30s);
  CHECK(config->docker.unix_socket == "/run/docker.sock");
  CHECK(config->boxes.default_image == "llmbox-box:1");
  CHECK(config->boxes.allowed_images == std::vector<std::string>{"custom:2"});
  CHECK(config->boxes.max_boxes == 50);
  CHECK(config->boxes.memory_bytes == (int64_t{2} << 30));
  CHECK(config->boxes.nano_cpus == 2'000'000'000);
  CHECK(config->boxes.stop_grace == 5s);
  CHECK(config->boxes.exec.uid == 2000);
  CHECK(config->boxes.exec.gid == 2001);
  CHECK(config->boxes.exec.memory_bytes == (int64_t{512} << 20));
  CHECK(config->boxes.exec.pids_limit == 64);
  CHECK(config->boxes.exec.max_concurrent == 2);
  CHECK(config->reaper.interval == 10s);
  CHECK(config->reaper.auth_ttl == 20min);
}

TEST_CASE("bad spoke configs are refused with the key path and the line", "[spoke-config]") {
  CHECK(ErrorOf(kTls + "boxes:\n  max_boxes: 0\n") ==
        "config: boxes.max_boxes (line 6): must be 1..1000, got 0");
  CHECK(ErrorOf(kTls + "  renew_check: 500ms\n") ==
        "config: tls.renew_check (line 5): must be 1s..24h");
  CHECK(ErrorOf(kTls + "reaper:\n  auth_ttl: 0s\n") ==
        "config: reaper.auth_ttl (line 6): must be at least 1s");
  CHECK(ErrorOf(kTls + "boxes:\n  memory: 1MiB\n") ==
        "config: boxes.memory (line 6): must be at least 64MiB (or 0B for no limit)");
  CHECK(ErrorOf(kTls + "boxes:\n  exec:\n    uid: 0\n") ==
        "config: boxes.exec.uid (line 7): must be 1..2000000000, got 0");
  CHECK(ErrorOf(kTls + "boxes:\n  exec:\n    max_concurrent: 0\n") ==
        "config: boxes.exec.max_concurrent (line 7): must be 1..64, got 0");
  CHECK(ErrorOf(kTls + "boxes:\n  exec:\n    memory: 1MiB\n") ==
        "config: boxes.exec.memory (line 7): must be at least 32MiB (or 0B for no limit)");
  CHECK(ErrorOf(kTls + "boxes:\n  exec:\n    user: root\n").find("boxes.exec.user (line 7)") !=
        std::string::npos);
  CHECK(ErrorOf(kTls + "docker:\n  socket: /a\n  url: https://b:2376\n") ==
        "config: docker.url (line 7): set either socket or url, not both");
  CHECK(ErrorOf(kTls + "boxes:\n  max_boxez: 3\n").find("boxes.max_boxez (line 6)") !=
        std::string::npos);
  CHECK(ErrorOf("spoke:\n  name: worker-1\n") ==
        "config: tls: cert_file, key_file and ca_file are required (the spoke serves mutual "
        "TLS only; see docs/spoke.md)");
}

}  // namespace
}  // namespace llmbox::spoke::config
