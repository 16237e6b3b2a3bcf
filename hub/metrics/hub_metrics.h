// hub/metrics/hub_metrics.h
//
// The hub's metrics (llmbox_hub_*), served at /metrics (docs/monitoring.md). The parts that
// do the work report to it through callbacks (the registry's creates and code submissions,
// the activation page's refusals, the MCP endpoint's requests); the box and spoke gauges are
// computed when scraped, from one grouped store query and the spoke monitor's last round.
//
//   HubMetrics metrics;
//   metrics.RecordCreate(status, took);                 // from the registry
//   metrics.WatchBoxes(store); metrics.WatchSpokes(monitor);
//   metrics.WatchTools({"create_llmbox", ...});         // the closed set of tool names
//   std::string text = metrics.Render();
//
// Every label takes its values from a closed set (a status code's name, a phase, a spoke
// state, the JSON-RPC methods we serve, the tools we have): anything else counts as "other".
// Spoke names are the one open label, bounded by the spokes an operator joined. No box id,
// principal, code, token or URL is ever a label.
//
// Thread-safety: Watch* before the first Render (while the hub starts); Record* and Render
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "common/metrics.h"

namespace llmbox::hub::store {
class Store;
}
namespace llmbox::hub::boxes {
class SpokeMonitor;
}

namespace llmbox::hub::metrics {

// Why the activation page refused a code before it reached a box.
enum class ActivationRefusal {
  kForm,         // the form token was missing, used or expired (csrf)
  kNotACode,     // what was pasted cannot be a code
  kRateLimited,  // too many submissions from the address or for the link
  kNotOwner,     // sign-in gating: someone else's box
};

// What a code that reached the registry came to.
enum class ActivationOutcome {
  kActivated,  // the box accepted it
  kRefused,    // the box refused it (a wrong or stale code)
  kBusy,       // another code for the box was being checked, or the box cannot take one now
  kError,      // the box's spoke could not be reached, or the store failed
};

class HubMetrics {
 public:
  HubMetrics();
  HubMetrics(const HubMetrics&) = delete;
  HubMetrics& operator=(const HubMetrics&) = delete;

  // One create_llmbox (or any BoxRegistry::Create): "ok" or its status code's name.
  void RecordCreate(const absl::Status& status, std::chrono::nanoseconds took);
  // One code submission that reached the registry, and how long the box took to answer.
  void RecordActivation(ActivationOutcome outcome, std::chrono::nanoseconds took);
  void RecordActivationRefusal(ActivationRefusal reason);
  // One MCP request: the JSON-RPC method as sent, the tool for tools/call (else empty), and
  // "ok", "error" (a JSON-RPC error) or "tool_error" (a result with isError).
  void RecordMcpRequest(std::string_view method, std::string_view tool, std::string_view outcome);
  // One get_llmbox of a box on a reachable spoke: answered from what the spoke last said
  // (`kept`, live_views.h) or asked of the spoke.
  void RecordBoxView(bool kept);

  // Scrape-time sources. `store` and `monitor` must outlive the metrics.
  void WatchBoxes(store::Store& store);
  void WatchSpokes(const boxes::SpokeMonitor& monitor);
  // The tools the MCP endpoint serves: the values of llmbox_hub_mcp_tool_calls_total's tool.
  void WatchTools(std::vector<std::string> tool_names);

  // Everything in the Prometheus text format.
  std::string Render() const { return registry_.Render(); }

  // The closed sets, for tests and docs.
  static std::string_view ActivationRefusalName(ActivationRefusal reason);
  static std::string_view ActivationOutcomeName(ActivationOutcome outcome);

 private:
  common::MetricsRegistry registry_;
  common::CounterFamily& creates_;
  common::HistogramFamily& create_seconds_;
  common::CounterFamily& activations_;
  common::HistogramFamily& activation_seconds_;
  common::CounterFamily& refusals_;
  common::CounterFamily& mcp_requests_;
  common::CounterFamily& box_views_;
  std::atomic<common::CounterFamily*> tool_calls_{nullptr};  // set by WatchTools
};

}  // namespace llmbox::hub::metrics
