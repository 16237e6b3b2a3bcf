// Quotas per principal against a real llmbox-hub: keys made with the real `llmbox-hub apikey
// create`, real boxes on the rig's engine 1 (the stand-in Claude), the official MCP SDK client
// (tests/e2e/node/mcp_call.mjs). With hub.quotas.boxes_alive: 1, a key's second create is
// refused naming the limit, and succeeds once its first box is destroyed; another key is
// unaffected.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
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

TEST_CASE(
    "with boxes_alive 1 a key's second create is refused naming the limit, and succeeds "
    "after a destroy, and another key is unaffected",
    "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-quotas");
  WriteConfig(dir.path, rig, rig.standin_claude, "required");
  AddToHubSection(dir.path / "hub.yaml", "  quotas:\n    boxes_alive: 1\n");
  const std::string alice = CreateKey(dir, "alice", false);
  const std::string bob = CreateKey(dir, "bob", false);
  const std::string root = CreateKey(dir, "root", true);

  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  int calls = 0;
  auto call = [&](const std::string& key, const std::string& tool, const json& args) {
    return McpCall(hub.url, key, tool, args,
                   dir.path / ("call-" + std::to_string(++calls) + ".log"));
  };
  const std::string first = UniqueId("quotas");
  const std::string second = UniqueId("quotas");
  const std::string bobs = UniqueId("quotas");
  // Whatever happens below, the boxes go (the admin key can destroy every one).
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    for (const std::string& id : {first, second, bobs}) {
      (void)call(root, "destroy_llmbox", {{"box_id", id}});
    }
  }};

  CHECK(ResultOf(call(alice, "create_llmbox", {{"box_id", first}}))["box_id"] == first);
  const std::string refused = ErrorOf(call(alice, "create_llmbox", {{"box_id", second}}));
  CHECK_THAT(refused, Catch::Matchers::Contains(
                          "quota: key:alice has 1 box alive, and hub.quotas.boxes_alive allows 1"));
  CHECK_THAT(refused, Catch::Matchers::Contains("destroy one of its boxes first"));
  // The refused create left nothing behind: the id is still free.
  CHECK_THAT(ErrorOf(call(alice, "get_llmbox", {{"box_id", second}})),
             Catch::Matchers::Contains("no box"));

  // Bob's quota is his own: alice's box does not count against it.
  CHECK(ResultOf(call(bob, "create_llmbox", {{"box_id", bobs}}))["box_id"] == bobs);

  CHECK(ResultOf(call(alice, "destroy_llmbox", {{"box_id", first}}))["destroyed"] == first);
  CHECK(ResultOf(call(alice, "create_llmbox", {{"box_id", second}}))["box_id"] == second);
}

}  // namespace
}  // namespace llmbox::testing
