// Many people on one hub: a real llmbox-hub with API keys required, keys made with the real
// `llmbox-hub apikey create` command, real boxes on the rig's engine 1 (the stand-in Claude),
// and the official MCP SDK client (tests/e2e/node/mcp_call.mjs). Each key sees and acts on its
// own boxes only; another key's box answers exactly as a missing one; an admin key sees all.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::vector<std::string> BoxIds(const json& listed) {
  std::vector<std::string> ids;
  for (const json& box : listed["boxes"]) ids.push_back(box["box_id"].get<std::string>());
  return ids;
}

bool Has(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

TEST_CASE("with two keys, bob meets alice's box only as a missing one, and an admin sees both",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-tenancy");
  WriteConfig(dir.path, rig, rig.standin_claude, "required");
  const std::string alice = CreateKey(dir, "alice", false);
  const std::string bob = CreateKey(dir, "bob", false);
  const std::string root = CreateKey(dir, "root", true);
  {
    ChildProcess keys(
        {LLMBOX_HUB_BIN, "apikey", "list", "--config", (dir.path / "hub.yaml").string()},
        dir.path / "keys.log");
    REQUIRE(keys.Wait(30s) == 0);
    INFO(keys.Log());
    CHECK(std::regex_search(keys.Log(), std::regex("\nalice +user +[0-9T:-]+Z +live")));
    CHECK(std::regex_search(keys.Log(), std::regex("\nroot +admin +[0-9T:-]+Z +live")));
  }

  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  int calls = 0;
  auto call = [&](const std::string& key, const std::string& tool, const json& args) {
    return McpCall(hub.url, key, tool, args,
                   dir.path / ("call-" + std::to_string(++calls) + ".log"));
  };
  // Same length as the real ids, so the answers can be compared byte for byte.
  const std::string alice_box = UniqueId("tenancy");
  const std::string bob_box = UniqueId("tenancy");
  const std::string missing = UniqueId("tenancy");
  // Whatever happens below, the boxes go (the admin key can destroy both).
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    for (const std::string& id : {alice_box, bob_box}) {
      (void)call(root, "destroy_llmbox", {{"box_id", id}});
    }
  }};

  const json created = ResultOf(call(alice, "create_llmbox", {{"box_id", alice_box}}));
  CHECK(created["box_id"] == alice_box);
  ResultOf(call(bob, "create_llmbox", {{"box_id", bob_box}}));

  SECTION("bob cannot see, get, log, exec, re-network or destroy alice's box") {
    const json bobs = ResultOf(call(bob, "list_llmboxes", json::object()));
    REQUIRE(BoxIds(bobs) == std::vector<std::string>{bob_box});
    CHECK(bobs.dump().find(alice_box) == std::string::npos);
    CHECK(bobs["boxes"][0].contains("owner") == false);

    const std::vector<std::pair<std::string, json>> attempts = {
        {"get_llmbox", json::object()},
        {"get_llmbox_logs", json::object()},
        {"exec_llmbox", {{"command", {"touch", "/workspace/bob-was-here"}}}},
        {"set_llmbox_network", {{"add", {"pypi.org"}}}},
        {"destroy_llmbox", json::object()},
    };
    for (const auto& [tool, extra] : attempts) {
      INFO(tool);
      json theirs = extra;
      theirs["box_id"] = alice_box;
      json none = extra;
      none["box_id"] = missing;
      const std::string refused = ErrorOf(call(bob, tool, theirs));
      std::string expected = ErrorOf(call(bob, tool, none));
      REQUIRE(expected.find(missing) != std::string::npos);
      expected.replace(expected.find(missing), missing.size(), alice_box);
      CHECK(refused == expected);
      CHECK(refused.find("alice") == std::string::npos);
    }
    // The id is taken, without saying by whom.
    const std::string taken = ErrorOf(call(bob, "create_llmbox", {{"box_id", alice_box}}));
    CHECK(taken == "box id \"" + alice_box + "\" is taken on this hub: pick another");

    // Alice's box is untouched: still there, still hers, and bob's exec never ran in it.
    const json mine = ResultOf(call(alice, "get_llmbox", {{"box_id", alice_box}}));
    CHECK(mine["status"] == "pending");
    CHECK(mine.contains("owner") == false);
    const json ls = ResultOf(
        call(alice, "exec_llmbox",
             {{"box_id", alice_box}, {"command", {"sh", "-c", "ls -a /workspace; echo done"}}}));
    CHECK(ls["exit_code"] == 0);
    CHECK(ls["stdout"].get<std::string>().find("done") != std::string::npos);
    CHECK(ls["stdout"].get<std::string>().find("bob-was-here") == std::string::npos);
    CHECK(BoxIds(ResultOf(call(alice, "list_llmboxes", json::object()))) ==
          std::vector<std::string>{alice_box});
  }

  SECTION("the admin key sees both boxes with their owners and can act on them") {
    const json all = ResultOf(call(root, "list_llmboxes", json::object()));
    const std::vector<std::string> ids = BoxIds(all);
    CHECK(Has(ids, alice_box));
    CHECK(Has(ids, bob_box));
    for (const json& box : all["boxes"]) {
      if (box["box_id"] == alice_box) CHECK(box["owner"] == "key:alice");
      if (box["box_id"] == bob_box) CHECK(box["owner"] == "key:bob");
    }
    CHECK(ResultOf(call(root, "get_llmbox", {{"box_id", bob_box}}))["owner"] == "key:bob");
    CHECK(ResultOf(call(root, "destroy_llmbox", {{"box_id", bob_box}}))["destroyed"] == bob_box);
    CHECK(BoxIds(ResultOf(call(bob, "list_llmboxes", json::object()))).empty());
    // Alice's own destroy works on her own box.
    CHECK(ResultOf(call(alice, "destroy_llmbox", {{"box_id", alice_box}}))["destroyed"] ==
          alice_box);
    CHECK_FALSE(Has(BoxIds(ResultOf(call(root, "list_llmboxes", json::object()))), alice_box));
  }
}

// The suite-wide log check (HubDir's end) against a folder made by hand: it fails on a hub log
// holding a token that a client's log shows in a link, and passes when only the client has it.
TEST_CASE("the token check fails a test whose hub log holds an activation token",
          "[e2e][hub][!shouldfail]") {
  HubDir dir("llmbox-token-check-bad");
  const std::string token(43, 'T');
  std::ofstream(dir.path / "call-1.log")
      << "RESULT {\"auth_url\":\"http://h/auth/" << token << "\"}\n";
  std::ofstream(dir.path / "hub.log") << "activation: code for " << token << "\n";
}

TEST_CASE("the token check passes when only the client's log holds the link", "[e2e][hub]") {
  const std::string token(43, 'T');
  {
    HubDir dir("llmbox-token-check-good");
    std::ofstream(dir.path / "call-1.log")
        << "RESULT {\"auth_url\":\"http://h/auth/" << token << "\"}\n";
    std::ofstream(dir.path / "hub.log") << "activation: box b1: a code was submitted\n";
  }
  SUCCEED("no server log held the token");
}

}  // namespace
}  // namespace llmbox::testing
