// A box's network on the hub: create_llmbox's `network`, set_llmbox_network and get_llmbox's
// network part, over the registry (ownership as every per-box call), the box tools (argument
// shapes refused before any spoke is asked) and the gRPC spoke client (what a spoke sends is
// bounded and made valid again). Over a real SQLite store and fake spokes.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/utf8.h"
#include "hub/auth/principal.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/mcp/endpoint.h"
#include "hub/mcp/schema.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/tools_call.h"

namespace llmbox::hub::boxes {
namespace {

using auth::Principal;
using cluster::NetworkMode;
using nlohmann::json;
using namespace std::chrono_literals;

const Principal kAlice = Principal::ApiKey("alice", /*admin=*/false);
const Principal kBob = Principal::ApiKey("bob", /*admin=*/false);
const Principal kAdmin = Principal::ApiKey("root", /*admin=*/true);

class CallerContext final : public mcp::CallContext {
 public:
  explicit CallerContext(Principal principal) : principal_(std::move(principal)) {}
  void Progress(double, std::optional<double>, std::string_view) override {}
  bool Cancelled() const override { return false; }
  void OnCancel(std::function<void()>) override {}
  const Principal& principal() const override { return principal_; }

 private:
  Principal principal_;
};

// The registry and the tools over a FakeSpokeClient (no gRPC).
struct Fixture {
  Fixture() : dir("box-network-hub") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", spoke, true);
    registry = std::make_unique<BoxRegistry>(
        *db, spokes, clock, RegistryOptions{.public_url = "https://hub.example.com"});
    tools = std::make_unique<BoxTools>(*registry);
  }

  void Create(const std::string& id, const Principal& owner) {
    auto created = registry->Create({.box_id = id, .owner = owner}, nullptr);
    INFO(created.status().ToString());
    REQUIRE(created.ok());
  }

  mcp::ToolResult Call(const std::string& tool, const json& args,
                       const Principal& caller = kAlice) {
    CallerContext context(caller);
    return tools->Call(tool, args, context);
  }

  // A successful call's structured result.
  json Ok(const std::string& tool, const json& args, const Principal& caller = kAlice) {
    mcp::ToolResult result = Call(tool, args, caller);
    INFO(result.text);
    REQUIRE_FALSE(result.is_error);
    return result.structured_json.empty() ? result.structured : json::parse(result.structured_json);
  }

  std::size_t CreatesAsked() {
    std::lock_guard lock(spoke->mu);
    return spoke->creates.size();
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  std::shared_ptr<testing::FakeSpokeClient> spoke = std::make_shared<testing::FakeSpokeClient>();
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
  std::unique_ptr<BoxTools> tools;
};

// ---- The registry ----

TEST_CASE("a network change reaches the spoke for the box's owner and an admin only",
          "[box_network]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  const cluster::NetworkChange change{.add = {"pypi.org"}};

  auto theirs = f.registry->SetNetwork(kBob, "alice-box", change);
  auto missing = f.registry->SetNetwork(kBob, "nobod-box", change);
  CHECK(absl::IsNotFound(theirs.status()));
  // The same answer as a box that does not exist, but for the quoted id.
  std::string expected(missing.status().message());
  expected.replace(expected.find("nobod-box"), 9, "alice-box");
  CHECK(std::string(theirs.status().message()) == expected);
  CHECK(f.spoke->network_changes.empty());

  auto own = f.registry->SetNetwork(kAlice, "alice-box", change);
  REQUIRE(own.ok());
  CHECK(own->allow == std::vector<std::string>{"pypi.org"});
  auto by_admin = f.registry->SetNetwork(kAdmin, "alice-box",
                                         {.remove = {"pypi.org"}, .mode = NetworkMode::kNone});
  REQUIRE(by_admin.ok());
  CHECK(by_admin->allow.empty());
  CHECK(by_admin->mode == NetworkMode::kNone);
  REQUIRE(f.spoke->network_changes.size() == 2);
  CHECK(f.spoke->network_changes[0].first == "alice-box");
  CHECK(f.spoke->network_changes[1].second.mode == NetworkMode::kNone);
  CHECK(f.spoke->Timeouts("SetBoxNetwork") == std::vector<std::chrono::milliseconds>{15s, 15s});
}

TEST_CASE("a spoke's refusal of a policy reaches the caller in the spoke's words",
          "[box_network]") {
  Fixture f;
  f.Create("alice-box", kAlice);
  const std::string why =
      "network entry \"evil.example\" is not permitted: this spoke lets a box add *.pypi.org, "
      "files.pythonhosted.org";
  f.spoke->set_network_status = absl::PermissionDeniedError(why);
  auto set = f.Call("set_llmbox_network", {{"box_id", "alice-box"}, {"add", {"evil.example"}}});
  CHECK(set.is_error);
  CHECK(set.text == why);

  f.spoke->create_status = absl::PermissionDeniedError(why);
  auto created = f.Call("create_llmbox", {{"box_id", "second"}, {"network", "open"}});
  CHECK(created.is_error);
  CHECK(created.text == why);
}

// ---- create_llmbox's network ----

TEST_CASE("create_llmbox takes a mode or an object and hands the spoke the policy",
          "[box_network]") {
  Fixture f;
  json out = f.Ok("create_llmbox", {{"box_id", "plain"}});
  CHECK_FALSE(f.spoke->creates.back().network.has_value());  // the spoke's default
  CHECK(out["network"]["mode"] == "allowlist");

  out = f.Ok("create_llmbox", {{"box_id", "closed"}, {"network", "none"}});
  REQUIRE(f.spoke->creates.back().network.has_value());
  CHECK(f.spoke->creates.back().network->mode == NetworkMode::kNone);
  CHECK(f.spoke->creates.back().network->allow.empty());
  CHECK(out["network"]["mode"] == "none");

  out = f.Ok("create_llmbox",
             {{"box_id", "listed"},
              {"network", {{"mode", "allowlist"}, {"allow", {"pypi.org", "*.npmjs.org:443"}}}}});
  REQUIRE(f.spoke->creates.back().network.has_value());
  CHECK(f.spoke->creates.back().network->mode == NetworkMode::kAllowlist);
  CHECK(f.spoke->creates.back().network->allow ==
        std::vector<std::string>{"pypi.org", "*.npmjs.org:443"});
  CHECK(out["network"]["allow"] == json({"pypi.org", "*.npmjs.org:443"}));
  CHECK(out["network"]["base"] == json({"api.anthropic.com:443"}));

  // An object without a mode: the spoke's default mode, with entries.
  f.Ok("create_llmbox", {{"box_id", "entries"}, {"network", {{"allow", {"pypi.org"}}}}});
  CHECK(f.spoke->creates.back().network->mode == NetworkMode::kDefault);
  CHECK(f.spoke->creates.back().network->allow == std::vector<std::string>{"pypi.org"});
}

TEST_CASE("create_llmbox refuses a network of the wrong shape before any spoke is asked",
          "[box_network]") {
  Fixture f;
  std::vector<std::string> too_many;
  for (int i = 0; i < 65; ++i) too_many.push_back("h" + std::to_string(i) + ".example");
  const std::vector<std::pair<json, std::string>> cases = {
      {"closed", "network: must be one of \"none\", \"allowlist\", \"open\""},
      {"NONE", "network: must be one of"},
      {42, "network: must be a mode (\"none\", \"allowlist\", \"open\") or an object"},
      {json::array({"pypi.org"}), "network: must be a mode"},
      {{{"mode", "wide"}}, "network.mode: must be one of"},
      {{{"mode", 1}}, "network.mode: must be one of"},
      {{{"allow", "pypi.org"}}, "network.allow: must be an array of strings"},
      {{{"allow", {"pypi.org", 7}}}, "network.allow[1]: must be a string"},
      {{{"allow", {json::object()}}}, "network.allow[0]: must be a string"},
      {{{"allow", too_many}}, "network.allow: must have at most 64 items"},
      {{{"allow", {std::string(254, 'a')}}}, "network.allow[0]: must be 1..253 characters"},
      {{{"allow", {""}}}, "network.allow[0]: must be 1..253 characters"},
      {{{"allowlist", {"pypi.org"}}}, "network.allowlist: is not a known argument"},
  };
  for (const auto& [network, expected] : cases) {
    INFO(network.dump());
    auto result = f.Call("create_llmbox", {{"box_id", "shaped"}, {"network", network}});
    CHECK(result.is_error);
    CHECK(result.text.rfind("invalid arguments: " + expected, 0) == 0);
  }
  CHECK(f.CreatesAsked() == 0);
  CHECK(absl::IsNotFound(f.db->GetBox("shaped").status()));
  // 64 entries of 253 bytes are within bounds.
  too_many.pop_back();
  too_many.back() = std::string(253, 'a');
  f.Ok("create_llmbox", {{"box_id", "shaped"}, {"network", {{"allow", too_many}}}});
}

// ---- set_llmbox_network ----

TEST_CASE("set_llmbox_network adds, removes and changes the mode, and returns the new network",
          "[box_network]") {
  Fixture f;
  f.Create("b1", kAlice);
  json out = f.Ok("set_llmbox_network", {{"box_id", "b1"}, {"add", {"pypi.org", "ghcr.io:443"}}});
  CHECK(out["box_id"] == "b1");
  CHECK(out["network"]["mode"] == "allowlist");
  CHECK(out["network"]["allow"] == json({"pypi.org", "ghcr.io:443"}));
  CHECK(out["network"]["refusals"] == json::array());

  out = f.Ok("set_llmbox_network", {{"box_id", "b1"}, {"remove", {"pypi.org"}}, {"mode", "open"}});
  CHECK(out["network"]["mode"] == "open");
  CHECK(out["network"]["allow"] == json({"ghcr.io:443"}));
  const cluster::NetworkChange& last = f.spoke->network_changes.back().second;
  CHECK(last.add.empty());
  CHECK(last.remove == std::vector<std::string>{"pypi.org"});
  CHECK(last.mode == NetworkMode::kOpen);
}

TEST_CASE("set_llmbox_network refuses arguments of the wrong shape and an empty change",
          "[box_network]") {
  Fixture f;
  f.Create("b1", kAlice);
  std::vector<std::string> too_many(65, "pypi.org");
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"mode", "closed"}}, "mode: must be one of \"none\", \"allowlist\", \"open\""},
      {{{"add", {1, 2}}}, "add[0]: must be a string"},
      {{{"remove", "pypi.org"}}, "remove: must be an array of strings"},
      {{{"add", too_many}}, "add: must have at most 64 items"},
      {{{"remove", {"ok.example", std::string(300, 'x')}}}, "remove[1]: must be 1..253 characters"},
      {json::object(), "nothing to change: give add, remove or mode"},
      {{{"add", json::array()}}, "nothing to change"},
  };
  for (auto [args, expected] : cases) {
    INFO(args.dump());
    args["box_id"] = "b1";
    auto result = f.Call("set_llmbox_network", args);
    CHECK(result.is_error);
    CHECK(result.text.rfind("invalid arguments: " + expected, 0) == 0);
  }
  CHECK(f.spoke->network_changes.empty());
}

// ---- get_llmbox ----

TEST_CASE(
    "get_llmbox asks the box's spoke again once its last answer is older than live_ttl and shows "
    "the newest refusals",
    "[box_network]") {
  Fixture f;
  f.Create("b1", kAlice);
  f.clock.Advance(RegistryOptions{}.live_ttl);
  {
    std::lock_guard lock(f.spoke->mu);
    auto& network = f.spoke->boxes["b1"].network;
    network.allow = {"pypi.org"};
    for (int i = 0; i < 12; ++i) {
      network.refusals.push_back({.time = std::chrono::sys_time<std::chrono::milliseconds>(
                                      1'795'000'000'000ms + std::chrono::seconds(i)),
                                  .destination = "host" + std::to_string(i) + ".example",
                                  .port = 443,
                                  .protocol = "tcp",
                                  .rule = "not in the allowlist"});
    }
    network.refusals.back().port = 0;
    network.refusals.back().protocol = "icmp";
  }
  const json box = f.Ok("get_llmbox", {{"box_id", "b1"}});
  CHECK(box["status"] == "pending");
  const json& network = box["network"];
  CHECK(network["mode"] == "allowlist");
  CHECK(network["allow"] == json({"pypi.org"}));
  CHECK(network["base"] == json({"api.anthropic.com:443"}));
  CHECK(network["proxy"] == "http://10.200.0.1:3128");
  REQUIRE(network["refusals"].size() == 10);  // the newest ten, oldest first
  const json& first = network["refusals"][0];
  CHECK(first == json{{"time", "2026-11-18T11:06:42Z"},
                      {"destination", "host2.example"},
                      {"port", 443},
                      {"protocol", "tcp"},
                      {"rule", "not in the allowlist"}});
  CHECK(network["refusals"][9]["destination"] == "host11.example");
  CHECK_FALSE(network["refusals"][9].contains("port"));  // icmp has none
  CHECK(f.spoke->got == std::vector<std::string>{"b1"});
  CHECK(f.spoke->Timeouts("GetBox") == std::vector<std::chrono::milliseconds>{5s});
  // list_llmboxes does not ask every spoke for every box's network.
  const json listed = f.Ok("list_llmboxes", json::object());
  CHECK_FALSE(listed["boxes"][0].contains("network"));
  CHECK(f.spoke->got.size() == 1);
}

TEST_CASE("get_llmbox of a box whose spoke does not answer shows the box and why no network",
          "[box_network]") {
  Fixture f;
  f.Create("b1", kAlice);
  f.clock.Advance(RegistryOptions{}.live_ttl);
  f.spoke->get_status = absl::UnavailableError("connection refused");
  const json box = f.Ok("get_llmbox", {{"box_id", "b1"}});
  CHECK(box["box_id"] == "b1");
  CHECK(box["status"] == "pending");
  CHECK(box["network"] == json{{"error", "spoke \"local\" cannot be reached: connection refused"}});

  f.spoke->get_status = absl::DeadlineExceededError("deadline");
  CHECK(f.Ok("get_llmbox", {{"box_id", "b1"}})["network"]["error"] ==
        "spoke \"local\" did not answer in time");
}

TEST_CASE("get_llmbox asks no spoke for a gone box", "[box_network]") {
  Fixture f;
  f.Create("b1", kAlice);
  auto record = f.db->GetBox("b1").value();
  record.phase = store::Phase::kGone;
  REQUIRE(f.db->UpdateBox(record).ok());
  const json box = f.Ok("get_llmbox", {{"box_id", "b1"}});
  CHECK(box["status"] == "gone");
  CHECK_FALSE(box.contains("network"));
  CHECK(f.spoke->got.empty());
}

// ---- The tool list ----

TEST_CASE(
    "the tools are listed in a fixed order, set_llmbox_network among them, and tell the "
    "chatbot to ask before allowing a refused destination",
    "[box_network]") {
  Fixture f;
  std::vector<std::string> names;
  for (const mcp::Tool& tool : f.tools->Tools()) names.push_back(tool.name);
  CHECK(names == std::vector<std::string>{"create_llmbox", "get_llmbox", "list_llmboxes",
                                          "destroy_llmbox", "get_llmbox_logs", "exec_llmbox",
                                          "set_llmbox_network", "list_spokes"});
  for (const mcp::Tool& tool : f.tools->Tools()) {
    INFO(tool.name);
    if (tool.name == "get_llmbox" || tool.name == "set_llmbox_network") {
      CHECK(tool.description.find("The box tried to reach") != std::string::npos);
      CHECK(tool.description.find("Allow it?") != std::string::npos);
      CHECK(tool.output_schema.dump().find("refusals") != std::string::npos);
    }
    if (tool.name == "set_llmbox_network") {
      CHECK(tool.input_schema["required"] == json({"box_id"}));
      CHECK_FALSE(tool.read_only);
      CHECK_FALSE(tool.destructive);
      // The endpoint's own check refuses what the tool would (mcp/schema.h).
      CHECK(mcp::SchemaProblem(tool.input_schema, {{"box_id", "b1"}, {"add", {1}}}) ==
            "add[0]: must be a string");
      CHECK(
          mcp::SchemaProblem(tool.input_schema, {{"box_id", "b1"}, {"mode", "wide"}}).has_value());
      CHECK(mcp::SchemaProblem(tool.input_schema,
                               {{"box_id", "b1"}, {"add", {std::string(254, 'a')}}})
                .has_value());
      CHECK_FALSE(mcp::SchemaProblem(tool.input_schema,
                                     {{"box_id", "b1"}, {"add", {"pypi.org"}}, {"mode", "open"}})
                      .has_value());
    }
    if (tool.name == "create_llmbox") {
      CHECK(tool.input_schema["properties"].contains("network"));
      // A string or an object: both pass the endpoint's check, the tool checks the shape.
      CHECK_FALSE(mcp::SchemaProblem(tool.input_schema, {{"network", "none"}}).has_value());
      CHECK_FALSE(mcp::SchemaProblem(tool.input_schema, {{"network", {{"allow", {"pypi.org"}}}}})
                      .has_value());
    }
  }
}

// ---- Through gRPC and the MCP endpoint ----

// The registry and tools over a FakeBoxService (the hub's real gRPC client), and the endpoint.
struct GrpcHub {
  GrpcHub() : dir("box-network-grpc") {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    client = cluster::MakeGrpcSpokeClient(spoke.Channel());
    spokes.Add("local", client, true);
    registry = std::make_unique<BoxRegistry>(
        *db, spokes, clock, RegistryOptions{.public_url = "https://hub.example.com"});
    tools = std::make_unique<BoxTools>(*registry);
    endpoint = std::make_unique<mcp::McpEndpoint>(
        mcp::EndpointOptions{.session_key = std::string(32, 'k'),
                             .allowed_hosts = {"127.0.0.1:8080"}},
        *tools, clock);
  }

  // One tools/call as a JSON-only client sends it; the reply parsed strictly.
  json Call(const std::string& tool, const json& arguments) {
    http::Request request = testing::ToolsCallRequest(tool, arguments);
    auto responder = std::make_shared<testing::RecordingResponder>();
    endpoint->Handle(std::move(request), responder);
    REQUIRE(responder->status == 200);
    REQUIRE(common::IsValidUtf8(responder->body));
    json reply;
    REQUIRE_NOTHROW(reply = json::parse(responder->body));
    return reply["result"];
  }

  testing::ScratchDir dir;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeBoxService spoke;
  std::shared_ptr<cluster::SpokeClient> client;
  testing::FakeClock clock;
  SpokeDirectory spokes;
  std::unique_ptr<BoxRegistry> registry;
  std::unique_ptr<BoxTools> tools;
  std::unique_ptr<mcp::McpEndpoint> endpoint;
};

TEST_CASE("a create's policy and a network change cross gRPC, and the box's network comes back",
          "[box_network]") {
  GrpcHub hub;
  auto created = hub.client->CreateBox(
      {.box_id = "b1",
       .network = cluster::NetworkPolicy{.mode = NetworkMode::kOpen, .allow = {"pypi.org"}}},
      30s);
  REQUIRE(created.ok());
  {
    std::lock_guard lock(hub.spoke.mu);
    REQUIRE(hub.spoke.last_create.has_network());
    CHECK(hub.spoke.last_create.network().mode() == v1::NETWORK_MODE_OPEN);
    CHECK(hub.spoke.last_create.network().allow_size() == 1);
  }
  CHECK(created->box.network.mode == NetworkMode::kOpen);
  CHECK(created->box.network.allow == std::vector<std::string>{"pypi.org"});

  // Without a policy the request carries none: the spoke's default.
  REQUIRE(hub.client->CreateBox({.box_id = "b2"}, 30s).ok());
  {
    std::lock_guard lock(hub.spoke.mu);
    CHECK_FALSE(hub.spoke.last_create.has_network());
  }

  auto changed = hub.client->SetBoxNetwork(
      "b1", {.add = {"ghcr.io"}, .remove = {"pypi.org"}, .mode = NetworkMode::kAllowlist}, 15s);
  REQUIRE(changed.ok());
  {
    std::lock_guard lock(hub.spoke.mu);
    CHECK(hub.spoke.last_set_network.box_id() == "b1");
    CHECK(hub.spoke.last_set_network.mode() == v1::NETWORK_MODE_ALLOWLIST);
  }
  CHECK(changed->network.mode == NetworkMode::kAllowlist);
  CHECK(changed->network.allow == std::vector<std::string>{"ghcr.io"});
  // A change without a mode sends UNSPECIFIED: the mode stays.
  REQUIRE(hub.client->SetBoxNetwork("b1", {.add = {"pypi.org"}}, 15s).ok());
  {
    std::lock_guard lock(hub.spoke.mu);
    CHECK(hub.spoke.last_set_network.mode() == v1::NETWORK_MODE_UNSPECIFIED);
  }
  auto got = hub.client->GetBox("b1", 15s);
  REQUIRE(got.ok());
  CHECK(got->network.allow == std::vector<std::string>{"ghcr.io", "pypi.org"});
  CHECK(absl::IsNotFound(hub.client->GetBox("nope", 15s).status()));
  CHECK(absl::IsNotFound(hub.client->SetBoxNetwork("nope", {.add = {"x.org"}}, 15s).status()));
}

TEST_CASE("a spoke's hostile refusals reach the chatbot valid and bounded through get_llmbox",
          "[box_network]") {
  GrpcHub hub;
  REQUIRE(hub.registry->Create({.box_id = "b1"}, nullptr).ok());
  {
    std::lock_guard lock(hub.spoke.mu);
    v1::BoxNetwork* network = hub.spoke.boxes["b1"].mutable_network();
    // A spoke that broke its promises: 100 refusals, huge, with bytes that are not UTF-8 (the
    // proto field is a string, so these go as bytes a lenient sender would write).
    for (int i = 0; i < 100; ++i) {
      v1::Refusal* refusal = network->add_refusals();
      refusal->mutable_time()->set_seconds(1'795'000'000 + i);
      refusal->set_destination(std::string(10'000, 'd') + std::to_string(i));
      refusal->set_port(443);
      refusal->set_protocol(std::string(1000, 'p'));
      refusal->set_rule(std::string(10'000, 'r'));
    }
    for (int i = 0; i < 1000; ++i) network->add_allow(std::string(1000, 'a'));
  }
  auto got = hub.client->GetBox("b1", 15s);
  REQUIRE(got.ok());
  REQUIRE(got->network.refusals.size() == cluster::kMaxNetworkRefusals);
  CHECK(got->network.refusals.back().destination.size() <= 255);
  CHECK(got->network.refusals.front().time.time_since_epoch() == 1'795'000'068'000ms);  // newest
  CHECK(got->network.refusals.back().rule.size() <= 256);
  CHECK(got->network.refusals.back().protocol.size() <= 16);
  CHECK(got->network.allow.size() == cluster::kMaxNetworkList);
  CHECK(got->network.allow.front().size() <= 255);

  hub.clock.Advance(RegistryOptions{}.live_ttl);  // what the create said is old: asked again
  const json result = hub.Call("get_llmbox", {{"box_id", "b1"}});
  REQUIRE(result["isError"] == false);
  const json& network = result["structuredContent"]["network"];
  CHECK(network["refusals"].size() == 10);
  CHECK(result.dump().size() < 200'000);
}

}  // namespace
}  // namespace llmbox::hub::boxes
