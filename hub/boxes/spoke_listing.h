// hub/boxes/spoke_listing.h
//
// list_spokes' answer, made from the monitor's view (SpokeMonitor::View: its last round), so
// that listing 500 spokes costs no call to any of them: a page of spokes in name order and
// each spoke as JSON.
//
//   SpokeListPage page = PageOfSpokes(registry.monitor().View(), after_name, limit);
//   for (const SpokeView& spoke : page.spokes) out += SpokeListEntryJson(spoke);
//
// Thread-safe; no state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "hub/boxes/spoke_monitor.h"

namespace llmbox::hub::boxes {

struct SpokeListPage {
  std::vector<SpokeView> spokes;  // in name order
  bool more = false;              // spokes follow the last one
};

// The spokes of `views` whose names come after `after` (nullopt: from the first), in name
// order, at most `limit` (at least 1).
SpokeListPage PageOfSpokes(std::vector<SpokeView> views, const std::optional<std::string>& after,
                           std::size_t limit);

// Whether the spoke answers: its health answered at least once, and it is neither unreachable
// nor removed.
bool SpokeConnected(const SpokeView& view);

// Why a spoke in rotation (ready) cannot create boxes, from its last health answer: its
// engine is down, or it lacks its default image or claude_bin (the spoke's own words). Empty
// when it can, or when its state already keeps it out of rotation. list_spokes shows such a
// spoke as "not_ready"; placement passes it over; /metrics counts it as not_ready.
std::string CannotCreateReason(const SpokeView& view);

// One spoke as list_spokes shows it, a JSON object: name, state (spoke_state.h), state_description
// ("cordoned since ... by the operator: <reason>"), since and reason when the state has them,
// connected, error (why not connected), local, boxes (the registry's live boxes on it),
// max_boxes (from its last health answer, when there is one). An unreachable spoke's last error
// (the transport's words, naming internal addresses) is shown only `for_operator` (an admin
// caller); others read "unreachable" and since when. Bytes that are not UTF-8 are replaced.
std::string SpokeListEntryJson(const SpokeView& view, bool for_operator = false);

}  // namespace llmbox::hub::boxes
