// spoke/metrics/spoke_metrics.h
//
// The spoke's metrics (llmbox_spoke_*): Docker engine calls and their latency, hook runs,
// reaper actions, and boxes by phase (as the spoke knows them when scraped). Served by
// `llmbox-spoke serve` on metrics.listen (common/metrics_server.h), and by the hub's /metrics for
// its local spoke.
//
//   SpokeMetrics metrics({"vault-secrets"});           // the configured hooks' names
//   MeteredEngine engine(real_engine, metrics, clock);  // every engine call counted
//   metrics.RecordHookRun("vault-secrets", "box.create", absl::OkStatus());
//   std::string text = metrics.Render();
//
// Labels come from closed sets (engine operations, status code names, hook events, reaper
// actions, box phases) and the operator's hook names; never a box or container id.
//
// Thread-safety: WatchBoxes before the first Render; Record* and Render from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "common/metrics.h"

namespace llmbox::spoke::metrics {

class SpokeMetrics {
 public:
  // `hook_names`: the configured hooks (the values of the hook label).
  explicit SpokeMetrics(std::vector<std::string> hook_names);
  SpokeMetrics(const SpokeMetrics&) = delete;
  SpokeMetrics& operator=(const SpokeMetrics&) = delete;

  // One Docker engine call: its operation (MeteredEngine's names: "create_container", ...),
  // "ok" or its status code's name, and how long it took.
  void RecordEngineCall(std::string_view operation, const absl::Status& status,
                        std::chrono::nanoseconds took);
  // One hook run: the hook's name, its event ("box.create", "box.destroy") and outcome.
  void RecordHookRun(std::string_view hook, std::string_view event, const absl::Status& status);
  // One reaper pass's actions.
  void RecordReaperActions(std::size_t expired_boxes, std::size_t orphan_networks,
                           std::size_t errors);
  // Boxes by phase, from `count` at each scrape (phase name → boxes; absent phases are 0). It
  // runs on the scraper's thread: answer from memory (BoxManager::CountByPhase), never from
  // the engine.
  void WatchBoxes(std::function<std::map<std::string, int>()> count);

  std::string Render() const { return registry_.Render(); }

 private:
  common::MetricsRegistry registry_;
  common::CounterFamily& engine_calls_;
  common::HistogramFamily& engine_seconds_;
  common::CounterFamily& hook_runs_;
  common::CounterFamily& reaper_actions_;
};

}  // namespace llmbox::spoke::metrics
