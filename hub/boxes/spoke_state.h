// hub/boxes/spoke_state.h
//
// A spoke's state as the hub shows it (list_spokes, `llmbox-hub spoke list`), made of what an
// operator set and what the hub observed (hub/store/store.h), so that the serving hub and the
// command line (another process, reading the store) say the same thing.
//
//   SpokeState state = EffectiveSpokeState(admin, condition, /*in_directory=*/true);
//   out << SpokeStateName(state);   // "degraded"
//
// Thread-safe; no state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hub/store/store.h"

namespace llmbox::hub::boxes {

enum class SpokeState { kReady, kCordoned, kDraining, kDegraded, kUnreachable, kRemoved };

// "ready", "cordoned", "draining", "degraded", "unreachable", "removed".
std::string_view SpokeStateName(SpokeState state);

// The first that applies: removed (not in the directory), unreachable, degraded, draining,
// cordoned, ready.
SpokeState EffectiveSpokeState(const store::SpokeAdminRecord& admin,
                               const store::SpokeConditionRecord& condition, bool in_directory);

// One line for people: "degraded since 2026-11-30T04:20:00Z: 4 of the last 5 creates failed
// (...)", "cordoned since ... by the operator: <reason>", "ready". Times in UTC, ISO 8601.
std::string DescribeSpokeState(SpokeState state, const store::SpokeAdminRecord& admin,
                               const store::SpokeConditionRecord& condition);

// The same for callers that are not operators (MCP tools: another principal's chatbot may read
// it): an unreachable spoke's last error (a transport error naming internal addresses) is left
// out; the rest is the same.
std::string DescribeSpokeStateBrief(SpokeState state, const store::SpokeAdminRecord& admin,
                                    const store::SpokeConditionRecord& condition);

}  // namespace llmbox::hub::boxes
