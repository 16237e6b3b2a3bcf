#include "hub/metrics/hub_metrics.h"

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "hub/boxes/spoke_listing.h"
#include "hub/boxes/spoke_monitor.h"
#include "hub/boxes/spoke_state.h"
#include "hub/store/store.h"

namespace llmbox::hub::metrics {
namespace {

// Seconds: a create pulls an image and starts a container (seconds to minutes); an
// activation waits for the box to check a code with Anthropic (seconds).
const std::vector<double> kCreateBuckets = {0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300};
const std::vector<double> kActivationBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90};

// The JSON-RPC methods the endpoint serves (anything else is "other").
const std::vector<std::string> kMcpMethods = {"initialize", "ping", "tools/list", "tools/call",
                                              "logging/setLevel"};
const std::vector<std::string> kMcpOutcomes = {"ok", "error", "tool_error"};

double Seconds(std::chrono::nanoseconds took) {
  return std::chrono::duration<double>(took).count();
}

std::vector<std::string> Names(const auto& values, auto name_of) {
  std::vector<std::string> names;
  for (auto value : values) names.emplace_back(name_of(value));
  return names;
}

constexpr ActivationRefusal kRefusals[] = {ActivationRefusal::kForm, ActivationRefusal::kNotACode,
                                           ActivationRefusal::kRateLimited,
                                           ActivationRefusal::kNotOwner};
constexpr ActivationOutcome kOutcomes[] = {ActivationOutcome::kActivated,
                                           ActivationOutcome::kRefused, ActivationOutcome::kBusy,
                                           ActivationOutcome::kError};
constexpr boxes::SpokeState kSpokeStates[] = {
    boxes::SpokeState::kReady,    boxes::SpokeState::kCordoned,    boxes::SpokeState::kDraining,
    boxes::SpokeState::kDegraded, boxes::SpokeState::kUnreachable, boxes::SpokeState::kRemoved};

}  // namespace

std::string_view HubMetrics::ActivationRefusalName(ActivationRefusal reason) {
  switch (reason) {
    case ActivationRefusal::kForm:
      return "form";
    case ActivationRefusal::kNotACode:
      return "not_a_code";
    case ActivationRefusal::kRateLimited:
      return "rate_limited";
    case ActivationRefusal::kNotOwner:
      return "not_owner";
  }
  return "other";
}

std::string_view HubMetrics::ActivationOutcomeName(ActivationOutcome outcome) {
  switch (outcome) {
    case ActivationOutcome::kActivated:
      return "activated";
    case ActivationOutcome::kRefused:
      return "refused";
    case ActivationOutcome::kBusy:
      return "busy";
    case ActivationOutcome::kError:
      return "error";
  }
  return "other";
}

HubMetrics::HubMetrics()
    : creates_(registry_.AddCounter(
          "llmbox_hub_box_creates_total",
          "Box creates by outcome: ok, or the error's status code (invalid_argument and "
          "already_exists: the caller's request; resource_exhausted: a quota or full spokes; "
          "unavailable and deadline_exceeded: a spoke).",
          {{"outcome", common::StatusOutcomes()}})),
      create_seconds_(registry_.AddHistogram(
          "llmbox_hub_box_create_duration_seconds",
          "How long box creates took, from the request to the box's answer (image pull "
          "included), by result.",
          kCreateBuckets, {{"result", {"ok", "failed"}}})),
      activations_(registry_.AddCounter(
          "llmbox_hub_activation_attempts_total",
          "Activation codes that reached a box's registry entry, by outcome: activated, refused "
          "(by the box), busy (another code in flight or the wrong phase), error (spoke or "
          "store).",
          {{"outcome", Names(kOutcomes, ActivationOutcomeName)}})),
      activation_seconds_(registry_.AddHistogram(
          "llmbox_hub_activation_duration_seconds",
          "How long a box took to accept or refuse an activation code.", kActivationBuckets,
          {{"outcome", Names(kOutcomes, ActivationOutcomeName)}})),
      refusals_(registry_.AddCounter(
          "llmbox_hub_activation_refusals_total",
          "Code submissions the activation page refused before they reached a box, by reason: "
          "form (a missing, used or expired form), not_a_code, rate_limited, not_owner.",
          {{"reason", Names(kRefusals, ActivationRefusalName)}})),
      mcp_requests_(registry_.AddCounter(
          "llmbox_hub_mcp_requests_total",
          "MCP (JSON-RPC) requests by method and outcome: ok, error (a JSON-RPC error), "
          "tool_error (a tool result with isError).",
          {{"method", kMcpMethods}, {"outcome", kMcpOutcomes}})),
      box_views_(registry_.AddCounter(
          "llmbox_hub_box_views_total",
          "get_llmbox answers of boxes on reachable spokes: kept (from what the spoke last said: "
          "while its change feed reports no change of the box, or for 60 s from a spoke without "
          "a feed) or asked (a call to the spoke).",
          {{"answer", {"kept", "asked"}}})) {}

void HubMetrics::RecordCreate(const absl::Status& status, std::chrono::nanoseconds took) {
  creates_.With({common::StatusOutcome(status)}).Increment();
  create_seconds_.With({status.ok() ? "ok" : "failed"}).Observe(Seconds(took));
}

void HubMetrics::RecordBoxView(bool kept) {
  box_views_.With({kept ? "kept" : "asked"}).Increment();
}

void HubMetrics::RecordActivation(ActivationOutcome outcome, std::chrono::nanoseconds took) {
  activations_.With({ActivationOutcomeName(outcome)}).Increment();
  // A busy answer never reached the box: its time says nothing about boxes.
  if (outcome != ActivationOutcome::kBusy) {
    activation_seconds_.With({ActivationOutcomeName(outcome)}).Observe(Seconds(took));
  }
}

void HubMetrics::RecordActivationRefusal(ActivationRefusal reason) {
  refusals_.With({ActivationRefusalName(reason)}).Increment();
}

void HubMetrics::RecordMcpRequest(std::string_view method, std::string_view tool,
                                  std::string_view outcome) {
  mcp_requests_.With({method, outcome}).Increment();
  common::CounterFamily* tool_calls = tool_calls_.load(std::memory_order_acquire);
  if (method == "tools/call" && tool_calls != nullptr) {
    tool_calls->With({tool, outcome}).Increment();
  }
}

void HubMetrics::WatchBoxes(store::Store& store) {
  registry_.AddGaugeCallback(
      "llmbox_hub_boxes", "Live boxes in the registry by spoke and phase (gone boxes excluded).",
      {"spoke", "phase"}, [&store] {
        std::vector<common::GaugeSample> samples;
        auto counts = store.CountBoxesBySpokeAndPhase();
        if (!counts.ok()) {
          spdlog::warn("metrics: cannot count the boxes: {}",
                       common::AsStd(counts.status().message()));
          return samples;
        }
        for (const store::SpokePhaseCount& count : *counts) {
          samples.push_back({{count.spoke, std::string(store::PhaseName(count.phase))},
                             static_cast<double>(count.boxes)});
        }
        return samples;
      });
}

void HubMetrics::WatchSpokes(const boxes::SpokeMonitor& monitor) {
  registry_.AddGaugeCallback(
      "llmbox_hub_spokes",
      "Spokes by state as the spoke monitor saw them in its last round: ready, cordoned, "
      "draining, degraded, unreachable, removed (removed ones while they hold boxes), and "
      "not_ready (in rotation but says it cannot create: no engine, image or claude_bin).",
      {"state"}, [&monitor] {
        std::map<boxes::SpokeState, int> by_state;
        int not_ready = 0;  // ready, but says it cannot create (list_spokes' not_ready)
        for (const boxes::SpokeView& spoke : monitor.View()) {
          if (!boxes::CannotCreateReason(spoke).empty()) {
            ++not_ready;
          } else {
            ++by_state[spoke.state];
          }
        }
        std::vector<common::GaugeSample> samples;
        for (boxes::SpokeState state : kSpokeStates) {
          samples.push_back(
              {{std::string(boxes::SpokeStateName(state))}, static_cast<double>(by_state[state])});
        }
        samples.push_back({{"not_ready"}, static_cast<double>(not_ready)});
        return samples;
      });
}

void HubMetrics::WatchTools(std::vector<std::string> tool_names) {
  tool_calls_.store(
      &registry_.AddCounter(
          "llmbox_hub_mcp_tool_calls_total",
          "MCP tools/call requests by tool and outcome (ok, error, tool_error); unknown tool names "
          "count as other.",
          {{"tool", std::move(tool_names)}, {"outcome", kMcpOutcomes}}),
      std::memory_order_release);
}

}  // namespace llmbox::hub::metrics
