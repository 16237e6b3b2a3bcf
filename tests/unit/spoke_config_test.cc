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

TEST_CASE("a spoke config without an egress section allows Claude's endpoints in allowlist mode",
          "[spoke-config][egress]") {
  auto config = Parse(kTls);
  REQUIRE(config.ok());
  const egress::SpokePolicy& policy = config->boxes.egress;
  CHECK(policy.default_mode == egress::Mode::kAllowlist);
  CHECK(policy.modes.size() == 3);
  CHECK(policy.box_may_allow_anything);
  REQUIRE(policy.base_allowlist.size() == DefaultBaseAllowlist().size());
  CHECK(policy.base_allowlist.front().ToString() == "api.anthropic.com:443");
  CHECK(config->egress.proxy_port == 3128);
  CHECK(config->egress.hosts.empty());
}

TEST_CASE("the egress section sets the modes, lists, ranges, proxy port and static names",
          "[spoke-config][egress]") {
  auto config = Parse(kTls +
                      "egress:\n  default_mode: none\n  modes: [none, allowlist]\n"
                      "  base_allowlist: [api.anthropic.com:443]\n"
                      "  box_may_allow: ['*.pypi.org:443', 10.20.0.0/16]\n"
                      "  max_box_entries: 8\n  allow_ranges: [10.20.0.0/16]\n"
                      "  proxy_port: 3129\n  hosts: [allowed.test=198.18.0.2, Other.Test=::1]\n");
  INFO(config.status().message());
  REQUIRE(config.ok());
  const egress::SpokePolicy& policy = config->boxes.egress;
  CHECK(policy.default_mode == egress::Mode::kNone);
  CHECK(policy.modes == std::vector<egress::Mode>{egress::Mode::kNone, egress::Mode::kAllowlist});
  REQUIRE(policy.base_allowlist.size() == 1);
  CHECK_FALSE(policy.box_may_allow_anything);
  REQUIRE(policy.box_may_allow.size() == 2);
  CHECK(policy.box_may_allow[0].ToString() == "*.pypi.org:443");
  CHECK(policy.max_box_entries == 8);
  REQUIRE(policy.allow_ranges.size() == 1);
  CHECK(policy.allow_ranges[0].ToString() == "10.20.0.0/16");
  CHECK(config->egress.proxy_port == 3129);
  REQUIRE(config->egress.hosts.count("allowed.test") == 1);
  CHECK(config->egress.hosts.at("allowed.test").front().ToString() == "198.18.0.2");
  CHECK(config->egress.hosts.count("other.test") == 1);
}

TEST_CASE("bad egress settings are named with their key", "[spoke-config][egress]") {
  CHECK(ErrorOf(kTls + "egress:\n  default_mode: closed\n").find("egress.default_mode") !=
        std::string::npos);
  CHECK(ErrorOf(kTls + "egress:\n  modes: [none]\n")
            .find("egress.default_mode (line 6): must be one of the modes allowed") !=
        std::string::npos);
  CHECK(
      ErrorOf(kTls + "egress:\n  base_allowlist: ['bad name!']\n").find("egress.base_allowlist") !=
      std::string::npos);
  CHECK(ErrorOf(kTls + "egress:\n  allow_ranges: [10.0.0.0/99]\n").find("egress.allow_ranges") !=
        std::string::npos);
  CHECK(ErrorOf(kTls + "egress:\n  hosts: [nohost]\n")
            .find("egress.hosts (line 6): each must be NAME=ADDRESS") != std::string::npos);
  CHECK(ErrorOf(kTls + "egress:\n  proxy_port: 0\n").find("egress.proxy_port") !=
        std::string::npos);
  CHECK(ErrorOf(kTls + "egress:\n  proxy: 1\n").find("egress.proxy") != std::string::npos);
}

TEST_CASE("metrics.listen is off by default and takes a host and port", "[spoke-config][metrics]") {
  auto plain = Parse(kTls);
  REQUIRE(plain.ok());
  CHECK(plain->metrics_listen.empty());
  auto on = Parse(kTls + "metrics:\n  listen: 127.0.0.1:9464\n");
  INFO(on.status().message());
  REQUIRE(on.ok());
  CHECK(on->metrics_listen == "127.0.0.1:9464");
  const std::string error = ErrorOf(kTls + "metrics:\n  listen: metrics.example.com:80\n");
  CHECK(error.find("metrics.listen") != std::string::npos);
  CHECK(error.find("IP address or localhost") != std::string::npos);
  CHECK(ErrorOf(kTls + "metrics:\n  port: 9464\n").find("metrics.port") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::spoke::config
