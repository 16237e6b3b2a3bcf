// activation.oidc in the hub's config file: what it reads, and errors naming key and line.

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "hub/config/hub_config.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::config {
namespace {

using namespace std::chrono_literals;

// A folder holding the client secret file the config names.
struct ConfigDir {
  ConfigDir() { dir.Write("client-secret", "the-secret\n"); }
  testing::ScratchDir dir{"oidc-config"};
};

[[nodiscard]] absl::StatusOr<HubConfig> Parse(const ConfigDir& dir, const std::string& oidc_body) {
  return ParseHubConfig("activation:\n  oidc:\n" + oidc_body, "hub.yaml", dir.dir.path().string());
}

std::string ErrorOf(const ConfigDir& dir, const std::string& oidc_body) {
  auto config = Parse(dir, oidc_body);
  REQUIRE_FALSE(config.ok());
  return std::string(config.status().message());
}

TEST_CASE("activation.oidc is read with its secret from a file beside the config", "[config]") {
  ConfigDir dir;
  auto config = Parse(dir,
                      "    issuer: https://accounts.example.com\n"
                      "    client_id: llmbox\n"
                      "    client_secret_file: client-secret\n"
                      "    allowed_emails: [Alice@Example.com]\n"
                      "    allowed_domains: [corp.example]\n"
                      "    session_ttl: 8h\n"
                      "    http_timeout: 5s\n");
  REQUIRE(config.ok());
  REQUIRE(config->activation_oidc.has_value());
  const OidcConfig& oidc = *config->activation_oidc;
  CHECK(oidc.issuer == "https://accounts.example.com");
  CHECK(oidc.client_id == "llmbox");
  CHECK(oidc.client_secret == "the-secret");
  CHECK(oidc.allowed_emails == std::vector<std::string>{"Alice@Example.com"});
  CHECK(oidc.allowed_domains == std::vector<std::string>{"corp.example"});
  CHECK(oidc.session_ttl == 8h);
  CHECK(oidc.http_timeout == 5s);

  auto plain = ParseHubConfig("hub:\n  listen: 127.0.0.1:0\n", "hub.yaml", dir.dir.path().string());
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->activation_oidc.has_value());
}

TEST_CASE("activation.oidc errors name the key path and line", "[config]") {
  ConfigDir dir;
  const std::string base =
      "    issuer: https://accounts.example.com\n"
      "    client_id: llmbox\n"
      "    client_secret_file: client-secret\n";
  CHECK(ErrorOf(dir, base) ==
        "config: activation.oidc.allowed_emails (line 3): set allowed_emails or "
        "allowed_domains (or both): with neither, nobody could sign in");
  CHECK(ErrorOf(dir, base + "    allowed_domains: [example.com]\n    client_secret: x\n") ==
        "config: activation.oidc.client_secret (line 7): secrets are read from files; use "
        "client_secret_file");
  CHECK(ErrorOf(dir,
                "    issuer: http://accounts.example.com\n    client_id: llmbox\n"
                "    client_secret_file: client-secret\n    allowed_domains: [example.com]\n") ==
        "config: activation.oidc.issuer (line 3): must be https (plain http only for a "
        "provider on loopback)");
  CHECK(Parse(dir,
              "    issuer: http://127.0.0.1:9000\n    client_id: llmbox\n"
              "    client_secret_file: client-secret\n    allowed_domains: [example.com]\n")
            .ok());
  CHECK(ErrorOf(dir,
                "    issuer: https://a.example\n    client_id: llmbox\n"
                "    client_secret_file: missing-file\n    allowed_domains: [example.com]\n")
            .find("config: activation.oidc.client_secret_file (line 5): cannot read ") == 0);
  CHECK(ErrorOf(dir, base + "    allowed_domains: [\"@example.com\"]\n") ==
        "config: activation.oidc.allowed_domains (line 6): \"@example.com\" must be a bare "
        "domain (example.com, without '@')");
  CHECK(ErrorOf(dir, base + "    allowed_emails: [alice]\n") ==
        "config: activation.oidc.allowed_emails (line 6): \"alice\" is not an email address");
  CHECK(ErrorOf(dir, base + "    allowed_domains: [example.com]\n    http_timeout: 10m\n") ==
        "config: activation.oidc.http_timeout (line 7): must be 100ms..2m");
  CHECK(ErrorOf(dir, base + "    allowed_domains: [example.com]\n    session_ttl: 30s\n") ==
        "config: activation.oidc.session_ttl (line 7): must be 1m..720h");
  CHECK(ErrorOf(dir, base + "    allowed_domains: [example.com]\n    issuerr: x\n")
            .find("config: activation.oidc.issuerr (line 7): unknown key") == 0);
  CHECK(ErrorOf(dir,
                "    client_id: llmbox\n    client_secret_file: client-secret\n"
                "    allowed_domains: [example.com]\n") ==
        "config: activation.oidc.issuer (line 3): is required (https://accounts.example.com)");
}

TEST_CASE("activation.oidc needs a redirect URI known before the hub starts", "[config]") {
  ConfigDir dir;
  const std::string oidc =
      "activation:\n  oidc:\n"
      "    issuer: https://accounts.example.com\n"
      "    client_id: llmbox\n"
      "    client_secret_file: client-secret\n"
      "    allowed_domains: [example.com]\n";
  auto parse = [&](const std::string& hub) {
    return ParseHubConfig(hub + oidc, "hub.yaml", dir.dir.path().string());
  };
  // Port 0 with the default public URL: the redirect URI would change on every start.
  auto any_port = parse("hub:\n  listen: 127.0.0.1:0\n");
  REQUIRE_FALSE(any_port.ok());
  CHECK(any_port.status().message() ==
        "config: activation.oidc needs hub.public_url (or a fixed port in hub.listen): the "
        "provider must know the redirect URI <public_url>/auth/oidc/callback in advance, and "
        "port 0 picks a new one on every start");
  // A fixed port, or a public URL in front of port 0, names it.
  auto fixed = parse("hub:\n  listen: 127.0.0.1:8443\n");
  REQUIRE(fixed.ok());
  CHECK(fixed->public_url == "http://127.0.0.1:8443");
  auto behind_proxy = parse("hub:\n  listen: 127.0.0.1:0\n  public_url: https://hub.example.com\n");
  REQUIRE(behind_proxy.ok());
  CHECK(behind_proxy->public_url == "https://hub.example.com");
}

}  // namespace
}  // namespace llmbox::hub::config
