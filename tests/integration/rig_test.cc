// Proves the test rig: its engines answer the Engine API over their unix sockets, run
// containers from the locally built images, and the real Claude binary runs in the real box
// image. Also holds the stand-in claude to the recorded prompts of the real one.

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"

namespace llmbox::testing {
namespace {

using nlohmann::json;

// A container body for the rig's images, labelled so a leak is easy to find.
json Container(const std::string& image, const json& cmd) {
  return {{"Image", image},
          {"Cmd", cmd},
          {"Labels", {{"llmbox.test", "rig"}}},
          {"HostConfig", {{"SecurityOpt", {"no-new-privileges"}}, {"CapDrop", {"ALL"}}}}};
}

json WithBind(json body, const std::string& host_path, const std::string& box_path) {
  body["HostConfig"]["Binds"] = {host_path + ":" + box_path + ":ro"};
  return body;
}

int ApiMinor(const std::string& version) {
  // "1.41" -> 41
  return std::stoi(version.substr(version.find('.') + 1));
}

TEST_CASE("the rig's engine answers the Engine API over its unix socket", "[rig]") {
  const auto& rig = Rig();
  EngineHttp engine(rig.docker_sock);
  HttpReply ping = engine.Call("GET", "/_ping");
  INFO(ping.error);
  REQUIRE(ping.status == 200);
  CHECK(ping.body == "OK");
  HttpReply version = engine.Call("GET", "/version");
  REQUIRE(version.status == 200);
  CHECK(ApiMinor(json::parse(version.body).at("ApiVersion").get<std::string>()) >= 41);
  // The engine is isolated: its own bridge, not docker0.
  HttpReply bridge = engine.Call("GET", "/v1.41/networks/bridge");
  REQUIRE(bridge.status == 200);
  CHECK(json::parse(bridge.body)["Options"]["com.docker.network.bridge.name"] == "llmbr1");
}

TEST_CASE("a busybox container runs to completion on the rig's engine", "[rig]") {
  const auto& rig = Rig();
  EngineHttp engine(rig.docker_sock);
  auto run = engine.RunToCompletion(
      Container(rig.tiny_image, {"sh", "-c", "echo hello-from-the-rig; echo to-stderr >&2; exit 3"})
          .dump());
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("hello-from-the-rig\n") != std::string::npos);
  CHECK(run.output.find("to-stderr\n") != std::string::npos);
}

TEST_CASE("the real Claude binary in the real box image prints its version", "[rig]") {
  const auto& rig = Rig();
  EngineHttp engine(rig.docker_sock);
  auto run = engine.RunToCompletion(WithBind(Container(rig.box_image, {"claude", "--version"}),
                                             rig.claude_bin, "/usr/local/bin/claude")
                                        .dump());
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output == rig.claude_version + " (Claude Code)\n");
}

TEST_CASE("the box image has what the in-box wrapper needs: bash, script, a CA bundle", "[rig]") {
  const auto& rig = Rig();
  EngineHttp engine(rig.docker_sock);
  auto run = engine.RunToCompletion(
      Container(rig.box_image, {"sh", "-c",
                                "command -v bash && command -v script && test -s "
                                "/etc/ssl/certs/ca-certificates.crt && pwd"})
          .dump());
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("/bin/script") != std::string::npos);
  CHECK(run.output.find("/workspace\n") != std::string::npos);
}

// The lines the real binary prints around the authorize URL, from the recordings.
const char* const kRecordedLines[] = {
    "Opening browser to sign in\xE2\x80\xA6",
    "If the browser didn't open, visit:",
    "Paste code here if prompted > ",
    "Signing in\xE2\x80\xA6",
    "Couldn't log in: getaddrinfo ENOTFOUND platform.claude.com",
};

TEST_CASE("the stand-in claude speaks the recorded prompts and the real bad-code error", "[rig]") {
  const auto& rig = Rig();
  for (const char* recording :
       {"claude-2.1.330-auth-login-bad-code.tty", "claude-2.1.328-auth-login-bad-code.tty"}) {
    const std::string recorded = ReadTestFile(rig.recordings_dir + "/" + recording);
    for (const char* line : kRecordedLines) {
      INFO(recording << " lacks: " << line);
      CHECK(recorded.find(line) != std::string::npos);
    }
  }
  EngineHttp engine(rig.docker_sock);
  for (const char* form : {"short", "long"}) {
    json body = WithBind(Container(rig.box_image, {"sh", "-c",
                                                   "printf 'not-a-real-code#state\\r\\n' | "
                                                   "claude auth login; echo exit=$?"}),
                         rig.standin_claude, "/usr/local/bin/claude");
    body["Env"] = {std::string("STANDIN_URL_FORM=") + form};
    auto run = engine.RunToCompletion(body.dump());
    INFO(form << " form printed: " << run.output);
    for (const char* line : kRecordedLines) CHECK(run.output.find(line) != std::string::npos);
    CHECK(run.output.find(std::string(form) == "short"
                              ? "https://claude.ai/oauth/authorize?z-"
                              : "https://claude.com/cai/oauth/authorize?") != std::string::npos);
    CHECK(run.output.find("exit=1\n") != std::string::npos);
  }
}

TEST_CASE("the stand-in claude signs in with a good code and prints a session URL", "[rig]") {
  const auto& rig = Rig();
  EngineHttp engine(rig.docker_sock);
  auto run = engine.RunToCompletion(
      WithBind(
          Container(rig.box_image, {"sh", "-c",
                                    "claude remote-control --name early; echo before=$?; "
                                    "printf 'standin-ok-123#state\\r\\n' | claude auth login; "
                                    "echo login=$?; timeout 2 claude remote-control --name box-1; "
                                    "echo rc=$?"}),
          rig.standin_claude, "/usr/local/bin/claude")
          .dump());
  INFO(run.output);
  // Without credentials remote-control refuses, in the recorded words of the real binary.
  CHECK(run.output.find("Error: You must be logged in to use Remote Control.") !=
        std::string::npos);
  CHECK(run.output.find("before=1\n") != std::string::npos);
  CHECK(run.output.find("Login successful.") != std::string::npos);
  CHECK(run.output.find("login=0\n") != std::string::npos);
  CHECK(run.output.find("https://claude.ai/code/session_01") != std::string::npos);
  CHECK(run.output.find("rc=124\n") != std::string::npos);  // still serving when stopped
}

TEST_CASE("a second engine runs containers on its own bridge, apart from the first", "[rig2]") {
  const auto& rig = RigWithSecondEngine();
  EngineHttp first(rig.docker_sock);
  EngineHttp second(rig.docker_sock2);
  REQUIRE(second.Call("GET", "/_ping").body == "OK");
  HttpReply info1 = first.Call("GET", "/v1.41/info");
  HttpReply info2 = second.Call("GET", "/v1.41/info");
  REQUIRE(info1.status == 200);
  REQUIRE(info2.status == 200);
  CHECK(json::parse(info1.body)["DockerRootDir"] != json::parse(info2.body)["DockerRootDir"]);
  // A container on engine 2 does not exist for engine 1.
  HttpReply created =
      second.Call("POST", "/v1.41/containers/create", Container(rig.tiny_image, {"true"}).dump());
  REQUIRE(created.status == 201);
  const std::string id = json::parse(created.body)["Id"];
  CHECK(second.Call("GET", "/v1.41/containers/" + id + "/json").status == 200);
  CHECK(first.Call("GET", "/v1.41/containers/" + id + "/json").status == 404);
  CHECK(second.Call("DELETE", "/v1.41/containers/" + id).status == 204);
  auto run = second.RunToCompletion(
      Container(rig.tiny_image, {"sh", "-c", "ip -4 addr show eth0"}).dump());
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(run.output.find("inet 10.212.0.") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
