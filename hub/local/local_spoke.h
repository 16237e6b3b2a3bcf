// hub/local/local_spoke.h
//
// The hub's in-process spoke, the box host named "local": the spoke's own service code
// served on an in-process gRPC channel (no listening port), so one binary serves a single
// host. This is the one place the hub brings spoke code in: the library llmbox_hub_local,
// linked only by the llmbox-hub executable and by the tests and benches that need a real
// local spoke. HubServer sees it only as a server::LocalSpoke.
//
//   LLMBOX_ASSIGN_OR_RETURN(spoke::config::SpokeConfig local, ReadLocalSpokeConfig(config));
//   HubServerDeps deps{.start_local_spoke = LocalSpokeFactory(local)};
//
// Thread-safe as the spoke's parts are.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "hub/config/hub_config.h"
#include "hub/server/local_spoke.h"
#include "spoke/box/manager.h"
#include "spoke/config/spoke_config.h"
#include "spoke/node/spoke_node.h"

namespace llmbox::hub::local {

// The local_spoke section's box-host keys (docker, boxes, reaper, hooks: the spoke's own
// keys, read by the spoke's own reader) from the file `config` was parsed from, for a spoke
// named "local" keeping its state in <state_dir>/local-spoke. Errors name the key path and the
// line (`config: local_spoke.boxes.max_boxes (line 12): ...`); an unknown key in local_spoke is
// one. `llmbox-hub` reads it for every command, as the file is checked whole.
[[nodiscard]] absl::StatusOr<spoke::config::SpokeConfig> ReadLocalSpokeConfig(
    const config::HubConfig& config);

// The spoke's own assembly (spoke::node::SpokeNode) in its in-process mode, as the hub sees
// it. Destroying it stops the node (reaper, then the server with 5 s for calls in flight).
class InProcessSpoke final : public server::LocalSpoke {
 public:
  explicit InProcessSpoke(std::unique_ptr<spoke::node::SpokeNode> node)
      : node_(std::move(node)), channel_(node_->InProcessChannel()) {}

  std::shared_ptr<grpc::Channel> Channel() override { return channel_; }
  std::string MetricsText() override { return node_->MetricsText(); }
  // The spoke's box manager (benches measure the spoke's own create against the hub's).
  spoke::box::BoxManager& boxes() { return node_->boxes(); }

 private:
  std::unique_ptr<spoke::node::SpokeNode> node_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Starts the spoke `config` describes, in process: its state directory, its Docker engine
// (Unavailable when it does not answer; the engine is logged), the boxes it had (recovered),
// its reaper and its service on an in-process channel. `clock` must outlive it.
[[nodiscard]] absl::StatusOr<std::unique_ptr<InProcessSpoke>> StartLocalSpoke(
    const spoke::config::SpokeConfig& config, common::Clock& clock);

// StartLocalSpoke(config, clock) as HubServerDeps wants it.
server::LocalSpokeFactory LocalSpokeFactory(spoke::config::SpokeConfig config,
                                            common::Clock& clock);

}  // namespace llmbox::hub::local
