// The llmbox-hub binary as a process with its in-process spoke on the rig's engine, driven by
// the official MCP TypeScript SDK client (tests/e2e/node), the way a chatbot would.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// What an authorize URL or a PKCE exchange looks like; none may leave the hub over MCP.
void CheckNoSecrets(const std::string& text) {
  CHECK(text.find("/oauth/authorize") == std::string::npos);
  CHECK(text.find("code_challenge") == std::string::npos);
  CHECK(text.find("client_id=") == std::string::npos);
}

TEST_CASE("the MCP SDK client takes a real box through create, get, logs, exec and destroy",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-e2e");
  WriteConfig(dir.path, rig, rig.claude_bin, "required");

  ChildProcess create_key({LLMBOX_HUB_BIN, "apikey", "create", "--name", "e2e", "--config",
                           (dir.path / "hub.yaml").string()},
                          dir.path / "apikey.log");
  REQUIRE(create_key.Wait(30s) == 0);
  const std::string key = create_key.WaitForLog("(llmbox_[A-Za-z0-9_-]{40,})");

  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  const std::string& url = hub.url;

  const std::string box_id = UniqueId("sdk");
  ChildProcess client({"node", NodeScript("mcp_client_e2e.mjs"), url + "/", box_id, key},
                      dir.path / "client.log");
  const int exit_code = client.Wait(300s);
  const std::string output = client.Log();
  INFO(output);
  REQUIRE(exit_code == 0);
  CHECK(output.find("\nOK") != std::string::npos);
  // Every tool result the client saw, and the hub's own log.
  CheckNoSecrets(output);
  CHECK(hub.process.Stop() == 0);
  CheckNoSecrets(hub.process.Log());

  SECTION("a revoked key is refused while the hub serves") {
    HubProcess again((dir.path / "hub.yaml").string(), dir.path / "hub-2.log");
    REQUIRE(
        McpCall(again.url, key, "list_llmboxes", nlohmann::json::object(), dir.path / "list.log")
            .exit_code == 0);
    ChildProcess revoke({LLMBOX_HUB_BIN, "apikey", "revoke", "--name", "e2e", "--config",
                         (dir.path / "hub.yaml").string()},
                        dir.path / "revoke.log");
    REQUIRE(revoke.Wait(30s) == 0);
    ChildProcess list_keys(
        {LLMBOX_HUB_BIN, "apikey", "list", "--config", (dir.path / "hub.yaml").string()},
        dir.path / "keys.log");
    REQUIRE(list_keys.Wait(30s) == 0);
    CHECK(std::regex_search(list_keys.Log(), std::regex("e2e +user +[0-9T:-]+Z +revoked ")));
    CHECK(list_keys.Log().find(key) == std::string::npos);
    const auto refused = McpCall(again.url, key, "list_llmboxes", nlohmann::json::object(),
                                 dir.path / "refused.log");
    INFO(refused.log);
    CHECK(refused.exit_code != 0);
    CHECK(refused.log.find("this API key is unknown or revoked") != std::string::npos);
  }
}

TEST_CASE("a box created before a hub restart is still listed and can still be activated",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-restart");
  // The stand-in Claude takes any code of the right shape, so the box can be activated here.
  WriteConfig(dir.path, rig, rig.standin_claude, "off");
  const std::string config = (dir.path / "hub.yaml").string();
  const std::string box_id = UniqueId("restart");
  std::string auth_url;
  {
    HubProcess hub(config, dir.path / "hub-1.log");
    const auto created =
        McpCall(hub.url, "", "create_llmbox", {{"box_id", box_id}}, dir.path / "create.log");
    REQUIRE(created.exit_code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(created.log, m, std::regex("\"auth_url\":\"([^\"]+)\"")));
    auth_url = m[1];
    REQUIRE(hub.process.Stop() == 0);
  }
  HubProcess hub(config, dir.path / "hub-2.log");
  const auto pending =
      McpCall(hub.url, "", "get_llmbox", {{"box_id", box_id}}, dir.path / "get.log");
  REQUIRE(pending.exit_code == 0);
  CHECK(pending.log.find("\"status\":\"pending\"") != std::string::npos);

  // The activation link from before the restart still works (the port changed with the
  // restart: port 0; the token is what matters).
  const std::string token = auth_url.substr(auth_url.rfind('/') + 1);
  ChildProcess activate({"node", NodeScript("activate.mjs"), hub.url + "/auth/" + token,
                         "standin-ok-1234#state-abcdef"},
                        dir.path / "activate.log");
  REQUIRE(activate.Wait(120s) == 0);
  const auto ready =
      McpCall(hub.url, "", "get_llmbox", {{"box_id", box_id}}, dir.path / "ready.log");
  REQUIRE(ready.exit_code == 0);
  CHECK(ready.log.find("\"status\":\"ready\"") != std::string::npos);
  CHECK(ready.log.find("\"session_url\"") != std::string::npos);
  CHECK(McpCall(hub.url, "", "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log")
            .exit_code == 0);
  CHECK(hub.process.Stop() == 0);
}

TEST_CASE("bad input to the hub gets the right status and a clear message", "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-bad-input");
  WriteConfig(dir.path, rig, rig.standin_claude, "required");
  const std::string config = (dir.path / "hub.yaml").string();
  ChildProcess create_key(
      {LLMBOX_HUB_BIN, "apikey", "create", "--name", "bad-input", "--config", config},
      dir.path / "apikey.log");
  REQUIRE(create_key.Wait(30s) == 0);
  const std::string key = create_key.WaitForLog("(llmbox_[A-Za-z0-9_-]{40,})");
  HubProcess hub(config, dir.path / "hub.log");
  ChildProcess client({"node", NodeScript("bad_input.mjs"), hub.url + "/", key},
                      dir.path / "client.log");
  const int exit_code = client.Wait(120s);
  INFO(client.Log());
  CHECK(exit_code == 0);
  CHECK(client.Log().find("ALL OK") != std::string::npos);
  CHECK(hub.process.Stop() == 0);
}

TEST_CASE("the official MCP conformance suite passes against the hub", "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-conformance");
  WriteConfig(dir.path, rig, rig.standin_claude, "off");
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  const std::string& url = hub.url;
  // The exact command of shared/notes/mcp.md §4.5 (the suite needs Node 22, from npm).
  ChildProcess suite(
      {"npx", "-y", "-p", "node@22", "-p", "@modelcontextprotocol/conformance@0.2.0-alpha.12", "--",
       "conformance", "server", "--url", url + "/", "--spec-version", "2025-11-25",
       "--expected-failures",
       std::string(LLMBOX_SOURCE_DIR) + "/tests/e2e/conformance/baseline.yml", "-o",
       (dir.path / "conformance").string()},
      dir.path / "conformance.log");
  const int exit_code = suite.Wait(600s);
  INFO(suite.Log());
  CHECK(exit_code == 0);
  CHECK(suite.Log().find("Baseline check passed") != std::string::npos);

  // The MCP Inspector's CLI (v2) lists the tools.
  fs::create_directories(dir.path / "home");
  const std::string home = "HOME=" + (dir.path / "home").string();
  ChildProcess inspector(
      {"env", home, "npx", "-y", "-p", "node@22", "-p", "@modelcontextprotocol/inspector@2.12.0",
       "--", "mcp-inspector", "--cli", url + "/", "--transport", "http", "--method", "tools/list",
       "--format", "json", "-q"},
      dir.path / "inspector.log");
  const int inspector_exit = inspector.Wait(300s);
  INFO(inspector.Log());
  CHECK(inspector_exit == 0);
  CHECK(inspector.Log().find("\"create_llmbox\"") != std::string::npos);

  // The real Claude Code binary connects: it probes server/discover (2026-07-28) first and
  // must fall back to initialize.
  ChildProcess add(
      {"env", home, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_TELEMETRY=1",
       rig.claude_bin, "mcp", "add", "--transport", "http", "llmbox", url + "/"},
      dir.path / "claude-add.log");
  REQUIRE(add.Wait(60s) == 0);
  ChildProcess get({"env", home, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
                    "DISABLE_TELEMETRY=1", rig.claude_bin, "mcp", "get", "llmbox"},
                   dir.path / "claude-get.log");
  get.Wait(120s);
  INFO(get.Log());
  CHECK(get.Log().find("Connected") != std::string::npos);
  CHECK(hub.process.Stop() == 0);
}

// The activation page in Chromium (tests/e2e/node/activation_browser.mjs); screenshots of each
// state go to tests/e2e/artifacts/activation/. `extra_yaml` and `listen` go to the hub's
// config.
int RunBrowser(const std::string& scenario, const std::string& claude_bin,
               const std::string& local_spoke_extra = "", const std::string& extra_yaml = "",
               const std::string& listen = "127.0.0.1:0") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-browser-" + scenario);
  WriteConfig(dir.path, rig, claude_bin, "off", local_spoke_extra, extra_yaml, listen);
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  const std::string artifacts = std::string(LLMBOX_SOURCE_DIR) + "/tests/e2e/artifacts/activation";
  ChildProcess browser({"node", NodeScript("activation_browser.mjs"), scenario, hub.url + "/",
                        rig.docker_sock, UniqueId("browser-" + scenario), artifacts},
                       dir.path / "browser.log");
  const int exit_code = browser.Wait(std::chrono::seconds(300));
  INFO(browser.Log());
  CHECK(browser.Log().find("BROWSER OK") != std::string::npos);
  const int hub_exit = hub.process.Stop();
  const std::string log = hub.process.Log();
  INFO("the hub's log, last 8000 bytes:\n"
       << log.substr(log.size() - std::min<size_t>(log.size(), 8000)));
  CHECK(hub_exit == 0);
  // The hub's log never holds a code or an authorize URL.
  CHECK(log.find("standin-ok-2468") == std::string::npos);
  CHECK(log.find("standin-bad-0001") == std::string::npos);
  CHECK(log.find("bogus-code-123") == std::string::npos);
  CheckNoSecrets(log);
  return exit_code;
}

TEST_CASE("in a real browser a person signs a box in: pending, refused code, ready, destroyed",
          "[e2e][hub][browser]") {
  CHECK(RunBrowser("flow", Rig().standin_claude) == 0);
}

TEST_CASE("in a real browser an expired activation link says so", "[e2e][hub][browser]") {
  CHECK(RunBrowser("expired", Rig().standin_claude,
                   "  reaper:\n    auth_ttl: 4s\n    interval: 1s\n") == 0);
}

TEST_CASE("in a real browser sign-in gating lets the first person in and refuses the others",
          "[e2e][hub][browser]") {
  // The provider must know the hub's redirect URI before either starts: a port picked now.
  const int port = UnusedLoopbackPort();
  const std::string hub_origin = "http://127.0.0.1:" + std::to_string(port);
  HubDir dir("llmbox-oidc-provider");
  // On "localhost", another site than the hub's 127.0.0.1, as a real provider is.
  ChildProcess provider({"node", NodeScript("oidc_provider.mjs"), "--redirect-uri",
                         hub_origin + "/auth/oidc/callback", "--client-secret",
                         "browser-e2e-secret", "--host", "localhost"},
                        dir.path / "provider.log");
  const std::string issuer = provider.WaitForLog("(http://localhost:[0-9]+)\n");
  const fs::path secret = dir.path / "client-secret";
  std::ofstream(secret) << "browser-e2e-secret\n";
  CHECK(RunBrowser("gated", Rig().standin_claude, "",
                   "activation:\n  oidc:\n    issuer: " + issuer +
                       "\n    client_id: llmbox\n    client_secret_file: " + secret.string() +
                       "\n    allowed_domains: [example.com]\n",
                   "127.0.0.1:" + std::to_string(port)) == 0);
}

TEST_CASE("in a real browser a code the real Claude binary refuses shows its real error",
          "[e2e][hub][browser]") {
  CHECK(RunBrowser("real", Rig().claude_bin) == 0);
}

}  // namespace
}  // namespace llmbox::testing
