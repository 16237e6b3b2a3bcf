// A box's network through the whole system: a real llmbox-hub with its local spoke on the rig's
// engine 1 (the real proxy and nftables rules), the official MCP SDK client as the chatbot.
// The chatbot creates a box with an allowlist, the box is refused a name, get_llmbox shows the
// refusal, set_llmbox_network allows it and the box's next connection goes through; an entry
// outside the spoke's policy is refused saying what the policy allows; another key cannot
// touch the box's network; the spoke's log has the refusal. "The internet" is a namespace with
// 198.18/15 addresses (TestInternet), named for the proxy in egress.hosts.

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/test_internet.h"

namespace llmbox::testing {
namespace {

using nlohmann::json;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE(
    "a chatbot sees a refused connection in get_llmbox, allows it with set_llmbox_network and "
    "the box's next connection goes through",
    "[e2e][hub]") {
  const auto& rig = Rig();
  auto internet = TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  TestServer& web = (*internet)->Serve(80);
  HubDir dir("llmbox-hub-egress");
  const std::string inside = (*internet)->inside_address();
  WriteConfig(dir.path, rig, rig.standin_claude, "required",
              "  egress:\n"
              "    modes: [none, allowlist]\n"
              "    box_may_allow: [allowed.test:80, other.test:80]\n"
              "    hosts: [allowed.test=" +
                  inside + ", other.test=" + inside + "]\n");
  const std::string alice = CreateKey(dir, "alice", false);
  const std::string bob = CreateKey(dir, "bob", false);
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  int calls = 0;
  auto call = [&](const std::string& key, const std::string& tool, const json& args) {
    return McpCall(hub.url, key, tool, args,
                   dir.path / ("call-" + std::to_string(++calls) + ".log"));
  };
  const std::string id = UniqueId("egress");
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] { (void)call(alice, "destroy_llmbox", {{"box_id", id}}); }};

  // A mode the spoke does not allow is refused, saying which it does.
  const std::string open =
      ErrorOf(call(alice, "create_llmbox", {{"box_id", UniqueId("egress")}, {"network", "open"}}));
  CHECK_THAT(open, Catch::Matchers::Contains("open"));
  CHECK_THAT(open, Catch::Matchers::Contains("allowlist"));

  const json created = ResultOf(
      call(alice, "create_llmbox",
           {{"box_id", id}, {"network", {{"mode", "allowlist"}, {"allow", {"allowed.test:80"}}}}}));
  CHECK(created["box_id"] == id);
  auto exec = [&](const std::string& script) {
    const json ran =
        ResultOf(call(alice, "exec_llmbox", {{"box_id", id}, {"command", {"bash", "-c", script}}}));
    return ran["stdout"].get<std::string>();
  };
  CHECK_THAT(exec(ConnectThroughProxyScript("allowed.test:80")),
             Catch::Matchers::Contains("server: hello"));
  CHECK_THAT(exec(ConnectThroughProxyScript("other.test:80")),
             Catch::Matchers::Contains("proxy: HTTP/1.1 403"));
  CHECK(web.Connections() == 1);

  // What the chatbot sees: the refusal, with what was asked for and why.
  const json got = ResultOf(call(alice, "get_llmbox", {{"box_id", id}}));
  INFO(got.dump(2));
  REQUIRE(got.contains("network"));
  CHECK(got["network"]["mode"] == "allowlist");
  CHECK(got["network"]["allow"] == json::array({"allowed.test:80"}));
  bool seen = false;
  for (const json& refusal : got["network"]["refusals"]) {
    if (refusal["destination"] == "other.test" && refusal["port"] == 80) seen = true;
  }
  CHECK(seen);

  // Another key cannot see or change the box's network.
  CHECK_THAT(ErrorOf(call(bob, "set_llmbox_network", {{"box_id", id}, {"add", {"other.test"}}})),
             Catch::Matchers::Contains("no box"));

  // Outside the spoke's policy: refused, saying what it allows.
  const std::string outside =
      ErrorOf(call(alice, "set_llmbox_network", {{"box_id", id}, {"add", {"pypi.org:443"}}}));
  CHECK_THAT(outside, Catch::Matchers::Contains("pypi.org:443"));
  CHECK_THAT(outside, Catch::Matchers::Contains("other.test:80"));

  const json allowed =
      ResultOf(call(alice, "set_llmbox_network", {{"box_id", id}, {"add", {"other.test:80"}}}));
  INFO(allowed.dump(2));
  CHECK(allowed.dump().find("other.test:80") != std::string::npos);
  CHECK_THAT(exec(ConnectThroughProxyScript("other.test:80")),
             Catch::Matchers::Contains("server: hello"));
  CHECK(web.Connections() == 2);

  // The spoke's log has the refusal (the hub's process hosts the local spoke).
  CHECK_THAT(ReadAll(dir.path / "hub.log"), Catch::Matchers::Contains("other.test"));
}

TEST_CASE(
    "a connection a box is refused on its own shows in get_llmbox within a health round though "
    "its last answer was kept",
    "[e2e][hub]") {
  // The hub keeps what the spoke said of a box until the spoke's change feed says the box
  // changed (live_views.h): without the feed this refusal would show only after 60 s.
  const auto& rig = Rig();
  auto internet = TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  (*internet)->Serve(80);
  // The box's signal to go: a connection the test holds until it writes.
  const int signal_listener = (*internet)->ListenInside(81);
  REQUIRE(signal_listener >= 0);
  HubDir dir("llmbox-hub-egress-feed");
  const std::string inside = (*internet)->inside_address();
  WriteConfig(dir.path, rig, rig.standin_claude, "required",
              "  egress:\n"
              "    box_may_allow: [allowed.test:81]\n"
              "    hosts: [allowed.test=" +
                  inside + ", other.test=" + inside + "]\n");
  AddToHubSection(dir.path / "hub.yaml", "  spoke_health_interval: 1s\n");
  const std::string alice = CreateKey(dir, "alice", false);
  HubProcess hub((dir.path / "hub.yaml").string(), dir.path / "hub.log");
  int calls = 0;
  auto call = [&](const std::string& tool, const json& args) {
    return McpCall(hub.url, alice, tool, args,
                   dir.path / ("call-" + std::to_string(++calls) + ".log"));
  };
  const std::string id = UniqueId("egress-feed");
  struct Cleanup {
    std::function<void()> run;
    ~Cleanup() { run(); }
  } cleanup{[&] {
    (void)call("destroy_llmbox", {{"box_id", id}});
    ::close(signal_listener);
  }};
  ResultOf(
      call("create_llmbox",
           {{"box_id", id}, {"network", {{"mode", "allowlist"}, {"allow", {"allowed.test:81"}}}}}));
  // In the background: wait for the test's signal through the proxy, then try other.test.
  const std::string waiter =
      "p=${HTTPS_PROXY#http://}; h=${p%:*}; port=${p##*:}; exec 4<>/dev/tcp/$h/$port || exit 9; "
      "printf 'CONNECT allowed.test:81 HTTP/1.1\\r\\nHost: allowed.test:81\\r\\n\\r\\n' >&4; "
      "while IFS= read -r l <&4 && [ \"${l%$'\\r'}\" != '' ]; do :; done; read -r go <&4; ";
  ResultOf(call("exec_llmbox", {{"box_id", id},
                                {"command",
                                 {"bash", "-c",
                                  "(" + waiter + ConnectThroughProxyScript("other.test:80") +
                                      ") </dev/null >/dev/null 2>&1 &"}}}));
  pollfd waiting{.fd = signal_listener, .events = POLLIN};
  REQUIRE(::poll(&waiting, 1, 60'000) == 1);  // the box waits on this connection now
  const int signal = ::accept(signal_listener, nullptr, nullptr);
  REQUIRE(signal >= 0);

  auto refused = [&](const json& got) {
    for (const json& refusal : got["network"]["refusals"]) {
      if (refusal["destination"] == "other.test") return true;
    }
    return false;
  };
  // Asked of the spoke (the exec made the hub forget its view), then kept: nothing refused yet.
  CHECK_FALSE(refused(ResultOf(call("get_llmbox", {{"box_id", id}}))));
  CHECK_FALSE(refused(ResultOf(call("get_llmbox", {{"box_id", id}}))));

  const std::string go = "HTTP/1.1 200 OK\r\n\r\ngo\n";
  REQUIRE(::send(signal, go.data(), go.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(go.size()));
  ::close(signal);
  // No call of the hub's touches the box now: only the spoke's feed can tell the hub.
  bool seen = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  json got;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    got = ResultOf(call("get_llmbox", {{"box_id", id}}));
    seen = refused(got);
  }
  INFO(got.dump(2));
  CHECK(seen);
  CHECK_THAT(ReadAll(dir.path / "hub.log"), Catch::Matchers::Contains("other.test"));
}

}  // namespace
}  // namespace llmbox::testing
