// hub/server/local_spoke.h
//
// The hub's seam for its in-process spoke (the box host named "local"): HubServer reaches it
// only through a gRPC channel, so the hub library never links the spoke's code. The real one
// is started by hub/local (linked only by the llmbox-hub executable and by the tests and
// benches that need it); a test may hand in a channel to a double.
//
//   HubServerDeps deps{.start_local_spoke = local::LocalSpokeFactory(spoke_config, clock)};
//
// Thread-safe: Channel may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include <grpcpp/channel.h>

namespace llmbox::hub::server {

class LocalSpoke {
 public:
  // Stops the spoke: its reaper, then its in-process server (in-flight calls get a few
  // seconds). Channels handed out stay valid objects but fail their calls afterwards.
  virtual ~LocalSpoke() = default;

  // An in-process channel to the spoke's box service.
  virtual std::shared_ptr<grpc::Channel> Channel() = 0;

  // The spoke's own metrics (llmbox_spoke_*) in the Prometheus text format, which the hub's
  // /metrics serves after its own; "" when it has none.
  virtual std::string MetricsText() { return ""; }
};

// Starts the local spoke (Unavailable when its Docker engine does not answer, or the spoke's
// own errors). Called at most once, while the hub starts.
using LocalSpokeFactory = std::function<absl::StatusOr<std::unique_ptr<LocalSpoke>>()>;

}  // namespace llmbox::hub::server
