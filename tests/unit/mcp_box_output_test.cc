// The hub survives a spoke that sends anything: exec output and logs with bytes that are not
// UTF-8, NUL, terminal escapes and a MiB without a newline go from a fake spoke service (a
// real in-process gRPC server, so the hub's real client parses them) through the registry,
// the box tools and the MCP endpoint, and the answer is JSON a strict parser takes.
#include <memory>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/utf8.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/mcp/endpoint.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/tools_call.h"

namespace llmbox::hub {
namespace {

using nlohmann::json;
using namespace std::string_literals;

const std::string kFffd = "\xef\xbf\xbd";
const std::string kBroken = "\xff\xfe|\x80|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x94"s;

struct Hub {
  Hub() : dir("mcp-box-output") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", cluster::MakeGrpcSpokeClient(spoke.Channel()), true);
    registry = std::make_unique<boxes::BoxRegistry>(
        *db, spokes, clock, boxes::RegistryOptions{.public_url = "https://hub.example.com"});
    REQUIRE(registry->Create({.box_id = "b1"}, nullptr).ok());
    tools = std::make_unique<boxes::BoxTools>(*registry);
    endpoint = std::make_unique<mcp::McpEndpoint>(
        mcp::EndpointOptions{.session_key = std::string(32, 'k'),
                             .allowed_hosts = {"127.0.0.1:8080"}},
        *tools, clock);
  }

  // One tools/call as a JSON-only client sends it; the body parsed strictly (nlohmann throws
  // on bytes that are not UTF-8), and the size of the raw body.
  json Call(const std::string& tool, const json& arguments, size_t* body_bytes = nullptr) {
    http::Request request = testing::ToolsCallRequest(tool, arguments);
    auto responder = std::make_shared<testing::RecordingResponder>();
    endpoint->Handle(std::move(request), responder);
    REQUIRE(responder->status == 200);
    if (body_bytes != nullptr) *body_bytes = responder->body.size();
    REQUIRE(common::IsValidUtf8(responder->body));
    json reply;
    REQUIRE_NOTHROW(reply = json::parse(responder->body));
    // The text block of a result is the structured result, serialized: it must parse too.
    json result = reply["result"];
    if (result["isError"] == false) {
      REQUIRE_NOTHROW(json::parse(result["content"][0]["text"].get<std::string>()));
    }
    return result;
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeBoxService spoke;
  testing::FakeClock clock;
  boxes::SpokeDirectory spokes;
  std::unique_ptr<boxes::BoxRegistry> registry;
  std::unique_ptr<boxes::BoxTools> tools;
  std::unique_ptr<mcp::McpEndpoint> endpoint;
};

TEST_CASE(
    "exec output that is not UTF-8 becomes U+FFFD in the tool's JSON while NUL and escapes stay",
    "[box_output]") {
  Hub hub;
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.exec_response.set_exit_code(0);
    hub.spoke.exec_response.set_stdout("a" + kBroken + " nul \0 esc \x1b[31m\x1b]0;t\x07 z"s);
    hub.spoke.exec_response.set_stderr("\x80\0"s);
  }
  json result = hub.Call("exec_llmbox", {{"box_id", "b1"}, {"command", {"cat", "x"}}});
  CHECK(result["isError"] == false);
  const json& out = result["structuredContent"];
  CHECK(out["stdout"] ==
        common::ToValidUtf8("a" + kBroken + " nul \0 esc \x1b[31m\x1b]0;t\x07 z"s));
  CHECK(out["stdout"].get<std::string>().find("\0 esc \x1b[31m\x1b]0;t\x07 z"s) !=
        std::string::npos);
  CHECK(out["stderr"] == kFffd + "\0"s);
}

TEST_CASE("a MiB of exec output without a newline, all bytes that are not UTF-8, stays bounded",
          "[box_output]") {
  Hub hub;
  std::string noise;
  for (size_t i = 0; i < (1u << 20); ++i) noise.push_back(static_cast<char>(0x80 + i % 128));
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.exec_response.set_stdout(noise);
    hub.spoke.exec_response.set_stdout_truncated(true);
  }
  size_t body_bytes = 0;
  json result = hub.Call("exec_llmbox", {{"box_id", "b1"}, {"command", {"cat", "x"}}}, &body_bytes);
  CHECK(result["isError"] == false);
  CHECK(result["structuredContent"]["truncated"] == true);
  CHECK(result["structuredContent"]["stdout"].get<std::string>().size() == 3u << 20);
  // Twice (structured and as text), each byte at most three: a bound, not a copy per byte.
  CHECK(body_bytes < 7u << 20);
}

TEST_CASE("logs a spoke sends that are not UTF-8 reach the chatbot as U+FFFD, not as an error",
          "[box_output]") {
  Hub hub;
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.logs_response.set_logs("line " + kBroken + " \0 \x1b[0m\n"s);
  }
  json result = hub.Call("get_llmbox_logs", {{"box_id", "b1"}});
  CHECK(result["isError"] == false);
  CHECK(result["structuredContent"]["logs"] ==
        common::ToValidUtf8("line " + kBroken + " \0 \x1b[0m\n"s));
}

TEST_CASE("a spoke's error that quotes broken box output is a tool error the chatbot can read",
          "[box_output]") {
  Hub hub;
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.exec_status = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                         "box b1: the box said: " + kBroken + "\0 \x1b[1m"s);
  }
  json result = hub.Call("exec_llmbox", {{"box_id", "b1"}, {"command", {"true"}}});
  CHECK(result["isError"] == true);
  const std::string text = result["content"][0]["text"];
  CHECK(text.find("the box said: " + kFffd) != std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub
