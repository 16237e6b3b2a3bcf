// Monitoring, end to end: a real Prometheus (Debian's) on loopback scrapes the hub's /metrics
// and a joined spoke's metrics.listen (each behind its own bearer token, sent from Prometheus's
// credentials_file) every second while a box lives through MCP (create, activate, get,
// destroy); its HTTP API then shows the counters moved. promtool accepts both
// outputs and the alert rules in deploy/prometheus. Prometheus keeps its TSDB in the test's
// folder; nothing but loopback is used.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/e2e/cluster_helpers.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kAlertRules =
    std::string(LLMBOX_SOURCE_DIR) + "/deploy/prometheus/llmbox-alerts.yml";

// Writes `token` to <dir>/<name> at 0600 (a token file as docs/monitoring.md says); its path.
fs::path WriteToken(const fs::path& dir, const std::string& name, const std::string& token) {
  const fs::path file = dir / name;
  std::ofstream(file) << token << "\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return file;
}

// A GET with curl (10 s at most), with the header lines given: its body, or "" when none came.
std::string Get(const std::string& url, const fs::path& log,
                const std::vector<std::string>& headers = {}) {
  std::vector<std::string> argv = {"curl", "-s", "--max-time", "10", url};
  for (const std::string& header : headers) argv.insert(argv.end(), {"-H", header});
  ChildProcess get(argv, log);
  if (get.Wait(30s) != 0) return "";
  return get.Log();
}

// The value of the first series `expr` gives in Prometheus at `port` now; nullopt when none.
std::optional<double> Query(int port, const std::string& expr, const fs::path& log) {
  ChildProcess query({"curl", "-s", "--max-time", "5", "-G", "--data-urlencode", "query=" + expr,
                      "http://127.0.0.1:" + std::to_string(port) + "/api/v1/query"},
                     log);
  if (query.Wait(30s) != 0) return std::nullopt;
  const auto reply = nlohmann::json::parse(query.Log(), nullptr, false);
  if (!reply.is_object() || reply.value("status", "") != "success") return std::nullopt;
  const auto& result = reply["data"]["result"];
  if (!result.is_array() || result.empty()) return std::nullopt;
  return std::strtod(result[0]["value"][1].get<std::string>().c_str(), nullptr);
}

// Queries `expr` every 250 ms until its value is at least `floor` (90 s at most); whether it
// got there. Each query logs to <log>-N.
bool WaitForAtLeast(int port, const std::string& expr, double floor, const fs::path& log) {
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  for (int attempt = 1; std::chrono::steady_clock::now() < deadline; ++attempt) {
    const fs::path attempt_log = log.string() + "-" + std::to_string(attempt);
    if (auto value = Query(port, expr, attempt_log); value && *value >= floor) return true;
    std::this_thread::sleep_for(250ms);
  }
  return false;
}

// `promtool check metrics` on the text at `url` (fetched with the header lines given): its exit
// code and what it said.
CallResult PromtoolCheckMetrics(const std::string& url, const fs::path& dir,
                                const std::string& name,
                                const std::vector<std::string>& headers = {}) {
  const fs::path text = dir / (name + ".prom");
  std::ofstream(text) << Get(url, dir / (name + "-get.log"), headers);
  REQUIRE(fs::file_size(text) > 0);
  return RunCli({"sh", "-c", "promtool check metrics < '" + text.string() + "'"},
                dir / (name + "-promtool.log"));
}

TEST_CASE("a real Prometheus scrapes the hub and a spoke and sees a box life in their counters",
          "[e2e][hub][metrics]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-metrics-e2e");
  WriteConfig(dir.path, rig, rig.standin_claude, "off", "", "cluster:\n  listen: 127.0.0.1:0\n");
  const std::string hub_config = (dir.path / "hub.yaml").string();
  // Both metrics endpoints behind bearer tokens of their own.
  const std::string hub_token = "e2e-hub-metrics-" + UniqueId("t");
  const fs::path hub_token_file = WriteToken(dir.path, "hub-metrics.token", hub_token);
  {
    std::ifstream in(hub_config);
    std::string yaml((std::istreambuf_iterator<char>(in)), {});
    const std::string state_line = "  state_dir: state\n";
    REQUIRE(yaml.find(state_line) != std::string::npos);
    yaml.insert(yaml.find(state_line) + state_line.size(),
                "  metrics:\n    bearer_token_file: " + hub_token_file.string() + "\n");
    std::ofstream(hub_config) << yaml;
  }
  HubProcess hub(hub_config, dir.path / "hub.log");
  const std::string cluster_port = hub.process.WaitForLog("enrollment service on port ([0-9]+)");

  // A spoke of its own on engine 1 (beside the hub's local one), with its metrics on loopback
  // behind a bearer token (a file at 0600, as docs/monitoring.md says).
  const int spoke_metrics_port = UnusedLoopbackPort();
  const std::string spoke_name = UniqueId("metrics");
  const std::string token = "e2e-spoke-metrics-" + UniqueId("t");
  const fs::path token_file = WriteToken(dir.path, "spoke-metrics.token", token);
  JoinedSpoke spoke =
      JoinSpoke(dir.path, hub_config, cluster_port, rig.docker_sock, rig, spoke_name,
                "metrics:\n  listen: 127.0.0.1:" + std::to_string(spoke_metrics_port) +
                    "\n  bearer_token_file: " + token_file.string() + "\n");
  spoke.Serve();
  REQUIRE(WaitForSpokeState(hub.url, "", spoke_name, "ready", dir.path / "spokes"));
  const std::string spoke_metrics =
      "http://127.0.0.1:" + std::to_string(spoke_metrics_port) + "/metrics";
  const std::string bearer = "Authorization: Bearer " + token;
  const std::string hub_bearer = "Authorization: Bearer " + hub_token;
  // Without the token, or with another (the other side's), neither shows anything.
  CHECK(Get(spoke_metrics, dir.path / "spoke-no-token.log").find("llmbox_spoke_") ==
        std::string::npos);
  CHECK(
      Get(spoke_metrics, dir.path / "spoke-wrong-token.log", {hub_bearer}).find("llmbox_spoke_") ==
      std::string::npos);
  CHECK(Get(hub.url + "/metrics", dir.path / "hub-no-token.log").find("llmbox_hub_") ==
        std::string::npos);
  CHECK(Get(hub.url + "/metrics", dir.path / "hub-wrong-token.log", {bearer}).find("llmbox_hub_") ==
        std::string::npos);

  // Prometheus on loopback, scraping both every second, with our alert rules loaded.
  const int prometheus_port = UnusedLoopbackPort();
  const std::string hub_target = hub.url.substr(std::string("http://").size());
  std::ofstream(dir.path / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << kAlertRules << "\n"
      << "scrape_configs:\n"
      << "  - job_name: llmbox-hub\n    static_configs:\n      - targets: ['" << hub_target
      << "']\n"
      << "    authorization:\n      credentials_file: " << hub_token_file.string() << "\n"
      << "  - job_name: llmbox-spoke\n    static_configs:\n      - targets: ['127.0.0.1:"
      << spoke_metrics_port << "']\n"
      << "    authorization:\n      credentials_file: " << token_file.string() << "\n";
  ChildProcess prometheus({"prometheus", "--config.file=" + (dir.path / "prometheus.yml").string(),
                           "--storage.tsdb.path=" + (dir.path / "tsdb").string(),
                           "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
                          dir.path / "prometheus.log");
  prometheus.WaitForLog("Server is ready to receive web requests");
  REQUIRE(WaitForAtLeast(prometheus_port, "up{job=\"llmbox-hub\"}", 1, dir.path / "q-up-hub.log"));
  REQUIRE(
      WaitForAtLeast(prometheus_port, "up{job=\"llmbox-spoke\"}", 1, dir.path / "q-up-spoke.log"));
  // Before the box: the counters as Prometheus saw them (absent counts as zero).
  const double creates_before =
      Query(prometheus_port, "sum(llmbox_hub_box_creates_total{outcome=\"ok\"})",
            dir.path / "q-before.log")
          .value_or(0);

  // A box life on the joined spoke.
  const std::string box_id = UniqueId("metrics-box");
  const std::string auth_url = CreateBoxForUrl(
      hub.url, "", {{"box_id", box_id}, {"spoke", spoke_name}}, dir.path / "create.log");
  CHECK(ActivateBox(hub.url, auth_url, dir.path / "activate.log"));
  const auto got = McpCall(hub.url, "", "get_llmbox", {{"box_id", box_id}}, dir.path / "get.log");
  INFO(got.log);
  CHECK(got.exit_code == 0);
  const auto destroyed =
      McpCall(hub.url, "", "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log");
  INFO(destroyed.log);
  CHECK(destroyed.exit_code == 0);

  // What Prometheus scraped moved.
  CHECK(WaitForAtLeast(prometheus_port, "sum(llmbox_hub_box_creates_total{outcome=\"ok\"})",
                       creates_before + 1, dir.path / "q-creates.log"));
  CHECK(WaitForAtLeast(prometheus_port,
                       "sum(llmbox_hub_box_create_duration_seconds_count{result=\"ok\"})", 1,
                       dir.path / "q-create-seconds.log"));
  CHECK(WaitForAtLeast(prometheus_port,
                       "sum(llmbox_hub_activation_attempts_total{outcome=\"activated\"})", 1,
                       dir.path / "q-activations.log"));
  CHECK(
      WaitForAtLeast(prometheus_port,
                     "sum(llmbox_hub_mcp_tool_calls_total{tool=\"destroy_llmbox\",outcome=\"ok\"})",
                     1, dir.path / "q-tools.log"));
  CHECK(WaitForAtLeast(prometheus_port, "llmbox_hub_spokes{state=\"ready\"}", 2,
                       dir.path / "q-spokes.log"));
  CHECK(WaitForAtLeast(prometheus_port,
                       "sum(llmbox_spoke_engine_calls_total{job=\"llmbox-spoke\","
                       "operation=\"create_container\",outcome=\"ok\"})",
                       1, dir.path / "q-engine.log"));
  CHECK(WaitForAtLeast(prometheus_port,
                       "sum(llmbox_spoke_engine_calls_total{job=\"llmbox-spoke\","
                       "operation=\"remove_container\",outcome=\"ok\"})",
                       1, dir.path / "q-engine-remove.log"));
  // The alert rules loaded and evaluate.
  const std::string rules =
      Get("http://127.0.0.1:" + std::to_string(prometheus_port) + "/api/v1/rules",
          dir.path / "rules.log");
  CHECK(rules.find("\"LlmboxSpokeUnreachable\"") != std::string::npos);
  CHECK(rules.find("\"health\":\"err\"") == std::string::npos);

  // promtool accepts both outputs, and neither names the box.
  const auto hub_check =
      PromtoolCheckMetrics(hub.url + "/metrics", dir.path, "hub-metrics", {hub_bearer});
  INFO(hub_check.log);
  CHECK(hub_check.exit_code == 0);
  const auto spoke_check = PromtoolCheckMetrics(spoke_metrics, dir.path, "spoke-metrics", {bearer});
  INFO(spoke_check.log);
  CHECK(spoke_check.exit_code == 0);
  for (const char* name : {"hub-metrics.prom", "spoke-metrics.prom"}) {
    INFO(name);
    std::ifstream file(dir.path / name);
    const std::string text((std::istreambuf_iterator<char>(file)), {});
    CHECK(text.find(box_id) == std::string::npos);
  }
  // Neither logged its token.
  CHECK(spoke.process->Log().find(token) == std::string::npos);
  CHECK(hub.process.Log().find(hub_token) == std::string::npos);

  CHECK(prometheus.Stop() == 0);
  CHECK(spoke.Stop() == 0);
  CHECK(hub.process.Stop() == 0);
}

TEST_CASE("promtool accepts the alert rules shipped in deploy/prometheus", "[promtool]") {
  HubDir dir("llmbox-alert-rules");
  const auto checked = RunCli({"promtool", "check", "rules", kAlertRules}, dir.path / "rules.log");
  INFO(checked.log);
  CHECK(checked.exit_code == 0);
  CHECK(checked.log.find("SUCCESS") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
