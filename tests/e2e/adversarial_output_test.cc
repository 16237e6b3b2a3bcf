// The hub survives any box output: llmbox-hub serve as a process, its local spoke on the rig's
// engine 1 with the real box image, driven by the official MCP SDK client as a chatbot would.
// Execs print a MiB without a newline, random bytes, NUL, bytes that are not UTF-8, terminal
// escapes and runs crafted for each redaction pattern; the box's console gets hostile bytes
// (written as root through the engine, the operator's path, not the chatbot's) before its logs
// are read. After each: the tool answered, as JSON, within the output caps, and the hub still
// answers /healthz and another tool call.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "spoke/docker/curl_engine.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

// The hub's caps (RegistryOptions): 64 KiB per exec stream and of logs, before redaction.
// After it, each byte that is not UTF-8 may become U+FFFD (three bytes) and a redaction
// marker may be longer than what it hides: what comes back is bounded by a small multiple,
// never the MiB that was printed.
constexpr size_t kCap = 64u << 10;
constexpr size_t kBound = 8 * kCap;

// The hub process is alive and serving: /healthz answers 200 and a tool call succeeds.
void CheckHubServes(HubProcess& hub, const fs::path& dir, const std::string& step) {
  INFO("after " << step);
  ChildProcess health({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                       hub.url + "/healthz"},
                      dir / ("healthz-" + step + ".log"));
  REQUIRE(health.Wait(30s) == 0);
  CHECK(health.Log().find("200") != std::string::npos);
  const CallResult list =
      McpCall(hub.url, "", "list_llmboxes", json::object(), dir / ("list-" + step + ".log"));
  INFO(list.log);
  REQUIRE(list.exit_code == 0);
}

// Destroys the box however the test ends: through the hub, and through the engine when the hub
// is gone (boxes of this test are named output-*).
struct BoxGuard {
  ~BoxGuard() {
    if (hub != nullptr) {
      (void)McpCall(hub->url, "", "destroy_llmbox", {{"box_id", box_id}}, dir / "destroy.log");
    }
    auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = socket});
    if (!engine.ok()) return;
    auto left = (*engine)->ListContainers({{"io.llmbox.box-id", box_id}});
    if (!left.ok()) return;
    for (const auto& container : *left) (void)(*engine)->RemoveContainer(container.id, true);
    auto networks = (*engine)->ListNetworks({{"io.llmbox.box-id", box_id}});
    if (!networks.ok()) return;
    for (const auto& network : *networks) (void)(*engine)->RemoveNetwork(network.id);
  }
  HubProcess* hub = nullptr;
  std::string box_id;
  std::string socket;
  fs::path dir;
};

struct Probe {
  std::string name;
  std::string script;  // for sh -c
};

TEST_CASE("the hub survives whatever a box prints in exec output and on its console",
          "[e2e][hub]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-adversarial-output");
  // The stand-in Claude reaches the paste prompt: the box is pending, which is all exec needs.
  WriteConfig(dir.path, rig, rig.standin_claude, "off");
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  const std::string box_id = UniqueId("output");
  BoxGuard guard{&hub, box_id, rig.docker_sock, dir.path};
  const CallResult created =
      McpCall(hub.url, "", "create_llmbox", {{"box_id", box_id}}, dir.path / "create.log");
  INFO(created.log);
  REQUIRE(created.exit_code == 0);

  // Safe for today's std::regex redaction first; the long runs that bait its patterns (which
  // overflow its recursion) last.
  const std::vector<Probe> probes = {
      {"a MiB of random bytes", "head -c 1048576 /dev/urandom"},
      {"random bytes on stderr too", "head -c 1048576 /dev/urandom >&2; head -c 4096 /dev/urandom"},
      {"NUL bytes", "head -c 1048576 /dev/zero"},
      {"bytes that are not UTF-8",
       R"(printf 'a\377\376b\200c\300\257d\355\240\200e\364\220\200\200f\342\224'; )"
       R"(i=0; while [ $i -lt 2000 ]; do printf '\355\240\200\300\257\377'; i=$((i+1)); done)"},
      {"terminal escapes",
       R"(i=0; while [ $i -lt 3000 ]; do printf '\033[2J\033[31m\033]0;t\007\033]8;;)"
       R"(https://evil.example/\033\\x\033]8;;\033\\\033P+q\033\\\r\b\007'; i=$((i+1)); done)"},
      {"a MiB line without a newline", "head -c 1048576 /dev/zero | tr '\\000' a"},
      {"code= repeated over a MiB",
       "yes '?code=abcdefgh&state=ijklmnop&token=q&' | head -c 1048576 | tr -d '\\n'"},
      {"an authorize URL a MiB long",
       "printf 'https://claude.ai/oauth/authorize?'; head -c 1048576 /dev/zero | tr '\\000' x"},
      {"a key prefix and a MiB of key characters",
       "printf 'sk-ant-'; head -c 1048576 /dev/zero | tr '\\000' A"},
      {"Bearer repeated over a MiB", "yes 'Bearer ' | head -c 1048576 | tr -d '\\n'"},
      {"a JWT shape a MiB long",
       "printf 'eyJ'; head -c 524288 /dev/zero | tr '\\000' a; printf .; "
       "head -c 524288 /dev/zero | tr '\\000' b"},
      {"a code#state pair a MiB long",
       "head -c 524288 /dev/zero | tr '\\000' a; printf '#'; head -c 524288 /dev/zero | tr "
       "'\\000' b"},
  };
  for (size_t i = 0; i < probes.size(); ++i) {
    const Probe& probe = probes[i];
    const std::string step = "exec-" + std::to_string(i);
    INFO("probe: " << probe.name);
    const auto started = std::chrono::steady_clock::now();
    const CallResult call =
        McpCall(hub.url, "", "exec_llmbox",
                {{"box_id", box_id}, {"command", {"sh", "-c", probe.script}}, {"timeout_s", 60}},
                dir.path / (step + ".log"));
    const json result = ResultOf(call);
    const auto took = std::chrono::steady_clock::now() - started;
    INFO("took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(result["exit_code"] == 0);
    CHECK(result["timed_out"] == false);
    const std::string out = result["stdout"];
    const std::string err = result["stderr"];
    CHECK(out.size() <= kBound);
    CHECK(err.size() <= kBound);
    CHECK(result["truncated"] == (probe.name != "bytes that are not UTF-8"));
    CheckHubServes(hub, dir.path, step);
  }

  // The box's console, as root through the engine: bytes that are not UTF-8, NUL, escapes
  // (an OSC-8 link among them) and 256 KiB of random bytes. (Without ESC: an escape sequence
  // left open hides the rest of the logs, which is the console reader's to fix.)
  auto engine = spoke::docker::CurlDockerEngine::Create({.unix_socket = rig.docker_sock});
  REQUIRE(engine.ok());
  auto containers = (*engine)->ListContainers({{"io.llmbox.box-id", box_id}});
  REQUIRE(containers.ok());
  REQUIRE(!containers->empty());
  std::string box_container;
  for (const auto& c : *containers) {
    if (c.labels.count("io.llmbox.managed") != 0 && c.name.find("pending-") != std::string::npos) {
      box_container = c.id;
    }
  }
  REQUIRE(!box_container.empty());
  // Writes to the box's console as root (the box's own identity), through the engine.
  auto write_console = [&](const std::string& script) {
    auto wrote = (*engine)->Exec(box_container,
                                 {.argv = {"sh", "-c", script}, .user = "0:0", .timeout = 30s});
    INFO(wrote.status().ToString());
    REQUIRE(wrote.ok());
    CHECK(wrote->exit_code == 0);
  };
  write_console(R"(printf 'console \377\376 \300\257 \355\240\200 nul:\000: \033[31mred\033[0m )"
                R"(\033]0;title\007 \033]8;;https://evil.example/\033\\link\033]8;;\033\\\n' )"
                R"(> /proc/1/fd/1; head -c 262144 /dev/urandom | tr -d '\033' > /proc/1/fd/1; )"
                R"(printf '\nafter the noise\n' > /proc/1/fd/1)");
  for (int tail : {200, 5000}) {
    const std::string step = "logs-" + std::to_string(tail);
    const json logs =
        ResultOf(McpCall(hub.url, "", "get_llmbox_logs", {{"box_id", box_id}, {"tail", tail}},
                         dir.path / (step + ".log")));
    const std::string text = logs["logs"];
    CHECK(text.size() <= kBound);
    CHECK(text.find("after the noise") != std::string::npos);
    CHECK(text.find('\x1b') == std::string::npos);
    CheckHubServes(hub, dir.path, step);
  }

  // Logs are cut to their newest 64 KiB by bytes. Six lines of 5,000 box-drawing characters
  // (three bytes each) are newer than anything else, so the cut falls inside a character in
  // two of these three runs, each one byte longer than the one before.
  for (const std::string suffix : {"", "x", "xx"}) {
    const std::string step = "logs-cut-" + std::to_string(suffix.size());
    write_console(R"sh(line=$(yes "$(printf '\342\224\200')" | head -n 5000 | tr -d '\n'); )sh"
                  R"sh(for i in 1 2 3 4 5; do printf '%s\n' "$line"; done > /proc/1/fd/1; )sh"
                  R"sh(printf '%s)sh" +
                  suffix + R"sh(\n' "$line" > /proc/1/fd/1)sh");
    const json logs =
        ResultOf(McpCall(hub.url, "", "get_llmbox_logs", {{"box_id", box_id}, {"tail", 5000}},
                         dir.path / (step + ".log")));
    CHECK(logs["truncated"] == true);
    CHECK(logs["logs"].get<std::string>().size() <= kBound);
    CheckHubServes(hub, dir.path, step);
  }

  CHECK(ResultOf(McpCall(hub.url, "", "destroy_llmbox", {{"box_id", box_id}},
                         dir.path / "destroy.log"))["destroyed"] == box_id);
  guard.hub = nullptr;
  // Alive to the end: a clean exit on SIGTERM, not the status of a crash.
  CHECK(hub.process.Stop() == 0);
}

}  // namespace
}  // namespace llmbox::testing
