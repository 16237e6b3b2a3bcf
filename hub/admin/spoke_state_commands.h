// hub/admin/spoke_state_commands.h
//
// `llmbox-hub spoke cordon|uncordon|drain NAME` and `spoke list`: the spoke states an operator
// sets, written to the store, where a serving hub's monitor reads them every round (so they
// work while the hub serves, and hold across its restarts). admin_commands.h dispatches here;
// the output formats are part of the interface (docs/cluster.md).
//
// Thread-safety: one command per call; the store may be shared with a serving hub.
#pragma once

#include <chrono>
#include <cstddef>

#include "common/clock.h"
#include "hub/admin/admin_commands.h"
#include "hub/config/hub_config.h"
#include "hub/store/store.h"

namespace llmbox::hub::admin {

// The operator's --reason: at most this many bytes, no control characters.
inline constexpr std::size_t kMaxReasonBytes = 256;
// How often `drain --wait` looks at the store.
inline constexpr std::chrono::seconds kDrainPollInterval{1};
// `drain --wait` without --timeout.
inline constexpr std::chrono::minutes kDefaultDrainTimeout{10};

// `spoke cordon NAME [--reason TEXT]`, `spoke uncordon NAME`,
// `spoke drain NAME [--reason TEXT] [--destroy-pending] [--wait [--timeout 10m]]`. NAME must be
// a known spoke (joined, "local" when the config has a local spoke, or holding live registry
// boxes); otherwise the error lists the known ones. Returns the exit code (see
// admin_commands.h): `drain --wait` is 1 when the spoke still holds boxes at the timeout.
int SpokeStateCommand(const CommandArgs& args, const config::HubConfig& config, store::Store& store,
                      common::Clock& clock);

// `spoke list`: every known spoke with its effective state (spoke_state.h), its live boxes in
// the registry, and how a drain is going.
int SpokeListCommand(const config::HubConfig& config, store::Store& store);

}  // namespace llmbox::hub::admin
