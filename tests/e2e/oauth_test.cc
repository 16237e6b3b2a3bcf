// The hub as an OAuth 2.1 authorization server, end to end: a real llmbox-hub process with its
// local spoke on the rig's engine, the official MCP TypeScript SDK client with an
// OAuthClientProvider whose browser part is Debian's Chromium (tests/e2e/node/oauth_client.mjs),
// npm's oidc-provider as the identity provider (oidc_provider.mjs), the real `llmbox-hub oauth`
// and `apikey` commands, an attacker's plain HTTP requests (tests/support/oauth_http.h), and the
// MCP conformance suite's `authorization` mode.

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/oauth_http.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

// The auth: section's lines after api_keys (WriteConfig puts its api_keys argument verbatim
// after "api_keys: "): OAuth on, with `sign_in` and `extra` (lines indented under oauth:).
std::string AuthWithOAuth(const std::string& sign_in, const std::string& extra = "") {
  std::string yaml =
      "required\n  oauth:\n    enabled: true\n    sign_in: " + sign_in + "\n" + extra;
  if (yaml.back() == '\n') yaml.pop_back();
  return yaml;
}

// npm's oidc-provider on "localhost" (another site than the hub's 127.0.0.1, as a real provider
// is), knowing the redirect URI of a hub that will listen on `hub_port`; and the activation.oidc
// section that points the hub at it.
struct IdentityProvider {
  IdentityProvider(const HubDir& dir, int hub_port)
      : process({"node", NodeScript("oidc_provider.mjs"), "--redirect-uri",
                 "http://127.0.0.1:" + std::to_string(hub_port) + "/auth/oidc/callback",
                 "--client-secret", "oauth-e2e-secret", "--host", "localhost"},
                dir.path / "provider.log"),
        issuer(process.WaitForLog("(http://localhost:[0-9]+)\n")) {
    std::ofstream(dir.path / "client-secret") << "oauth-e2e-secret\n";
    yaml = "activation:\n  oidc:\n    issuer: " + issuer +
           "\n    client_id: llmbox\n    client_secret_file: " +
           (dir.path / "client-secret").string() + "\n    allowed_domains: [example.com]\n";
  }
  ChildProcess process;
  const std::string issuer;
  std::string yaml;
};

// A hub with OAuth whose people sign in at the identity provider above, on a port known
// before it starts (the provider must know the hub's redirect URI).
struct OidcHub {
  explicit OidcHub(const HubDir& dir)
      : port(UnusedLoopbackPort()),
        idp(dir, port),
        hub(Configure(dir, idp, port), dir.path / "hub.log") {}
  static std::string Configure(const HubDir& dir, const IdentityProvider& idp, int port) {
    WriteConfig(dir.path, Rig(), Rig().standin_claude, AuthWithOAuth("oidc"), "", idp.yaml,
                "127.0.0.1:" + std::to_string(port));
    return (dir.path / "hub.yaml").string();
  }
  const int port;
  IdentityProvider idp;
  HubProcess hub;
};

// A hub with OAuth whose people sign in with their API key (`oauth_extra`: more lines under
// auth.oauth), and alice's key, made before it starts.
struct KeyHub {
  explicit KeyHub(const HubDir& dir, const std::string& oauth_extra = "")
      : key(Configure(dir, oauth_extra)),
        config((dir.path / "hub.yaml").string()),
        hub(config, dir.path / "hub.log") {}
  static std::string Configure(const HubDir& dir, const std::string& oauth_extra) {
    WriteConfig(dir.path, Rig(), Rig().standin_claude, AuthWithOAuth("api_key", oauth_extra));
    return CreateKey(dir, "alice", false);
  }
  const std::string key;
  const std::string config;
  HubProcess hub;
};

struct ClientRun {
  int exit_code;
  std::string log;
};

// oauth_client.mjs <mode> <url> --state <state> [--sign-in <sign_in>] <mode args>; the API key
// for a key sign-in goes in its environment, never on a command line.
ClientRun RunClient(const HubDir& dir, const std::string& name, const std::string& mode,
                    const std::string& url, const std::string& state, const std::string& sign_in,
                    const std::vector<std::string>& mode_args = {},
                    const std::string& api_key = "") {
  std::vector<std::string> argv = {"node", NodeScript("oauth_client.mjs"), mode, url + "/"};
  argv.insert(argv.end(), mode_args.begin(), mode_args.end());
  argv.insert(argv.end(), {"--state", (dir.path / state).string(), "--artifacts",
                           std::string(LLMBOX_SOURCE_DIR) + "/tests/e2e/artifacts/oauth/" + name});
  if (!sign_in.empty()) argv.insert(argv.end(), {"--sign-in", sign_in});
  ::setenv("LLMBOX_API_KEY", api_key.c_str(), 1);
  ChildProcess client(argv, dir.path / ("client-" + name + ".log"));
  ::unsetenv("LLMBOX_API_KEY");
  const int exit_code = client.Wait(300s);
  return {exit_code, client.Log()};
}

// Every secret an OAuth client held (the state file of oauth_client.mjs: tokens, the code, the
// PKCE verifier) and `more`: none may be in `text` (a server's log).
void CheckNoOAuthSecrets(const std::string& text, const fs::path& state,
                         const std::vector<std::string>& more = {}) {
  std::vector<std::string> secrets = more;
  if (fs::exists(state)) {
    const json saved = json::parse(ReadFileOrEmpty(state), nullptr, false);
    REQUIRE(saved.is_object());
    for (const char* tokens : {"tokens", "previous_tokens", "invalidated_tokens"}) {
      if (!saved.contains(tokens) || !saved[tokens].is_object()) continue;
      for (const char* field : {"access_token", "refresh_token"}) {
        if (saved[tokens].contains(field)) secrets.push_back(saved[tokens][field]);
      }
    }
    for (const char* field : {"code", "code_verifier"}) {
      if (saved.contains(field) && saved[field].is_string()) secrets.push_back(saved[field]);
    }
  }
  for (const auto& secret : secrets) {
    if (secret.size() < 8) continue;
    CHECK(text.find(secret) == std::string::npos);
  }
}

// The line of the client's log starting with `prefix` ("RESULT ..."), parsed as JSON.
json ResultLine(const ClientRun& run) {
  INFO(run.log);
  REQUIRE(run.exit_code == 0);
  const size_t at = run.log.rfind("\nRESULT ");
  REQUIRE(at != std::string::npos);
  const size_t end = run.log.find('\n', at + 1);
  return json::parse(run.log.substr(at + 8, end - at - 8));
}

std::vector<std::string> BoxIdsOf(const json& listed) {
  std::vector<std::string> ids;
  for (const json& box : listed["boxes"]) ids.push_back(box["box_id"]);
  return ids;
}

// What every successful SDK sign-in shows: discovery from the 401, registration, the code
// exchange.
void CheckDiscoveryAndRegistration(const std::string& log, const std::string& url) {
  CHECK(log.find("HTTP POST / -> 401 WWW-Authenticate: Bearer resource_metadata=\"" + url +
                 "/.well-known/oauth-protected-resource\"") != std::string::npos);
  CHECK(log.find("scope=\"llmbox\"") != std::string::npos);
  CHECK(log.find("HTTP GET /.well-known/oauth-protected-resource -> 200") != std::string::npos);
  CHECK(log.find("HTTP GET /.well-known/oauth-authorization-server -> 200") != std::string::npos);
  CHECK(log.find("HTTP POST /register -> 201") != std::string::npos);
  CHECK(log.find("code_challenge_method S256, resource " + url) != std::string::npos);
  CHECK(log.find("HTTP POST /token authorization_code -> 200") != std::string::npos);
}

TEST_CASE(
    "an SDK client discovers the hub, registers, signs a person in at the identity "
    "provider in a browser, and takes a box through its life as that person",
    "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-oidc");
  OidcHub oidc(dir);
  HubProcess& hub = oidc.hub;
  const IdentityProvider& idp = oidc.idp;

  const std::string box_id = UniqueId("oauth");
  const ClientRun run = RunClient(dir, "oidc-life", "life", hub.url, "alice.json",
                                  "oidc:alice@example.com", {box_id});
  INFO(run.log);
  REQUIRE(run.exit_code == 0);
  CHECK(run.log.find("\nOK") != std::string::npos);
  CheckDiscoveryAndRegistration(run.log, hub.url);
  CHECK(run.log.find("STEP signed in at the provider as alice@example.com") != std::string::npos);
  CHECK(run.log.find("STEP consent page names the client") != std::string::npos);
  CHECK(run.log.find("STEP Allow arms after 0.6 s (llmbox-arm)") != std::string::npos);

  CHECK(hub.process.Stop() == 0);
  const std::string log = hub.process.Log();
  // The box was the OIDC principal's: oidc:<issuer>#<subject> (the provider's subject is the
  // login).
  CHECK(log.find("box " + box_id + ": created on spoke local by oidc:" + idp.issuer +
                 "#alice@example.com") != std::string::npos);
  CheckNoOAuthSecrets(log, dir.path / "alice.json");
  CheckNoOAuthSecrets(run.log, dir.path / "alice.json");
}

TEST_CASE(
    "an SDK client signs a person in with their llmbox API key and takes a box through "
    "its life as that key's principal, and revoking the key ends it",
    "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-key");
  KeyHub keyed(dir);
  const std::string& key = keyed.key;
  HubProcess& hub = keyed.hub;

  const std::string box_id = UniqueId("oauth");
  const ClientRun run =
      RunClient(dir, "key-life", "life", hub.url, "alice.json", "key", {box_id}, key);
  INFO(run.log);
  REQUIRE(run.exit_code == 0);
  CHECK(run.log.find("\nOK") != std::string::npos);
  CheckDiscoveryAndRegistration(run.log, hub.url);
  CHECK(run.log.find("STEP signed in on the hub with an API key") != std::string::npos);

  // The key itself still works beside OAuth.
  CHECK(
      McpCall(hub.url, key, "list_llmboxes", json::object(), dir.path / "key-call.log").exit_code ==
      0);

  // Revoking the key ends what was signed in with it: the saved tokens are refused, the
  // refresh too, and the client is asked to sign in again.
  ChildProcess revoke(
      {LLMBOX_HUB_BIN, "apikey", "revoke", "--name", "alice", "--config", keyed.config},
      dir.path / "apikey-revoke.log");
  REQUIRE(revoke.Wait(30s) == 0);
  const ClientRun after =
      RunClient(dir, "key-revoked", "call", hub.url, "alice.json", "", {"list_llmboxes", "{}"});
  INFO(after.log);
  CHECK(after.exit_code == 3);
  CHECK(after.log.find("HTTP POST /token refresh_token -> 400 invalid_grant") != std::string::npos);
  CHECK(after.log.find("AUTHORIZATION REQUIRED") != std::string::npos);
  CHECK(hub.process.Stop() == 0);
  const std::string log = hub.process.Log();
  CHECK(log.find("box " + box_id + ": created on spoke local by key:alice") != std::string::npos);
  CheckNoOAuthSecrets(log, dir.path / "alice.json", {key});
  CheckNoOAuthSecrets(run.log, dir.path / "alice.json", {key});
}

TEST_CASE("a second person's token cannot see or touch the first person's box",
          "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-two");
  OidcHub oidc(dir);
  HubProcess& hub = oidc.hub;
  const IdentityProvider& idp = oidc.idp;

  const std::string box_id = UniqueId("oauth");
  int runs = 0;
  auto alice = [&](const std::string& mode, const std::vector<std::string>& mode_args,
                   const std::string& sign_in = "") {
    return RunClient(dir, "alice-" + std::to_string(++runs), mode, hub.url, "alice.json", sign_in,
                     mode_args);
  };
  auto bob = [&](const std::vector<std::string>& mode_args) {
    return RunClient(dir, "bob-" + std::to_string(++runs), "call", hub.url, "bob.json",
                     "oidc:bob@example.com", mode_args);
  };
  // Whatever happens below, alice's box goes (with her saved tokens; no sign-in).
  bool destroyed = false;
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    if (!destroyed) (void)alice("call", {"destroy_llmbox", json{{"box_id", box_id}}.dump()});
  }};

  const ClientRun created =
      alice("call", {"create_llmbox", json{{"box_id", box_id}}.dump()}, "oidc:alice@example.com");
  CHECK(ResultLine(created)["box_id"] == box_id);

  // Bob signs in (his own registration, grant and tokens) and lists nothing of alice's.
  const ClientRun listed = bob({"list_llmboxes", "{}"});
  CHECK(listed.log.find("STEP signed in at the provider as bob@example.com") != std::string::npos);
  CHECK(BoxIdsOf(ResultLine(listed)).empty());
  for (const std::string tool : {"get_llmbox", "destroy_llmbox", "get_llmbox_logs"}) {
    const ClientRun refused = bob({tool, json{{"box_id", box_id}}.dump()});
    INFO(tool << ": " << refused.log);
    CHECK(refused.exit_code == 1);
    CHECK(refused.log.find("\nERROR ") != std::string::npos);
  }
  // Alice, with her saved tokens and no sign-in, still has her box.
  const ClientRun mine = alice("call", {"list_llmboxes", "{}"});
  CHECK(BoxIdsOf(ResultLine(mine)) == std::vector<std::string>{box_id});
  CHECK(mine.log.find("STEP connected with the saved tokens") != std::string::npos);

  CHECK(ResultLine(alice(
            "call", {"destroy_llmbox", json{{"box_id", box_id}}.dump()}))["destroyed"] == box_id);
  destroyed = true;

  CHECK(hub.process.Stop() == 0);
  const std::string log = hub.process.Log();
  CHECK(log.find("box " + box_id + ": created on spoke local by oidc:" + idp.issuer +
                 "#alice@example.com") != std::string::npos);
  CheckNoOAuthSecrets(log, dir.path / "alice.json");
  CheckNoOAuthSecrets(log, dir.path / "bob.json");
}

TEST_CASE("an expired access token is refreshed by the SDK on the 401, without a new sign-in",
          "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-expiry");
  KeyHub keyed(dir, "    access_token_ttl: 2s\n");
  const std::string& key = keyed.key;
  HubProcess& hub = keyed.hub;

  // The client waits out the token's expires_in itself (its clock, not a fixed sleep here).
  const ClientRun run = RunClient(dir, "expiry", "expiry", hub.url, "alice.json", "key", {}, key);
  INFO(run.log);
  REQUIRE(run.exit_code == 0);
  CHECK(run.log.find("STEP tokens saved: expires_in 2,") != std::string::npos);
  CHECK(run.log.find("\nREFRESHED") != std::string::npos);
  CHECK(hub.process.Stop() == 0);
  CheckNoOAuthSecrets(hub.process.Log(), dir.path / "alice.json", {key});
}

TEST_CASE(
    "revoking a person's grants with llmbox-hub oauth revoke while the hub serves ends "
    "their session",
    "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-revoke");
  KeyHub keyed(dir);
  const std::string& key = keyed.key;
  const std::string& config = keyed.config;
  HubProcess& hub = keyed.hub;

  const fs::path go = dir.path / "go";
  std::vector<std::string> argv = {
      "node",    NodeScript("oauth_client.mjs"),     "revoke",    hub.url + "/", go.string(),
      "--state", (dir.path / "alice.json").string(), "--sign-in", "key"};
  ::setenv("LLMBOX_API_KEY", key.c_str(), 1);
  ChildProcess client(argv, dir.path / "client-revoke.log");
  ::unsetenv("LLMBOX_API_KEY");
  client.WaitForLog("\n(PAUSED)\n", 180s);

  ChildProcess listed({LLMBOX_HUB_BIN, "oauth", "list", "--config", config},
                      dir.path / "oauth-list.log");
  REQUIRE(listed.Wait(30s) == 0);
  INFO(listed.Log());
  CHECK(listed.Log().find("key:alice") != std::string::npos);
  CHECK(listed.Log().find("llmbox e2e SDK client") != std::string::npos);

  ChildProcess revoke(
      {LLMBOX_HUB_BIN, "oauth", "revoke", "--principal", "key:alice", "--config", config},
      dir.path / "oauth-revoke.log");
  REQUIRE(revoke.Wait(30s) == 0);
  INFO(revoke.Log());
  CHECK(revoke.Log().find("1 OAuth grant(s) revoked") != std::string::npos);
  ChildProcess all({LLMBOX_HUB_BIN, "oauth", "list", "--all", "--config", config},
                   dir.path / "oauth-list-all.log");
  REQUIRE(all.Wait(30s) == 0);
  INFO(all.Log());
  CHECK(all.Log().find("revoked by the operator") != std::string::npos);
  std::ofstream(go) << "go\n";

  const int exit_code = client.Wait(120s);
  INFO(client.Log());
  CHECK(exit_code == 0);
  CHECK(client.Log().find("\nREVOKED") != std::string::npos);
  CHECK(client.Log().find("HTTP POST /token refresh_token -> 400 invalid_grant") !=
        std::string::npos);
  // The key itself is not what was revoked.
  CHECK(
      McpCall(hub.url, key, "list_llmboxes", json::object(), dir.path / "key-call.log").exit_code ==
      0);
  CHECK(hub.process.Stop() == 0);
  CheckNoOAuthSecrets(hub.process.Log(), dir.path / "alice.json", {key});
  CheckNoOAuthSecrets(listed.Log() + revoke.Log(), dir.path / "alice.json", {key});
}

// An attacker with plain HTTP: a registered client of their own, a person's key sign-in
// (OAuthHttpClient), and everything they might try with what the flow handed them.
TEST_CASE(
    "an attacker's replayed code, query-string token, other resource or altered token "
    "is refused",
    "[e2e][hub][oauth]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-oauth-attacks");
  const int port = UnusedLoopbackPort();
  WriteConfig(dir.path, rig, rig.standin_claude, AuthWithOAuth("api_key"), "", "",
              "127.0.0.1:" + std::to_string(port));
  const std::string config = (dir.path / "hub.yaml").string();
  const std::string key = CreateKey(dir, "mallory", false);
  std::vector<std::string> secrets = {key};
  const std::string redirect = "http://127.0.0.1:9/callback";
  const std::string other = "https://other-hub.example";

  auto hub = std::make_unique<HubProcess>(config, dir.path / "hub.log");
  const std::string url = hub->url;
  OAuthHttpClient oauth(url);
  auto client_id = oauth.Register(redirect, "attacker");
  REQUIRE(client_id.ok());
  // One whole flow: the tokens, and the code and verifier that bought them.
  struct Flow {
    std::string code;
    Pkce pkce;
    OAuthTokens tokens;
  };
  auto flow = [&](const std::string& state) {
    Flow f{.pkce = Pkce::Make()};
    auto code = oauth.AuthorizeWithKey(*client_id, redirect, f.pkce, key, state, url);
    INFO(code.status().message());
    REQUIRE(code.ok());
    f.code = *code;
    auto tokens = oauth.ExchangeCode(*client_id, f.code, redirect, f.pkce.verifier, url);
    INFO(tokens.status().message());
    REQUIRE(tokens.ok());
    f.tokens = *tokens;
    secrets.insert(secrets.end(),
                   {f.code, f.pkce.verifier, f.tokens.access_token, f.tokens.refresh_token});
    return f;
  };
  auto status_with = [&](const std::string& token) {
    McpHttpSession mcp(url + "/", token);
    return mcp.Initialize();
  };

  SECTION("a code used twice is refused, and what it issued is revoked") {
    const Flow first = flow("state-replay");
    REQUIRE(status_with(first.tokens.access_token).status == 200);
    const HttpResult replay = oauth.TokenRequest({{"grant_type", "authorization_code"},
                                                  {"code", first.code},
                                                  {"redirect_uri", redirect},
                                                  {"code_verifier", first.pkce.verifier},
                                                  {"client_id", *client_id}});
    CHECK(replay.status == 400);
    CHECK(OAuthErrorOf(replay) == "invalid_grant");
    CHECK(replay.body.find("access_token") == std::string::npos);
    const HttpResult refused = status_with(first.tokens.access_token);
    CHECK(refused.status == 401);
    CHECK(refused.Header("www-authenticate").find("error=\"invalid_token\"") != std::string::npos);
    auto refreshed = oauth.Refresh(*client_id, first.tokens.refresh_token);
    CHECK_FALSE(refreshed.ok());
    CHECK(std::string(refreshed.status().message()).find("invalid_grant") != std::string::npos);
  }
  SECTION("a token in the query string is refused; the same token in the header is not") {
    const Flow f = flow("state-query");
    PlainHttp http;
    const std::string initialize =
        R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":)"
        R"("2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}})";
    const std::vector<std::string> accept = {"Accept: application/json, text/event-stream"};
    for (const std::string name : {"access_token", "token", "bearer"}) {
      const HttpResult posted = http.Post(url + "/?" + FormEncode({{name, f.tokens.access_token}}),
                                          initialize, "application/json", accept);
      INFO(name << ": " << posted.body);
      CHECK(posted.status == 401);
      CHECK(posted.Header("www-authenticate").find("resource_metadata=") != std::string::npos);
    }
    // As a form field of the body (RFC 6750 §2.2), also not a way in.
    const HttpResult form =
        http.Post(url + "/", FormEncode({{"access_token", f.tokens.access_token}}),
                  "application/x-www-form-urlencoded", accept);
    INFO(form.body);
    CHECK(form.status / 100 == 4);
    CHECK(form.body.find("protocolVersion") == std::string::npos);
    CHECK(status_with(f.tokens.access_token).status == 200);
  }
  SECTION("another resource is refused at authorize, token and refresh") {
    const Pkce pkce = Pkce::Make();
    auto authorize_for = [&](const std::string& id, const std::string& redirect_uri) {
      return oauth.StartAuthorize({{"response_type", "code"},
                                   {"client_id", id},
                                   {"redirect_uri", redirect_uri},
                                   {"code_challenge", pkce.challenge},
                                   {"code_challenge_method", "S256"},
                                   {"state", "state-other"},
                                   {"resource", other}});
    };
    // To a loopback redirect the hub sends no error (a local listener may not be the app's):
    // it says so on its own page.
    const HttpResult local = authorize_for(*client_id, redirect);
    INFO(local.headers << local.body);
    CHECK(local.status == 400);
    CHECK(local.Header("location").empty());
    CHECK(local.body.find("only for its own resource") != std::string::npos);
    // To a listed https redirect (claude.ai's, never followed here): the RFC's error redirect.
    const std::string claude = "https://claude.ai/api/mcp/auth_callback";
    auto claude_client = oauth.Register(claude, "claude-like");
    REQUIRE(claude_client.ok());
    const HttpResult authorize = authorize_for(*claude_client, claude);
    INFO(authorize.headers << authorize.body);
    CHECK(authorize.status / 100 == 3);
    CHECK(authorize.Header("location").rfind(claude + "?", 0) == 0);
    CHECK(QueryParam(authorize.Header("location"), "error") == "invalid_target");
    CHECK(QueryParam(authorize.Header("location"), "state") == "state-other");
    CHECK_FALSE(QueryParam(authorize.Header("location"), "code").has_value());

    const Pkce second = Pkce::Make();
    auto code = oauth.AuthorizeWithKey(*client_id, redirect, second, key, "state-aud", url);
    REQUIRE(code.ok());
    secrets.push_back(*code);
    const HttpResult exchange = oauth.TokenRequest({{"grant_type", "authorization_code"},
                                                    {"code", *code},
                                                    {"redirect_uri", redirect},
                                                    {"code_verifier", second.verifier},
                                                    {"client_id", *client_id},
                                                    {"resource", other}});
    CHECK(exchange.status == 400);
    CHECK(OAuthErrorOf(exchange) == "invalid_target");
    CHECK(exchange.body.find("access_token") == std::string::npos);

    const Flow f = flow("state-refresh");
    const HttpResult refresh = oauth.TokenRequest({{"grant_type", "refresh_token"},
                                                   {"refresh_token", f.tokens.refresh_token},
                                                   {"client_id", *client_id},
                                                   {"resource", other}});
    CHECK(refresh.status == 400);
    CHECK(OAuthErrorOf(refresh) == "invalid_target");
    CHECK(refresh.body.find("access_token") == std::string::npos);
  }
  SECTION("an altered token is refused") {
    const Flow f = flow("state-altered");
    std::string altered = f.tokens.access_token;
    altered.back() = altered.back() == 'A' ? 'B' : 'A';
    const HttpResult refused = status_with(altered);
    CHECK(refused.status == 401);
    CHECK(refused.Header("www-authenticate").find("error=\"invalid_token\"") != std::string::npos);
    CHECK(status_with(f.tokens.refresh_token).status == 401);  // a refresh token is no access token
    CHECK(status_with(f.tokens.access_token).status == 200);
  }
  SECTION("a token issued for this hub is refused by a hub at another URL on the same state") {
    const Flow f = flow("state-audience");
    // The same hub again at its own URL: the token is still good (a restart is not what
    // refuses it below).
    REQUIRE(hub->process.Stop() == 0);
    hub = std::make_unique<HubProcess>(config, dir.path / "hub-same-url.log");
    REQUIRE(hub->url == url);
    CHECK(status_with(f.tokens.access_token).status == 200);
    REQUIRE(hub->process.Stop() == 0);
    hub.reset();
    // Another resource: the same store, served at another URL.
    const int other_port = UnusedLoopbackPort();
    std::string yaml = ReadFileOrEmpty(config);
    const std::string listen = "listen: 127.0.0.1:" + std::to_string(port);
    yaml.replace(yaml.find(listen), listen.size(),
                 "listen: 127.0.0.1:" + std::to_string(other_port));
    std::ofstream(dir.path / "hub-other.yaml") << yaml;
    HubProcess moved((dir.path / "hub-other.yaml").string(), dir.path / "hub-other-url.log");
    McpHttpSession mcp(moved.url + "/", f.tokens.access_token);
    const HttpResult refused = mcp.Initialize();
    CHECK(refused.status == 401);
    CHECK(refused.Header("www-authenticate").find("error=\"invalid_token\"") != std::string::npos);
    CHECK(refused.Header("www-authenticate").find(moved.url + "/.well-known/") !=
          std::string::npos);
    CHECK(moved.process.Stop() == 0);
    for (const auto* log : {"hub-other-url.log", "hub-same-url.log"}) {
      CheckNoOAuthSecrets(ReadFileOrEmpty(dir.path / log), dir.path / "none", secrets);
    }
  }
  if (hub) {
    CHECK(hub->process.Stop() == 0);
    CheckNoOAuthSecrets(hub->process.Log(), dir.path / "none", secrets);
  }
}

TEST_CASE("the MCP conformance suite's authorization checks pass against the hub",
          "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-conformance");
  const int callback_port = UnusedLoopbackPort();
  const std::string callback = "http://127.0.0.1:" + std::to_string(callback_port) + "/callback";
  // A pre-registered public client for the suite (it takes a client id, it does not register).
  KeyHub keyed(dir,
               "    clients:\n      - client_id: conformance\n"
               "        name: MCP conformance suite\n"
               "        redirect_uris: [" +
                   callback + "]\n");
  const std::string& key = keyed.key;
  HubProcess& hub = keyed.hub;

  ChildProcess suite(
      {"npx", "-y", "-p", "node@22", "-p", "@modelcontextprotocol/conformance@0.2.0-alpha.12", "--",
       "conformance", "authorization", "--url", hub.url, "--client-id", "conformance", "--resource",
       hub.url, "-p", std::to_string(callback_port), "-o", (dir.path / "conformance").string()},
      dir.path / "conformance.log");
  // The suite prints the authorize URL for a person to open; the browser does it.
  const std::string authorize = suite.WaitForLog("\n(" + hub.url + "/authorize\\?[^\n]+)\n", 300s);
  ::setenv("LLMBOX_API_KEY", key.c_str(), 1);
  ChildProcess browser({"node", NodeScript("oauth_client.mjs"), "browse", authorize, callback,
                        "--sign-in", "key", "--client-name", "MCP conformance suite"},
                       dir.path / "client-browser.log");
  ::unsetenv("LLMBOX_API_KEY");
  const int browser_exit = browser.Wait(120s);
  INFO(browser.Log());
  CHECK(browser_exit == 0);
  // The suite waits 5 minutes for a callback that a failed browser never sends.
  const int exit_code = browser_exit == 0 ? suite.Wait(300s) : suite.Stop();
  INFO(suite.Log());
  CHECK(exit_code == 0);
  // Passed, not skipped: the metadata (with client_id_metadata_document_supported) and the
  // code grant through the browser's sign-in and consent.
  CHECK(suite.Log().find("authorization-server-metadata-endpoint: 2 passed, 0 failed") !=
        std::string::npos);
  CHECK(suite.Log().find("authorization-code-grant: 1 passed, 0 failed") != std::string::npos);
  CHECK(browser.Log().find("REDIRECTED " + callback + "?code&state&iss") != std::string::npos);
  CHECK(hub.process.Stop() == 0);
  CheckNoOAuthSecrets(hub.process.Log(), dir.path / "none", {key});
}

TEST_CASE("llmbox-hub check-config says what a person types in claude.ai and who may sign in",
          "[e2e][hub][oauth]") {
  HubDir dir("llmbox-oauth-check-config");
  std::ofstream(dir.path / "secret") << "not-a-real-secret\n";
  std::ofstream(dir.path / "hub.yaml")
      << "hub:\n  public_url: https://hub.example.com\n  state_dir: " << dir.path.string()
      << "\nlocal_spoke:\n  enabled: false\nauth:\n  oauth:\n    enabled: true\n"
         "activation:\n  oidc:\n    issuer: https://idp.example.com\n    client_id: llmbox\n"
         "    client_secret_file: secret\n    allowed_emails: [alice@example.com]\n"
         "    allowed_domains: [corp.example]\n";
  ChildProcess checked(
      {LLMBOX_HUB_BIN, "check-config", "--config", (dir.path / "hub.yaml").string()},
      dir.path / "check.log");
  REQUIRE(checked.Wait(30s) == 0);
  const std::string out = checked.Log();
  INFO(out);
  CHECK(out.find("Add custom connector, name llmbox, URL https://hub.example.com (no client ID "
                 "or secret needed); people sign in at https://idp.example.com") !=
        std::string::npos);
  CHECK(out.find("(activation.oidc's allow-list): alice@example.com, anyone @corp.example") !=
        std::string::npos);
  CHECK(out.find("not-a-real-secret") == std::string::npos);

  // Plain http beyond loopback is refused, naming the way out.
  std::ofstream(dir.path / "http.yaml")
      << "hub:\n  public_url: http://hub.example.com\n  state_dir: " << dir.path.string()
      << "\nlocal_spoke:\n  enabled: false\nauth:\n  oauth:\n    enabled: true\n";
  ChildProcess refused(
      {LLMBOX_HUB_BIN, "check-config", "--config", (dir.path / "http.yaml").string()},
      dir.path / "http.log");
  CHECK(refused.Wait(30s) == 1);
  CHECK(refused.Log().find("auth.oauth needs an https hub.public_url") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
