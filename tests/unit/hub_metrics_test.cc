// The hub's metrics (hub/metrics): what its families count, that labels stay in their closed
// sets whatever a caller sends, the grouped store count behind llmbox_hub_boxes, and who may
// read /metrics.
#include "hub/metrics/hub_metrics.h"

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "hub/metrics/metrics_endpoint.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/query_plan.h"
#include "tests/support/raw_sqlite.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::metrics {
namespace {

using namespace std::chrono_literals;

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE("creates are counted by outcome and timed by result", "[metrics]") {
  HubMetrics metrics;
  metrics.RecordCreate(absl::OkStatus(), 2s);
  metrics.RecordCreate(absl::UnavailableError("spoke local is down"), 100ms);
  metrics.RecordCreate(absl::ResourceExhaustedError("quota"), 1ms);
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_hub_box_creates_total{outcome=\"ok\"} 1"));
  CHECK(Has(text, "llmbox_hub_box_creates_total{outcome=\"unavailable\"} 1"));
  CHECK(Has(text, "llmbox_hub_box_creates_total{outcome=\"resource_exhausted\"} 1"));
  CHECK(Has(text, "llmbox_hub_box_create_duration_seconds_count{result=\"ok\"} 1"));
  CHECK(Has(text, "llmbox_hub_box_create_duration_seconds_sum{result=\"ok\"} 2"));
  CHECK(Has(text, "llmbox_hub_box_create_duration_seconds_count{result=\"failed\"} 2"));
  // The error's words (which may name a box or a spoke's address) are never a label.
  CHECK(text.find("spoke local is down") == std::string::npos);
}

TEST_CASE("activations are counted by outcome and busy ones are not timed", "[metrics]") {
  HubMetrics metrics;
  metrics.RecordActivation(ActivationOutcome::kActivated, 3s);
  metrics.RecordActivation(ActivationOutcome::kRefused, 1s);
  metrics.RecordActivation(ActivationOutcome::kBusy, 0s);
  metrics.RecordActivationRefusal(ActivationRefusal::kRateLimited);
  metrics.RecordActivationRefusal(ActivationRefusal::kNotACode);
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_hub_activation_attempts_total{outcome=\"activated\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_attempts_total{outcome=\"refused\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_attempts_total{outcome=\"busy\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_duration_seconds_count{outcome=\"activated\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_duration_seconds_count{outcome=\"busy\"} 0"));
  CHECK(Has(text, "llmbox_hub_activation_refusals_total{reason=\"rate_limited\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_refusals_total{reason=\"not_a_code\"} 1"));
  CHECK(Has(text, "llmbox_hub_activation_refusals_total{reason=\"form\"} 0"));
}

TEST_CASE("a hostile client's method and tool names collapse to other", "[metrics]") {
  HubMetrics metrics;
  metrics.WatchTools({"create_llmbox", "get_llmbox"});
  metrics.RecordMcpRequest("tools/call", "create_llmbox", "ok");
  metrics.RecordMcpRequest("tools/call", "steal_token_abc123", "error");
  metrics.RecordMcpRequest("x\"}\nllmbox_hub_fake 1", "", "error");
  metrics.RecordMcpRequest("initialize", "", "ok");
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_hub_mcp_requests_total{method=\"tools/call\",outcome=\"ok\"} 1"));
  CHECK(Has(text, "llmbox_hub_mcp_requests_total{method=\"tools/call\",outcome=\"error\"} 1"));
  CHECK(Has(text, "llmbox_hub_mcp_requests_total{method=\"other\",outcome=\"error\"} 1"));
  CHECK(Has(text, "llmbox_hub_mcp_requests_total{method=\"initialize\",outcome=\"ok\"} 1"));
  CHECK(Has(text, "llmbox_hub_mcp_tool_calls_total{tool=\"create_llmbox\",outcome=\"ok\"} 1"));
  CHECK(Has(text, "llmbox_hub_mcp_tool_calls_total{tool=\"other\",outcome=\"error\"} 1"));
  CHECK(text.find("steal_token") == std::string::npos);
  CHECK(text.find("llmbox_hub_fake") == std::string::npos);
}

struct StoreFixture {
  StoreFixture() {
    auto opened = store::SqliteStore::Open(path());
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    db = *std::move(opened);
  }
  std::string path() const { return (dir.path() / "hub.db").string(); }
  void Insert(const std::string& id, const std::string& spoke, store::Phase phase) {
    REQUIRE(db->InsertBox({.box_id = id, .spoke = spoke, .phase = phase}).ok());
  }
  testing::ScratchDir dir{"hub-metrics"};
  std::unique_ptr<store::SqliteStore> db;
};

TEST_CASE("live boxes are gauged by spoke and phase and gone ones are left out", "[metrics]") {
  StoreFixture f;
  f.Insert("w1", "west", store::Phase::kReady);
  f.Insert("w2", "west", store::Phase::kReady);
  f.Insert("w3", "west", store::Phase::kPending);
  f.Insert("w4", "west", store::Phase::kGone);
  f.Insert("e1", "east", store::Phase::kCreating);
  HubMetrics metrics;
  metrics.WatchBoxes(*f.db);
  const std::string text = metrics.Render();
  CHECK(Has(text, "llmbox_hub_boxes{spoke=\"west\",phase=\"ready\"} 2"));
  CHECK(Has(text, "llmbox_hub_boxes{spoke=\"west\",phase=\"pending\"} 1"));
  CHECK(Has(text, "llmbox_hub_boxes{spoke=\"east\",phase=\"creating\"} 1"));
  CHECK(text.find("phase=\"gone\"") == std::string::npos);
  // Box ids are never labels.
  CHECK(text.find("w1") == std::string::npos);
}

TEST_CASE("the box gauge reads one covering index and never sorts", "[metrics]") {
  StoreFixture f;
  for (int i = 0; i < 50; ++i) {
    f.Insert("box-" + std::to_string(i), i % 2 == 0 ? "west" : "east", store::Phase::kReady);
  }
  testing::RawExec(f.path(), "ANALYZE");
  auto plan = testing::QueryPlan(f.path(), store::SqliteStore::SpokePhaseCountsQuery());
  REQUIRE(plan.ok());
  INFO(*plan);
  CHECK(plan->find("COVERING INDEX boxes_by_spoke_phase") != std::string::npos);
  CHECK(plan->find("TEMP B-TREE") == std::string::npos);
}

http::Request MetricsRequest(std::string peer, std::string client, http::Headers headers = {}) {
  http::Request request;
  request.method = "GET";
  request.target = request.path = "/metrics";
  request.remote_address = std::move(peer);
  request.client_address = std::move(client);
  request.headers = std::move(headers);
  return request;
}

TEST_CASE("by default only loopback clients may read /metrics", "[metrics]") {
  auto endpoint = MetricsEndpoint::Create({"127.0.0.0/8", "::1"}, "", [] { return "x 1\n"; });
  REQUIRE(endpoint.ok());
  CHECK(endpoint->Allows(MetricsRequest("127.0.0.1", "127.0.0.1")));
  CHECK(endpoint->Allows(MetricsRequest("::1", "::1")));
  CHECK_FALSE(endpoint->Allows(MetricsRequest("192.0.2.7", "192.0.2.7")));
  CHECK_FALSE(endpoint->Allows(MetricsRequest("2001:db8::1", "2001:db8::1")));
  CHECK_FALSE(endpoint->Allows(MetricsRequest("", "")));

  testing::RecordingResponder allowed;
  endpoint->Handle(MetricsRequest("127.0.0.1", "127.0.0.1"), allowed);
  CHECK(allowed.status == 200);
  CHECK(allowed.Header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(allowed.body == "x 1\n");

  testing::RecordingResponder refused;
  endpoint->Handle(MetricsRequest("192.0.2.7", "192.0.2.7"), refused);
  CHECK(refused.status == 403);
  CHECK(refused.body.find("hub.metrics.allow") != std::string::npos);
  CHECK(refused.body.find("x 1") == std::string::npos);
}

TEST_CASE("a request relayed by a proxy the hub does not trust may not read /metrics",
          "[metrics]") {
  auto endpoint = MetricsEndpoint::Create({"127.0.0.0/8"}, "", [] { return "x 1\n"; });
  REQUIRE(endpoint.ok());
  // nginx on loopback, not in hub.trusted_proxies: the peer is loopback, the client is not.
  for (const char* header : {"x-forwarded-for", "forwarded", "x-real-ip"}) {
    INFO(header);
    CHECK_FALSE(
        endpoint->Allows(MetricsRequest("127.0.0.1", "127.0.0.1", {{header, "for=198.51.100.9"}})));
  }
  // A trusted proxy's word is believed (the server set client_address from it).
  auto inside = MetricsEndpoint::Create({"10.0.0.0/8"}, "", [] { return "x 1\n"; });
  REQUIRE(inside.ok());
  CHECK(inside->Allows(MetricsRequest("127.0.0.1", "10.1.2.3", {{"x-forwarded-for", "10.1.2.3"}})));
  CHECK_FALSE(inside->Allows(
      MetricsRequest("127.0.0.1", "198.51.100.9", {{"x-forwarded-for", "198.51.100.9"}})));
}

TEST_CASE("/metrics answers GET only and a bad allow entry is named", "[metrics]") {
  auto endpoint = MetricsEndpoint::Create({"127.0.0.0/8"}, "", [] { return "x 1\n"; });
  REQUIRE(endpoint.ok());
  http::Request post = MetricsRequest("127.0.0.1", "127.0.0.1");
  post.method = "POST";
  testing::RecordingResponder out;
  endpoint->Handle(post, out);
  CHECK(out.status == 405);
  auto bad = MetricsEndpoint::Create({"127.0.0.0/8", "not-an-address"}, "", [] { return ""; });
  REQUIRE(absl::IsInvalidArgument(bad.status()));
  CHECK(bad.status().message().find("not-an-address") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::metrics
