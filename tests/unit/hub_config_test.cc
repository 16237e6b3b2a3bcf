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

TEST_CASE("auth.oauth is off by default, and on it names the hub as issuer with its defaults",
          "[hub-config][oauth]") {
  auto plain = Parse("{}");
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->oauth.enabled);

  auto on = Parse(
      "hub:\n  public_url: https://hub.example.com/\nauth:\n  oauth:\n"
      "    enabled: true\n");
  REQUIRE(on.ok());
  CHECK(on->oauth.enabled);
  CHECK(on->oauth.issuer == "https://hub.example.com");
  CHECK(on->oauth.sign_in == oauth::SignInMode::kApiKey);  // no activation.oidc
  CHECK(on->oauth.access_token_ttl == 1h);
  CHECK(on->oauth.allowed_redirect_uris ==
        std::vector<std::string>{"https://claude.ai/api/mcp/auth_callback",
                                 "https://claude.com/api/mcp/auth_callback"});
  CHECK(on->oauth.allow_loopback_redirects);
  CHECK(on->oauth.client_id_metadata_documents);
}

TEST_CASE("auth.oauth sets what it says, pre-registered clients included", "[hub-config][oauth]") {
  auto parsed = Parse(
      "hub:\n  listen: 0.0.0.0:8443\n  public_url: https://hub.example.com\n"
      "auth:\n  api_keys: off\n  oauth:\n    enabled: true\n    sign_in: api_key\n"
      "    access_token_ttl: 2s\n    refresh_token_ttl: 48h\n    grant_ttl: 720h\n"
      "    code_ttl: 30s\n    redirect_uris: [https://app.example.com/callback]\n"
      "    loopback_redirects: false\n    client_id_metadata_documents: false\n"
      "    admin_emails: [ops@example.com]\n"
      "    registration:\n      per_address: 5\n      listed_per_address: 50\n"
      "      window: 10m\n"
      "      unused_client_ttl: 2h\n      max_clients: 100\n"
      "    clients:\n      - client_id: ci-bot\n        name: CI bot\n"
      "        redirect_uris: [https://app.example.com/callback]\n");
  INFO(parsed.status().ToString());
  REQUIRE(parsed.ok());
  const oauth::OAuthOptions& o = parsed->oauth;
  // api_keys: off beyond loopback is fine when OAuth guards MCP.
  CHECK(parsed->api_keys == ApiKeyMode::kOff);
  CHECK(o.sign_in == oauth::SignInMode::kApiKey);
  CHECK(o.access_token_ttl == 2s);
  CHECK(o.refresh_token_ttl == 48h);
  CHECK(o.grant_ttl == 720h);
  CHECK(o.code_ttl == 30s);
  CHECK(o.allowed_redirect_uris == std::vector<std::string>{"https://app.example.com/callback"});
  CHECK_FALSE(o.allow_loopback_redirects);
  CHECK_FALSE(o.client_id_metadata_documents);
  CHECK(o.admin_emails == std::vector<std::string>{"ops@example.com"});
  CHECK(o.max_registrations_per_address == 5);
  CHECK(o.max_allowlisted_registrations_per_address == 50);
  CHECK(o.registration_window == 10min);
  CHECK(o.unused_client_ttl == 2h);
  CHECK(o.max_clients == 100);
  REQUIRE(o.clients.size() == 1);
  CHECK(o.clients[0].client_id == "ci-bot");
  CHECK(o.clients[0].name == "CI bot");
  CHECK(o.clients[0].client_secret.empty());
}

TEST_CASE("bad auth.oauth configs are refused with the key path and the line",
          "[hub-config][oauth]") {
  CHECK(ErrorOf("auth:\n  oauth:\n    enabled: true\n    sign_in: oidc\n") ==
        "config: auth.oauth.sign_in: oidc needs activation.oidc (the provider people sign in "
        "with); configure it, or use sign_in: api_key");
  CHECK(ErrorOf("auth:\n  oauth:\n    sign_in: password\n") ==
        "config: auth.oauth.sign_in (line 3): must be oidc or api_key, got \"password\"");
  CHECK(ErrorOf("auth:\n  oauth:\n    access_token_ttl: 0s\n") ==
        "config: auth.oauth.access_token_ttl (line 3): must be 1s..24h");
  CHECK(ErrorOf("auth:\n  oauth:\n    code_ttl: 1h\n") ==
        "config: auth.oauth.code_ttl (line 3): must be 1s..10m");
  CHECK(ErrorOf("auth:\n  oauth:\n    redirect_uris: [http://app.example.com/cb]\n")
            .find("auth.oauth.redirect_uris") != std::string::npos);
  CHECK(ErrorOf("auth:\n  oauth:\n    clients:\n      - client_id: https://x.example/c\n"
                "        redirect_uris: [https://x.example/cb]\n")
            .find("auth.oauth.clients[0].client_id (line 4)") != std::string::npos);
  CHECK(ErrorOf("auth:\n  oauth:\n    clients:\n      - client_id: ci\n").find("redirect_uris") !=
        std::string::npos);
  CHECK(ErrorOf("auth:\n  oauth:\n    clients:\n      - client_id: ci\n"
                "        client_secret: hunter2\n        redirect_uris: [https://x/cb]\n")
            .find("client_secret") != std::string::npos);
  CHECK(ErrorOf("auth:\n  oauth:\n    admin_emails: [ops]\n") ==
        "config: auth.oauth.admin_emails (line 3): \"ops\" is not an email address");
  CHECK(ErrorOf("auth:\n  oauth:\n    enable: true\n").find("auth.oauth.enable (line 3)") !=
        std::string::npos);
  // OAuth only over TLS, but on loopback.
  CHECK(ErrorOf("hub:\n  public_url: http://hub.example.com\nauth:\n  oauth:\n"
                "    enabled: true\n")
            .find("auth.oauth needs an https hub.public_url") != std::string::npos);
  CHECK(ErrorOf("hub:\n  listen: 0.0.0.0:8080\nauth:\n  oauth:\n    enabled: true\n")
            .find("got http://0.0.0.0:8080") != std::string::npos);
  CHECK(Parse("hub:\n  public_url: http://[::1]:8080\nauth:\n  oauth:\n    enabled: true\n").ok());
  CHECK(Parse("hub:\n  public_url: http://localhost:8080\nauth:\n  oauth:\n    enabled: true\n")
            .ok());
  // Without OAuth, keys off beyond loopback is still refused.
  CHECK(ErrorOf("hub:\n  listen: 0.0.0.0:8080\nauth:\n  api_keys: off\n")
            .find("auth.api_keys: off is refused") != std::string::npos);
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
