#include "spoke/metrics/spoke_metrics.h"

#include <utility>

#include "spoke/metrics/metered_engine.h"

namespace llmbox::spoke::metrics {
namespace {

// Seconds: most engine calls take milliseconds; a pull, a stop with its grace or a wait take
// longer.
const std::vector<double> kEngineBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                            1,     2.5,  5,     10,   30,  60,   300};
const std::vector<std::string> kPhases = {"creating", "pending", "activating", "ready", "stopped"};

}  // namespace

SpokeMetrics::SpokeMetrics(std::vector<std::string> hook_names)
    : engine_calls_(registry_.AddCounter(
          "llmbox_spoke_engine_calls_total",
          "Docker engine API calls by operation and outcome (ok, or the error's status code: "
          "unavailable when the engine does not answer, not_found, ...).",
          {{"operation", MeteredEngine::Operations()}, {"outcome", common::StatusOutcomes()}})),
      engine_seconds_(registry_.AddHistogram("llmbox_spoke_engine_call_duration_seconds",
                                             "How long Docker engine API calls took, by operation.",
                                             kEngineBuckets,
                                             {{"operation", MeteredEngine::Operations()}})),
      hook_runs_(registry_.AddCounter(
          "llmbox_spoke_hook_runs_total",
          "Lifecycle hook runs by hook, event (box.create, box.destroy) and outcome (ok, or the "
          "error's status code: deadline_exceeded for a timeout, ...).",
          {{"hook", hook_names.empty() ? std::vector<std::string>{"none"} : std::move(hook_names)},
           {"event", {"box.create", "box.destroy"}},
           {"outcome", common::StatusOutcomes()}})),
      reaper_actions_(registry_.AddCounter(
          "llmbox_spoke_reaper_actions_total",
          "What the reaper did: expired_box (a pending box past auth_ttl destroyed), "
          "orphan_network (a network without its box removed), error (an action that failed).",
          {{"action", {"expired_box", "orphan_network", "error"}}})) {}

void SpokeMetrics::RecordEngineCall(std::string_view operation, const absl::Status& status,
                                    std::chrono::nanoseconds took) {
  engine_calls_.With({operation, common::StatusOutcome(status)}).Increment();
  engine_seconds_.With({operation}).Observe(std::chrono::duration<double>(took).count());
}

void SpokeMetrics::RecordHookRun(std::string_view hook, std::string_view event,
                                 const absl::Status& status) {
  hook_runs_.With({hook, event, common::StatusOutcome(status)}).Increment();
}

void SpokeMetrics::RecordReaperActions(std::size_t expired_boxes, std::size_t orphan_networks,
                                       std::size_t errors) {
  reaper_actions_.With({"expired_box"}).Increment(static_cast<double>(expired_boxes));
  reaper_actions_.With({"orphan_network"}).Increment(static_cast<double>(orphan_networks));
  reaper_actions_.With({"error"}).Increment(static_cast<double>(errors));
}

void SpokeMetrics::WatchBoxes(std::function<std::map<std::string, int>()> count) {
  registry_.AddGaugeCallback(
      "llmbox_spoke_boxes",
      "This spoke's boxes by phase (creating, pending, activating, ready, stopped), as the "
      "spoke knows them (its latest listing of the engine and what it did since).",
      {"phase"}, [count = std::move(count)] {
        std::vector<common::GaugeSample> samples;
        const std::map<std::string, int> counts = count();
        for (const std::string& phase : kPhases) {
          auto it = counts.find(phase);
          samples.push_back({{phase}, it == counts.end() ? 0.0 : it->second});
        }
        return samples;
      });
}

}  // namespace llmbox::spoke::metrics
