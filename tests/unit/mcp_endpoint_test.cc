// The MCP endpoint's transport and JSON-RPC rules, driven through its Handle() with a
// recording Responder (the HTTP server itself is tested in http_server_test.cc, and the whole
// hub with real MCP clients in tests/e2e).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "hub/mcp/endpoint.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_responder.h"

namespace llmbox::hub::mcp {
namespace {

using nlohmann::json;

using testing::RecordingResponder;

json Json(const RecordingResponder& r) { return json::parse(r.body); }

// Tools for the tests: echo returns its argument; wait blocks until released or cancelled.
class TestTools final : public ToolSet {
 public:
  std::vector<Tool> Tools() const override {
    return {{.name = "echo",
             .title = "Echo",
             .description = "Returns its text.",
             .input_schema = {{"type", "object"},
                              {"properties", {{"text", {{"type", "string"}, {"maxLength", 10}}}}},
                              {"required", {"text"}},
                              {"additionalProperties", false}},
             .output_schema = {{"type", "object"},
                               {"properties", {{"text", {{"type", "string"}}}}},
                               {"required", {"text"}}},
             .read_only = true},
            {.name = "wait",
             .title = "Wait",
             .description = "Waits until released or cancelled.",
             .input_schema = {{"type", "object"}, {"additionalProperties", false}},
             .destructive = true}};
  }
  ToolResult Call(std::string_view name, const json& arguments, CallContext& context) override {
    last_principal = context.principal().id();
    if (name == "echo") {
      context.Progress(1, 2, "half");
      context.Progress(1, 2, "not increasing: dropped");
      context.Progress(2, 2, "done");
      return ToolResult::Ok({{"text", arguments["text"]}});
    }
    std::unique_lock lock(mu);
    context.OnCancel([this] {
      std::lock_guard inner(mu);
      cancelled = true;
      cv.notify_all();
    });
    started = true;
    ++waiting;
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return released || cancelled; });
    return ToolResult::Error("waited");
  }

  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  int waiting = 0;  // wait calls that started
  bool released = false;
  bool cancelled = false;
  std::string last_principal;
};

struct Fixture {
  explicit Fixture(EndpointOptions options = {}) {
    if (options.session_key.empty()) options.session_key = std::string(32, 'k');
    if (options.allowed_hosts.empty()) options.allowed_hosts = {"127.0.0.1:8080"};
    endpoint = std::make_unique<McpEndpoint>(std::move(options), tools, clock);
  }

  std::shared_ptr<RecordingResponder> Send(std::string method, std::string body,
                                           http::Headers headers = {}) {
    http::Request request{.method = std::move(method), .target = "/", .path = "/"};
    request.headers = {{"host", "127.0.0.1:8080"}};
    bool has_type = false;
    for (auto& [key, value] : headers) has_type = has_type || key == "content-type";
    if (!has_type) request.headers.emplace_back("content-type", "application/json");
    for (auto& header : headers) request.headers.push_back(header);
    request.body = std::move(body);
    auto responder = std::make_shared<RecordingResponder>();
    endpoint->Handle(std::move(request), responder);
    return responder;
  }
  std::shared_ptr<RecordingResponder> Post(const json& message, http::Headers headers = {}) {
    return Send("POST", message.dump(), std::move(headers));
  }
  std::string Initialize() {
    auto r = Post({{"jsonrpc", "2.0"},
                   {"id", 1},
                   {"method", "initialize"},
                   {"params",
                    {{"protocolVersion", "2025-11-25"},
                     {"capabilities", json::object()},
                     {"clientInfo", {{"name", "test"}, {"version", "1"}}}}}});
    REQUIRE(r->status == 200);
    return r->Header("Mcp-Session-Id");
  }

  testing::FakeClock clock;
  TestTools tools;
  std::unique_ptr<McpEndpoint> endpoint;
};

json Request(int id, std::string method, json params = json::object()) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"method", std::move(method)}, {"params", params}};
}

TEST_CASE("initialize echoes a supported version and issues a visible-ASCII session id", "[mcp]") {
  Fixture f;
  auto r = f.Post(Request(1, "initialize",
                          {{"protocolVersion", "2025-06-18"},
                           {"capabilities", json::object()},
                           {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  REQUIRE(r->status == 200);
  CHECK(r->Header("Content-Type") == "application/json");
  json reply = Json(*r);
  CHECK(reply["id"] == 1);
  CHECK(reply["result"]["protocolVersion"] == "2025-06-18");
  CHECK(reply["result"]["capabilities"].contains("tools"));
  CHECK(reply["result"]["serverInfo"]["name"] == "llmbox");
  const std::string session = r->Header("Mcp-Session-Id");
  REQUIRE(session.size() > 20);
  for (char c : session) CHECK((c >= 0x21 && c <= 0x7e));
}

TEST_CASE("initialize with an unknown version is answered with the newest one", "[mcp]") {
  Fixture f;
  auto r = f.Post(Request(7, "initialize", {{"protocolVersion", "1999-01-01"}}));
  REQUIRE(r->status == 200);
  CHECK(Json(*r)["result"]["protocolVersion"] == "2025-11-25");
}

TEST_CASE("the server/discover probe of a 2026 client gets 400 with -32000 so it falls back",
          "[mcp]") {
  Fixture f;
  auto r = f.Post(Request(1, "server/discover"),
                  {{"mcp-protocol-version", "2026-07-28"}, {"mcp-method", "server/discover"}});
  CHECK(r->status == 400);
  CHECK(Json(*r)["error"]["code"] == -32000);
  // Without the version header it is simply an unknown method.
  auto plain = f.Post(Request(2, "server/discover"));
  CHECK(plain->status == 200);
  CHECK(Json(*plain)["error"]["code"] == -32601);
}

TEST_CASE("notifications get 202 with an empty body, with or without a session", "[mcp]") {
  Fixture f;
  const std::string session = f.Initialize();
  json note = {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}};
  auto with = f.Post(note, {{"mcp-session-id", session}});
  CHECK(with->status == 202);
  CHECK(with->body.empty());
  auto without = f.Post(note);
  CHECK(without->status == 202);
}

TEST_CASE("ping, logging/setLevel and unknown methods answer as the spec says", "[mcp]") {
  Fixture f;
  CHECK(f.Post(Request(1, "ping"))->As<json>()["result"] == json::object());
  CHECK(f.Post(Request(2, "logging/setLevel", {{"level", "debug"}}))->As<json>()["result"] ==
        json::object());
  CHECK(f.Post(Request(3, "logging/setLevel", {{"level", "loud"}}))->As<json>()["error"]["code"] ==
        -32602);
  CHECK(f.Post(Request(4, "resources/list"))->As<json>()["error"]["code"] == -32601);
}

TEST_CASE("DELETE ends a session and its id then gets 404, a forged id gets 404", "[mcp]") {
  Fixture f;
  const std::string session = f.Initialize();
  CHECK(f.Post(Request(2, "tools/list"), {{"mcp-session-id", session}})->status == 200);
  CHECK(f.Send("DELETE", "", {{"mcp-session-id", session}})->status == 200);
  auto after = f.Post(Request(3, "tools/list"), {{"mcp-session-id", session}});
  CHECK(after->status == 404);
  CHECK(Json(*after)["error"]["code"] == -32001);
  std::string forged = session;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  Fixture other;
  CHECK(other.Post(Request(4, "ping"), {{"mcp-session-id", forged}})->status == 404);
  CHECK(f.Send("DELETE", "")->status == 400);
}

TEST_CASE("a session id stays valid across a restart with the same key", "[mcp]") {
  std::string session;
  {
    Fixture before;
    session = before.Initialize();
  }
  Fixture after;
  CHECK(after.Post(Request(1, "tools/list"), {{"mcp-session-id", session}})->status == 200);
  Fixture other_key({.session_key = std::string(32, 'z')});
  CHECK(other_key.Post(Request(1, "tools/list"), {{"mcp-session-id", session}})->status == 404);
}

TEST_CASE("an ended session stays ended across a restart, a session expires after its ttl",
          "[mcp]") {
  std::vector<std::pair<std::string, std::int64_t>> recorded;
  std::string session;
  std::int64_t started_ms = 0;
  {
    Fixture before({.on_session_ended = [&](const std::string& hash, std::int64_t expires) {
      recorded.emplace_back(hash, expires);
    }});
    session = before.Initialize();
    started_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(before.clock.Now().time_since_epoch())
            .count();
    CHECK(before.Send("DELETE", "", {{"mcp-session-id", session}})->status == 200);
    CHECK(before.Send("DELETE", "", {{"mcp-session-id", session}})->status == 404);
  }
  // Recorded once, by hash (never the id itself), with when it would expire anyway.
  REQUIRE(recorded.size() == 1);
  CHECK(recorded[0].first == common::Sha256Hex(session));
  CHECK(recorded[0].second - started_ms ==
        std::chrono::milliseconds(std::chrono::hours(720)).count());
  // A restart that is given the recorded hashes keeps it ended; one without them would not.
  Fixture restarted({.ended_sessions = {recorded[0].first}});
  CHECK(restarted.Post(Request(1, "tools/list"), {{"mcp-session-id", session}})->status == 404);
  Fixture forgetful;
  CHECK(forgetful.Post(Request(1, "tools/list"), {{"mcp-session-id", session}})->status == 200);

  Fixture short_lived({.session_ttl = std::chrono::hours(1)});
  const std::string brief = short_lived.Initialize();
  short_lived.clock.Advance(std::chrono::minutes(59));
  CHECK(short_lived.Post(Request(2, "ping"), {{"mcp-session-id", brief}})->status == 200);
  short_lived.clock.Advance(std::chrono::minutes(2));
  CHECK(short_lived.Post(Request(3, "ping"), {{"mcp-session-id", brief}})->status == 404);
}

TEST_CASE("bad requests get the right status and a JSON-RPC error", "[mcp]") {
  Fixture f;
  SECTION("malformed JSON") {
    auto r = f.Send("POST", "{\"jsonrpc\": ");
    CHECK(r->status == 400);
    CHECK(Json(*r)["error"]["code"] == -32700);
  }
  SECTION("nesting 100,000 deep") {
    auto r = f.Send("POST", std::string(100000, '[') + std::string(100000, ']'));
    CHECK(r->status == 400);
    CHECK(Json(*r)["error"]["message"].get<std::string>().find("nested deeper") !=
          std::string::npos);
  }
  SECTION("wrong content type") {
    auto r = f.Send("POST", Request(1, "ping").dump(), {{"content-type", "text/plain"}});
    CHECK(r->status == 415);
  }
  SECTION("content type with a charset is fine") {
    auto r = f.Send("POST", Request(1, "ping").dump(),
                    {{"content-type", "application/json; charset=utf-8"}});
    CHECK(r->status == 200);
  }
  SECTION("not JSON-RPC 2.0") {
    auto r = f.Post({{"id", 1}, {"method", "ping"}});
    CHECK(r->status == 400);
    CHECK(Json(*r)["error"]["code"] == -32600);
  }
  SECTION("unsupported protocol version") {
    auto r = f.Post(Request(1, "ping"), {{"mcp-protocol-version", "2023-01-01"}});
    CHECK(r->status == 400);
    CHECK(Json(*r)["error"]["message"].get<std::string>().find("2023-01-01") != std::string::npos);
  }
  SECTION("any supported version is accepted, not only the negotiated one") {
    auto r = f.Post(Request(1, "ping"), {{"mcp-protocol-version", "2025-03-26"}});
    CHECK(r->status == 200);
  }
  SECTION("GET has no stream to offer") {
    auto r = f.Send("GET", "", {{"accept", "text/event-stream"}});
    CHECK(r->status == 405);
    CHECK(r->Header("Allow").find("POST") != std::string::npos);
  }
  SECTION("an empty batch and a batch with initialize") {
    CHECK(f.Send("POST", "[]")->status == 400);
    CHECK(f.Post(json::array({Request(1, "initialize")}))->status == 400);
  }
}

TEST_CASE("a batch gets one response per request, and only-notifications gets 202", "[mcp]") {
  Fixture f;
  auto r = f.Post(json::array({Request(1, "ping"),
                               {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}},
                               Request(2, "tools/list")}));
  REQUIRE(r->status == 200);
  json replies = Json(*r);
  REQUIRE(replies.size() == 2);
  CHECK(replies[0]["id"] == 1);
  CHECK(replies[1]["id"] == 2);
  auto notes = f.Post(json::array({{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}}));
  CHECK(notes->status == 202);
}

TEST_CASE("Host and Origin are checked against the configured lists", "[mcp]") {
  Fixture f({.allowed_hosts = {"127.0.0.1:8080", "hub.example.com"},
             .allowed_origins = {"https://hub.example.com"}});
  // Built by hand: the fixture always sends a good Host first.
  http::Request request{.method = "POST", .target = "/", .path = "/"};
  request.headers = {{"host", "evil.example.com"}, {"content-type", "application/json"}};
  request.body = Request(1, "ping").dump();
  auto responder = std::make_shared<RecordingResponder>();
  f.endpoint->Handle(request, responder);
  CHECK(responder->status == 403);

  auto bad_origin = f.Post(Request(1, "ping"), {{"origin", "http://evil.example.com"}});
  CHECK(bad_origin->status == 403);
  auto good_origin = f.Post(Request(1, "ping"), {{"origin", "https://hub.example.com"}});
  CHECK(good_origin->status == 200);
  CHECK(good_origin->Header("Access-Control-Allow-Origin") == "https://hub.example.com");
  CHECK(good_origin->Header("Access-Control-Expose-Headers").find("Mcp-Session-Id") !=
        std::string::npos);
  auto preflight = f.Send("OPTIONS", "", {{"origin", "https://hub.example.com"}});
  CHECK(preflight->status == 204);
  CHECK(preflight->Header("Access-Control-Allow-Headers").find("MCP-Protocol-Version") !=
        std::string::npos);
}

TEST_CASE("with authentication off, every call runs as the anonymous principal", "[mcp]") {
  Fixture f;
  auto answer = f.Post(Request(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}}),
                       {{"authorization", "Bearer anything"}, {"accept", "application/json"}});
  CHECK(answer->status == 200);
  CHECK(f.tools.last_principal == "anonymous");
}

TEST_CASE("with authentication on, a missing or wrong key gets 401 and a challenge", "[mcp]") {
  Fixture f({.authenticate =
                 [](std::optional<std::string_view> header) -> absl::StatusOr<auth::Principal> {
    if (!header) return absl::UnauthenticatedError("an API key is required");
    if (*header == "Bearer good") return auth::Principal::ApiKey("alice", false);
    return absl::UnauthenticatedError("this API key is unknown or revoked");
  }});
  auto missing = f.Post(Request(1, "ping"));
  CHECK(missing->status == 401);
  CHECK(missing->Header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  auto wrong = f.Post(Request(1, "ping"), {{"authorization", "Bearer bad"}});
  CHECK(wrong->status == 401);
  CHECK(wrong->Header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  auto good = f.Post(Request(1, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}}),
                     {{"authorization", "Bearer good"}, {"accept", "application/json"}});
  CHECK(good->status == 200);
  CHECK(f.tools.last_principal == "key:alice");
  // A session made by alice is not valid for another caller.
  Fixture g({.authenticate =
                 [](std::optional<std::string_view> header) -> absl::StatusOr<auth::Principal> {
    return auth::Principal::ApiKey(header && *header == "Bearer good" ? "alice" : "bob", false);
  }});
  auto init = g.Post(Request(1, "initialize"), {{"authorization", "Bearer good"}});
  const std::string session = init->Header("Mcp-Session-Id");
  CHECK(g.Post(Request(2, "ping"), {{"authorization", "Bearer good"}, {"mcp-session-id", session}})
            ->status == 200);
  CHECK(g.Post(Request(2, "ping"), {{"authorization", "Bearer other"}, {"mcp-session-id", session}})
            ->status == 404);
}

TEST_CASE("tools/list gives schemas and annotations in a fixed order", "[mcp]") {
  Fixture f;
  json tools = f.Post(Request(1, "tools/list"))->As<json>()["result"]["tools"];
  REQUIRE(tools.size() == 2);
  CHECK(tools[0]["name"] == "echo");
  CHECK(tools[0]["inputSchema"]["type"] == "object");
  CHECK(tools[0]["outputSchema"]["type"] == "object");
  CHECK(tools[0]["annotations"]["readOnlyHint"] == true);
  CHECK(tools[1]["annotations"]["destructiveHint"] == true);
  CHECK(!tools[1].contains("outputSchema"));
}

TEST_CASE("tools/call answers JSON when the client accepts only JSON", "[mcp]") {
  Fixture f;
  auto r = f.Post(Request(5, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "hi"}}}}),
                  {{"accept", "application/json"}});
  REQUIRE(r->status == 200);
  CHECK(!r->streaming);
  json result = Json(*r)["result"];
  CHECK(result["isError"] == false);
  CHECK(result["structuredContent"]["text"] == "hi");
  CHECK(json::parse(result["content"][0]["text"].get<std::string>())["text"] == "hi");
}

TEST_CASE("tools/call streams progress then the response over SSE", "[mcp]") {
  Fixture f;
  auto r = f.Post(Request(6, "tools/call",
                          {{"name", "echo"},
                           {"arguments", {{"text", "hi"}}},
                           {"_meta", {{"progressToken", "p1"}}}}),
                  {{"accept", "application/json, text/event-stream"}});
  REQUIRE(r->streaming);
  CHECK(r->done);
  CHECK(r->Header("Content-Type") == "text/event-stream");
  CHECK(r->Header("X-Accel-Buffering") == "no");
  const std::string stream = r->Stream();
  // Two progress events (the non-increasing one is dropped) and then the response.
  REQUIRE(r->chunks.size() == 3);
  CHECK(r->chunks[0].find("notifications/progress") != std::string::npos);
  CHECK(r->chunks[0].find("\"progressToken\":\"p1\"") != std::string::npos);
  CHECK(r->chunks[1].find("\"progress\":2") != std::string::npos);
  CHECK(r->chunks[2].rfind("event: message\ndata: ", 0) == 0);
  json response = json::parse(r->chunks[2].substr(r->chunks[2].find("data: ") + 6));
  CHECK(response["id"] == 6);
  CHECK(response["result"]["structuredContent"]["text"] == "hi");
  // Without a progress token there is nothing to send before the response: it comes as
  // plain JSON (one write) even though the client accepts a stream (claude.ai's */*).
  auto star = f.Post(Request(7, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "a"}}}}),
                     {{"accept", "*/*"}});
  CHECK(!star->streaming);
  CHECK(star->Header("Content-Type") == "application/json");
  CHECK(Json(*star)["result"]["structuredContent"]["text"] == "a");
}

TEST_CASE("unknown tools are protocol errors, bad arguments are tool errors", "[mcp]") {
  Fixture f;
  auto unknown =
      f.Post(Request(1, "tools/call", {{"name", "nope"}}), {{"accept", "application/json"}});
  CHECK(Json(*unknown)["error"]["code"] == -32602);
  auto bad = f.Post(Request(2, "tools/call", {{"name", "echo"}, {"arguments", {{"text", 5}}}}),
                    {{"accept", "application/json"}});
  json result = Json(*bad)["result"];
  CHECK(result["isError"] == true);
  CHECK(!result.contains("structuredContent"));
  CHECK(result["content"][0]["text"] == "invalid arguments: text: must be a string");
  auto extra =
      f.Post(Request(3, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "a"}, {"x", 1}}}}),
             {{"accept", "application/json"}});
  CHECK(Json(*extra)["result"]["content"][0]["text"] ==
        "invalid arguments: x: is not a known argument");
  auto too_long = f.Post(
      Request(5, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "eleven chars"}}}}),
      {{"accept", "application/json"}});
  CHECK(Json(*too_long)["result"]["content"][0]["text"] ==
        "invalid arguments: text: must be at most 10 characters");
  auto missing =
      f.Post(Request(4, "tools/call", {{"name", "echo"}}), {{"accept", "application/json"}});
  CHECK(Json(*missing)["result"]["content"][0]["text"] == "invalid arguments: text: is required");
}

TEST_CASE("notifications/cancelled cancels the running call and suppresses its response", "[mcp]") {
  Fixture f;
  const std::string session = f.Initialize();
  std::shared_ptr<RecordingResponder> call;
  std::thread runner([&] {
    call = f.Post(Request(42, "tools/call", {{"name", "wait"}}),
                  {{"mcp-session-id", session}, {"accept", "text/event-stream"}});
  });
  {
    std::unique_lock lock(f.tools.mu);
    REQUIRE(f.tools.cv.wait_for(lock, std::chrono::seconds(10), [&] { return f.tools.started; }));
  }
  auto note = f.Post({{"jsonrpc", "2.0"},
                      {"method", "notifications/cancelled"},
                      {"params", {{"requestId", 42}, {"reason", "user"}}}},
                     {{"mcp-session-id", session}});
  CHECK(note->status == 202);
  runner.join();
  CHECK(f.tools.cancelled);
  CHECK(call->done);
  CHECK(call->Stream().find("\"id\":42") == std::string::npos);
}

// Two principals, by the Authorization header: "alice" and "bob".
EndpointOptions TwoCallers(int max_calls) {
  return {.authenticate =
              [](std::optional<std::string_view> header) -> absl::StatusOr<auth::Principal> {
            if (header == "Bearer alice") return auth::Principal::ApiKey("alice", false);
            if (header == "Bearer bob") return auth::Principal::ApiKey("bob", false);
            return absl::UnauthenticatedError("no such key");
          },
          .max_calls_per_principal = max_calls};
}

void WaitUntilStarted(TestTools& tools, int calls) {
  std::unique_lock lock(tools.mu);
  REQUIRE(
      tools.cv.wait_for(lock, std::chrono::seconds(10), [&] { return tools.waiting >= calls; }));
}

void ReleaseAll(TestTools& tools) {
  std::lock_guard lock(tools.mu);
  tools.released = true;
  tools.cv.notify_all();
}

TEST_CASE("one caller's tool calls beyond its limit are refused and another caller's run",
          "[mcp]") {
  Fixture f(TwoCallers(2));
  std::vector<std::thread> running;
  for (int id = 1; id <= 2; ++id) {
    running.emplace_back([&, id] {
      (void)f.Post(Request(id, "tools/call", {{"name", "wait"}}),
                   {{"authorization", "Bearer alice"}, {"accept", "application/json"}});
    });
  }
  WaitUntilStarted(f.tools, 2);
  auto refused =
      f.Post(Request(3, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}}),
             {{"authorization", "Bearer alice"}, {"accept", "application/json"}});
  json result = Json(*refused)["result"];
  CHECK(result["isError"] == true);
  CHECK(result["content"][0]["text"] ==
        "you have 2 tool calls running, the limit per caller (max_calls_per_caller); wait for one "
        "to finish");
  auto other = f.Post(Request(3, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}}),
                      {{"authorization", "Bearer bob"}, {"accept", "application/json"}});
  CHECK(Json(*other)["result"]["structuredContent"]["text"] == "x");
  ReleaseAll(f.tools);
  for (auto& thread : running) thread.join();
  // Freed once they ended.
  auto again = f.Post(Request(4, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "y"}}}}),
                      {{"authorization", "Bearer alice"}, {"accept", "application/json"}});
  CHECK(Json(*again)["result"]["structuredContent"]["text"] == "y");
}

TEST_CASE("a JSON-RPC id of one caller never cancels another caller's call of the same id",
          "[mcp]") {
  Fixture f(TwoCallers(0));
  std::shared_ptr<RecordingResponder> call;
  std::thread runner([&] {
    call = f.Post(Request(7, "tools/call", {{"name", "wait"}}),
                  {{"authorization", "Bearer alice"}, {"accept", "text/event-stream"}});
  });
  WaitUntilStarted(f.tools, 1);
  // Bob, without a session as alice, cancels "his" request 7 and runs one of the same id.
  auto note = f.Post(
      {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 7}}}},
      {{"authorization", "Bearer bob"}});
  CHECK(note->status == 202);
  auto bobs = f.Post(Request(7, "tools/call", {{"name", "echo"}, {"arguments", {{"text", "b"}}}}),
                     {{"authorization", "Bearer bob"}, {"accept", "application/json"}});
  CHECK(Json(*bobs)["result"]["structuredContent"]["text"] == "b");
  {
    std::lock_guard lock(f.tools.mu);
    CHECK_FALSE(f.tools.cancelled);
  }
  // Alice's own cancel still reaches her call.
  auto hers = f.Post(
      {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 7}}}},
      {{"authorization", "Bearer alice"}});
  CHECK(hers->status == 202);
  runner.join();
  CHECK(f.tools.cancelled);
}

TEST_CASE("a long call's stream gets keep-alive comments on the clock", "[mcp]") {
  Fixture f({.keepalive_interval = std::chrono::seconds(15)});
  std::shared_ptr<RecordingResponder> call;
  std::thread runner([&] {
    call = f.Post(Request(1, "tools/call", {{"name", "wait"}}), {{"accept", "text/event-stream"}});
  });
  {
    std::unique_lock lock(f.tools.mu);
    REQUIRE(f.tools.cv.wait_for(lock, std::chrono::seconds(10), [&] { return f.tools.started; }));
  }
  REQUIRE(f.clock.WaitForWaiters(1));
  f.clock.Advance(std::chrono::seconds(15));
  // Back to waiting means the keep-alive went out.
  REQUIRE(f.clock.WaitForWaiters(1));
  {
    std::lock_guard lock(f.tools.mu);
    f.tools.released = true;
    f.tools.cv.notify_all();
  }
  runner.join();
  CHECK(call->Stream().find(": keepalive\n\n") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::mcp
