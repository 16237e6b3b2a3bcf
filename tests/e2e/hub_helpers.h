// tests/e2e/hub_helpers.h
//
// What the hub's e2e tests share: llmbox-hub serve as a process and one MCP tool call with
// the official SDK client (tests/e2e/node/mcp_call.mjs).
//
//   HubProcess hub(config, dir / "hub.log");
//   auto created = McpCall(hub.url, key, "create_llmbox", {{"box_id", id}}, dir / "c.log");
//   REQUIRE(created.exit_code == 0);
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {

// `prefix`-<10 hex characters>: a box id or name no earlier run used.
std::string UniqueId(const std::string& prefix);

// Fails the current test when a log of the hub or a spoke in `dir` (a *.log file whose name
// starts with "hub" or "spoke") holds an activation token that any log in `dir` shows in a link.
void CheckNoTokenInServerLogs(const std::filesystem::path& dir);

// A fresh folder under the temp dir named for the test, removed at the end, after
// CheckNoTokenInServerLogs on it (every e2e test that runs a hub in one is checked).
struct HubDir {
  explicit HubDir(const std::string& name);
  ~HubDir();
  std::filesystem::path path;
};

// A hub config (hub.yaml in `dir`) listening on `listen` (loopback port 0 unless given) with
// the local spoke on the rig's engine 1, `api_keys` auto/required/off, `local_spoke_extra`
// (keys indented under local_spoke) and `extra_yaml` (whole sections) appended.
void WriteConfig(const std::filesystem::path& dir, const RigEnv& rig, const std::string& claude_bin,
                 const std::string& api_keys, const std::string& local_spoke_extra = "",
                 const std::string& extra_yaml = "", const std::string& listen = "127.0.0.1:0");

// A port on 127.0.0.1 that nothing listens on now, for a server whose URL must be known
// before it starts (an OIDC redirect URI). Drawn below the kernel's ephemeral range
// (32768+), where port-0 binds and outgoing connections never land, and away from the
// rig's fixed ports.
int UnusedLoopbackPort();

// Waits (polling) until something accepts TCP connections on 127.0.0.1:`port`; fails the test
// after `limit`.
void WaitForLoopbackPort(int port, std::chrono::seconds limit = std::chrono::seconds(30));

// A script of the pinned node clients (build/e2e-node).
std::string NodeScript(const std::string& name);

// llmbox-hub serve as a process, and its MCP URL once it listens.
struct HubProcess {
  HubProcess(const std::string& config, const std::filesystem::path& log);
  ChildProcess process;
  const std::string url;  // without the trailing slash
};

struct CallResult {
  int exit_code;
  std::string log;
};

// One tool call with the official SDK client; exit code 0 with `RESULT <json>` in the log.
CallResult McpCall(const std::string& url, const std::string& key, const std::string& tool,
                   const nlohmann::json& arguments, const std::filesystem::path& log);

// Puts `lines` (indented for the hub: section) at the top of the hub: section of `config`,
// a file WriteConfig wrote.
void AddToHubSection(const std::filesystem::path& config, const std::string& lines);

// The structured result of a successful call (fails the test otherwise).
nlohmann::json ResultOf(const CallResult& call);
// The text of an error result (exit code 1: the call connected and the tool refused).
std::string ErrorOf(const CallResult& call);

// `llmbox-hub apikey create --name <name> [--admin]` against the hub.yaml in `dir`: the key it
// prints.
std::string CreateKey(const HubDir& dir, const std::string& name, bool admin);

// Every form a secret's bytes are searched for in output and logs: plain, reversed, hex (lower
// and upper), base64 and base64url of the secret alone and at the two other byte alignments
// inside a longer stream (the characters that depend on the secret's bytes only). Pairs of
// (form name, needle).
std::vector<std::pair<std::string, std::string>> SecretForms(const std::string& secret);

// "<kind> (<form>)" for each secret of `secrets` (kind -> secret) that `text` holds in one of
// its SecretForms, as it is or with whitespace removed (wrapped base64, spaced hex).
std::vector<std::string> SecretsIn(const std::string& text,
                                   const std::map<std::string, std::string>& secrets);

// The HTTP status of a GET of `url` (curl, 10 s at most); 0 when none came.
int HttpStatusOfGet(const std::string& url, const std::filesystem::path& log);

}  // namespace llmbox::testing
