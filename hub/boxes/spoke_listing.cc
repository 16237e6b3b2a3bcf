// hub/boxes/spoke_listing.cc
#include "hub/boxes/spoke_listing.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/status.h"

namespace llmbox::hub::boxes {

SpokeListPage PageOfSpokes(std::vector<SpokeView> views, const std::optional<std::string>& after,
                           std::size_t limit) {
  LLMBOX_CHECK(limit > 0, "a page of spokes holds at least one");
  std::sort(views.begin(), views.end(),
            [](const SpokeView& a, const SpokeView& b) { return a.name < b.name; });
  auto first = views.begin();
  if (after.has_value()) {
    first =
        std::upper_bound(views.begin(), views.end(), *after,
                         [](const std::string& name, const SpokeView& v) { return name < v.name; });
  }
  SpokeListPage page;
  const auto left = static_cast<std::size_t>(views.end() - first);
  const std::size_t taken = std::min(left, limit);
  page.spokes.assign(std::make_move_iterator(first), std::make_move_iterator(first + taken));
  page.more = left > taken;
  return page;
}

bool SpokeConnected(const SpokeView& view) {
  return view.health.has_value() && view.state != SpokeState::kUnreachable &&
         view.state != SpokeState::kRemoved;
}

std::string CannotCreateReason(const SpokeView& view) {
  if (view.state != SpokeState::kReady || !view.health.has_value()) return "";
  if (!view.health->engine_reachable) return "its Docker engine is down";
  return view.health->cannot_create;
}

std::string SpokeListEntryJson(const SpokeView& view, bool for_operator) {
  nlohmann::json entry = {
      {"name", view.name},
      {"state", SpokeStateName(view.state)},
      {"state_description", for_operator
                                ? DescribeSpokeState(view.state, view.admin, view.condition)
                                : DescribeSpokeStateBrief(view.state, view.admin, view.condition)}};
  std::int64_t since_ms = 0;
  std::string reason;
  switch (view.state) {
    case SpokeState::kCordoned:
    case SpokeState::kDraining:
      since_ms = view.admin.since_ms;
      reason = view.admin.reason;
      break;
    case SpokeState::kDegraded:
      since_ms = view.condition.since_ms;
      reason = view.condition.reason;
      break;
    case SpokeState::kUnreachable:
      since_ms = view.condition.since_ms;
      if (for_operator) reason = view.condition.reason;
      break;
    case SpokeState::kReady:
    case SpokeState::kRemoved:
      break;
  }
  // A spoke in rotation whose last health answer says it cannot create (its engine is down,
  // it lacks its default image or claude_bin) is not ready: placement passes it over too.
  if (const std::string why = CannotCreateReason(view); !why.empty()) {
    entry["state"] = "not_ready";
    entry["state_description"] =
        "not ready: cannot create boxes" +
        (for_operator ? ": " + why : std::string(" (its operator is told why)"));
    if (for_operator) reason = why;
  }
  if (since_ms > 0) entry["since"] = common::FormatUtcSeconds(since_ms);
  if (!reason.empty()) entry["reason"] = reason;
  const bool connected = SpokeConnected(view);
  entry["connected"] = connected;
  if (!connected) {
    entry["error"] = view.state == SpokeState::kRemoved ? "removed from the hub's spokes"
                     : view.state == SpokeState::kUnreachable
                         ? (view.condition.reason.empty() || !for_operator ? "unreachable"
                                                                           : view.condition.reason)
                         : "not checked yet";
  }
  entry["local"] = view.local;
  entry["boxes"] = view.registry_boxes.boxes;
  if (view.health.has_value()) entry["max_boxes"] = view.health->max_boxes;
  return entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace llmbox::hub::boxes
