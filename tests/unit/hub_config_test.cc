// The hub's config file: defaults, what each section sets, and errors that name the key and
// the line.
#include "hub/config/hub_config.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace llmbox::hub::config {
namespace {

using namespace std::chrono_literals;

[[nodiscard]] absl::StatusOr<HubConfig> Parse(const std::string& yaml) {
  return ParseHubConfig(yaml, "hub.yaml", "/etc/llmbox");
}

std::string ErrorOf(const std::string& yaml) {
  auto parsed = Parse(yaml);
  REQUIRE_FALSE(parsed.ok());
  return std::string(parsed.status().message());
}

TEST_CASE("an empty hub config is a loopback hub with its local spoke", "[hub-config]") {
  auto config = Parse("{}");
  REQUIRE(config.ok());
  CHECK(config->listen_host == "127.0.0.1");
  CHECK(config->listen_port == 8080);
  CHECK(config->public_url == "http://127.0.0.1:8080");
  CHECK(config->public_url_is_default);
  CHECK_FALSE(config->api_keys_required);
  CHECK(config->local_spoke);
  // The local spoke's own keys: tests/unit/local_spoke_config_test.cc.
  CHECK(config->max_attempts_per_token == 10);
  CHECK(config->max_attempts_per_address == 30);
  CHECK(config->attempt_window == 15min);
  CHECK(config->form_ttl == 30min);
  CHECK(config->max_calls_per_caller == 0);  // half the workers
  CHECK(config->spoke_health_interval == 10s);
}

TEST_CASE("the hub, auth and activation sections set what they say", "[hub-config]") {
  auto config = Parse(
      "hub:\n"
      "  listen: 0.0.0.0:443\n"
      "  public_url: https://hub.example.com\n"
      "  state_dir: state\n"
      "  worker_threads: 16\n"
      "  max_calls_per_caller: 4\n"
      "  spoke_health_interval: 30s\n"
      "auth:\n"
      "  api_keys: auto\n"
      "activation:\n"
      "  max_attempts_per_token: 5\n"
      "  max_attempts_per_address: 100\n"
      "  attempt_window: 1h\n"
      "  form_ttl: 10m\n");
  REQUIRE(config.ok());
  CHECK(config->listen_host == "0.0.0.0");
  CHECK(config->listen_port == 443);
  CHECK(config->public_url == "https://hub.example.com");
  CHECK(config->state_dir == "/etc/llmbox/state");
  CHECK(config->api_keys_required);  // auto beyond loopback
  CHECK(config->max_attempts_per_token == 5);
  CHECK(config->max_attempts_per_address == 100);
  CHECK(config->attempt_window == 1h);
  CHECK(config->form_ttl == 10min);
  CHECK(config->worker_threads == 16);
  CHECK(config->max_calls_per_caller == 4);
  CHECK(config->spoke_health_interval == 30s);
}

TEST_CASE("bad hub configs are refused with the key path and the line", "[hub-config]") {
  CHECK(ErrorOf("hub:\n  listen: 0.0.0.0:8080\nauth:\n  api_keys: off\n") ==
        "config: auth.api_keys: off is refused when hub.listen is not a loopback address "
        "(0.0.0.0): anyone who reaches the port could run boxes");
  CHECK(ErrorOf("hub:\n  listen: nowhere\n").find("hub.listen (line 2)") != std::string::npos);
  CHECK(ErrorOf("auth:\n  api_keys: maybe\n") ==
        "config: auth.api_keys (line 2): must be auto, required or off, got \"maybe\"");
  CHECK(ErrorOf("activation:\n  max_attempts_per_token: 0\n")
            .find("activation.max_attempts_per_token (line 2)") != std::string::npos);
  CHECK(ErrorOf("activation:\n  attempt_window: 0s\n") ==
        "config: activation.attempt_window (line 2): must be at least 1s");
  CHECK(ErrorOf("activation:\n  form_ttl: 30s\n") ==
        "config: activation.form_ttl (line 2): must be at least 1m");
  CHECK(ErrorOf("hub:\n  worker_threads: 4\n  max_calls_per_caller: 5\n") ==
        "config: hub.max_calls_per_caller (line 3): must be at most worker_threads (4), got 5");
  CHECK(ErrorOf("hub:\n  spoke_health_interval: 500ms\n") ==
        "config: hub.spoke_health_interval (line 2): must be at least 1s");
  CHECK(ErrorOf("activation:\n  form_tll: 30m\n").find("activation.form_tll (line 2)") !=
        std::string::npos);
}

TEST_CASE("hub.trusted_proxies takes IPv4 and IPv6 CIDRs and refuses anything else by index",
          "[hub-config][proxy]") {
  auto config =
      Parse("hub:\n  trusted_proxies: [127.0.0.1/32, 10.0.0.0/8, \"::1\", 2001:db8::/32]\n");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  CHECK(config->trusted_proxies ==
        std::vector<std::string>{"127.0.0.1/32", "10.0.0.0/8", "::1", "2001:db8::/32"});
  CHECK(Parse("{}")->trusted_proxies.empty());
  CHECK(ErrorOf("hub:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n") ==
        "config: hub.trusted_proxies (line 2): [1] \"10.0.0.0/33\": the prefix length must be "
        "0..32");
  CHECK(ErrorOf("hub:\n  trusted_proxies:\n    - proxy.example.com\n")
            .find("hub.trusted_proxies (line 2): [0] \"proxy.example.com\": not an IP address") !=
        std::string::npos);
  CHECK(ErrorOf("hub:\n  trusted_proxies: 10.0.0.0/8\n").find("hub.trusted_proxies (line 2)") !=
        std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::config
