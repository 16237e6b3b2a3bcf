// One caller cannot hold the hub: a real llmbox-hub with API keys and few workers, where alice
// holds her whole share of the workers with slow execs (through the official MCP SDK client)
// while bob's calls and the health endpoints keep answering.

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST_CASE("one caller's slow execs cannot stop the hub answering another caller and its health",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-fairness");
  WriteConfig(dir.path, rig, rig.standin_claude, "required");
  // Four workers: each caller may hold two of them.
  AddToHubSection(dir.path / "hub.yaml", "  worker_threads: 4\n");
  const std::string alice = CreateKey(dir, "alice", false);
  const std::string bob = CreateKey(dir, "bob", false);
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  int calls = 0;
  auto call = [&](const std::string& key, const std::string& tool, const json& args) {
    return McpCall(hub.url, key, tool, args,
                   dir.path / ("call-" + std::to_string(++calls) + ".log"));
  };
  const std::string box = UniqueId("fairness");
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] { (void)call(alice, "destroy_llmbox", {{"box_id", box}}); }};
  ResultOf(call(alice, "create_llmbox", {{"box_id", box}}));

  // Alice's two slow execs hold her share of the workers.
  std::vector<std::thread> slow;
  std::vector<CallResult> slow_results(2);
  for (int i = 0; i < 2; ++i) {
    slow.emplace_back([&, i] {
      slow_results[i] = McpCall(hub.url, alice, "exec_llmbox",
                                {{"box_id", box}, {"command", {"sleep", "20"}}, {"timeout_s", 60}},
                                dir.path / ("slow-" + std::to_string(i) + ".log"));
    });
  }
  struct Join {
    std::vector<std::thread>& threads;
    ~Join() {
      for (auto& t : threads) t.join();
    }
  } join{slow};
  // Both run once the box's exec container shows two sleeps (the engine, as the operator).
  EngineHttp engine(rig.docker_sock);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int sleeping = 0;
  while (sleeping < 2 && std::chrono::steady_clock::now() < deadline) {
    const HttpReply top = engine.Call("GET", "/v1.41/containers/llmbox-exec-" + box + "/top");
    const json processes = json::parse(top.body, nullptr, false);
    sleeping = 0;
    if (processes.is_object() && processes["Processes"].is_array()) {
      for (const json& row : processes["Processes"]) {
        if (row.dump().find("sleep 20") != std::string::npos) ++sleeping;
      }
    }
    if (sleeping < 2) std::this_thread::sleep_for(200ms);
  }
  REQUIRE(sleeping == 2);
  // A third of hers is refused, naming the limit.
  CHECK(ErrorOf(call(alice, "exec_llmbox", {{"box_id", box}, {"command", {"true"}}})) ==
        "you have 2 tool calls running, the limit per caller (max_calls_per_caller); wait for one "
        "to finish");

  // Meanwhile bob and the health endpoints are answered.
  const auto started = std::chrono::steady_clock::now();
  const json bobs = ResultOf(call(bob, "list_llmboxes", json::object()));
  CHECK(bobs["boxes"].empty());
  CHECK(HttpStatusOfGet(hub.url + "/healthz", dir.path / "healthz.log") == 200);
  CHECK(HttpStatusOfGet(hub.url + "/readyz", dir.path / "readyz.log") == 200);
  // Still within alice's sleeps: the answers did not wait for her calls to end.
  CHECK(std::chrono::steady_clock::now() - started < 20s);
  for (auto& t : slow) t.join();
  slow.clear();
  for (const CallResult& result : slow_results) {
    CHECK(ResultOf(result)["exit_code"] == 0);
  }
}

}  // namespace
}  // namespace llmbox::testing
