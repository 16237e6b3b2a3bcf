// spoke/node/spoke_node.h
//
// One spoke, assembled: the only place that decides which implementation goes where on a
// spoke, and the owner of its construction and shutdown order. It connects to the Docker
// engine (and pings it), runs hooks through a subprocess runner, recovers the BoxManager's
// boxes, starts the reaper, and serves the llmbox.v1.BoxService in one of two ways:
//
// * kMutualTls, `llmbox-spoke serve`: a gRPC server on config.listen with mutual TLS from
//   config.tls (reread every minute, so a renewed certificate serves without a restart); only
//   config.hub_identity may call, and (when the spoke joined a hub that pins) only with a hub
//   key pinned in <state_dir>/hub_pins.json (spoke/enroll/hub_pins.h). The certificate renewer
//   runs when the spoke joined a hub; it reloads the pins at every check.
//
//     LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<SpokeNode> node,
//                             SpokeNode::Start(config, {}, common::SystemClock::Get()));
//     ... node->port() ...
//     node->Stop();   // or the destructor
//
// * kInProcess, the hub's local spoke: the same service on a server with no listening port,
//   reached only through InProcessChannel(). The channel never leaves the process, so no TLS
//   and no peer check (allowed_peer ""); the spoke calls itself "local"; no renewer; the
//   state directory is created (0700) if missing. The hub makes its stub from the channel:
//
//     LLMBOX_ASSIGN_OR_RETURN(
//         std::unique_ptr<SpokeNode> local,
//         SpokeNode::Start(config.local_spoke_config,
//                          {.transport = SpokeTransport::kInProcess}, clock));
//     auto stub = llmbox::v1::BoxService::NewStub(local->InProcessChannel());
//     ...   // destroy the node only after everything that calls through `stub` has stopped
//
// Start logs what it did as `llmbox-spoke serve` always has ("spoke NAME: Docker engine ...",
// "spoke NAME: serving on port ..."; "local spoke: Docker engine ..." in process). Logging
// itself is set up by the process (common::InitLogging), not here.
//
// Thread-safe: port() and InProcessChannel() from any thread; Stop() from one thread at a
// time (it is idempotent).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "spoke/box/manager.h"
#include "spoke/config/spoke_config.h"
#include "spoke/docker/engine.h"
#include "spoke/egress/egress.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace llmbox::spoke::node {

// How the node's BoxService is reached.
enum class SpokeTransport {
  kMutualTls,  // a listening port with mutual TLS (llmbox-spoke serve)
  kInProcess,  // only InProcessChannel() (the hub's local spoke)
};

struct SpokeNodeOptions {
  SpokeTransport transport = SpokeTransport::kMutualTls;
  // Not owned; must outlive the node. When set, the node uses this engine instead of
  // connecting to config.docker (for tests and benches; it is pinged all the same).
  docker::DockerEngine* engine = nullptr;
  // Not owned; must outlive the node. When set, boxes get this egress instead of the host's
  // (the spoke's proxy and nftables rules): tests on the fake engine, whose networks exist
  // nowhere on the host. Required with `engine` (Start refuses an injected engine without it).
  egress::BoxEgress* egress = nullptr;
};

class SpokeNode {
 public:
  // Builds and starts everything, in this order: (kMutualTls) the TLS files are read, to fail
  // early with a clear message; (kInProcess) the state directory is made; the engine is
  // connected and pinged; boxes are recovered; the server starts; then the reaper and
  // (kMutualTls) the renewer. Nothing runs in the background until the server is up, so a
  // failed Start leaves no thread behind.
  //
  // The node keeps its own copy of `config`. `clock` must outlive the node; the reaper and the
  // renewer wait through it.
  //
  // Errors: the TLS files' errors (NotFound naming the file), DataLoss naming
  // <state_dir>/hub_pins.json when it is not what join and renew write, InvalidArgument for an
  // engine endpoint of the wrong shape, Unavailable naming the socket or URL when no engine
  // answers, FailedPrecondition for a state directory that cannot be made, the BoxManager's
  // recovery errors, Unavailable naming config.listen when it cannot be bound, Internal when the
  // in-process server does not start.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SpokeNode>> Start(
      const config::SpokeConfig& config, SpokeNodeOptions options, common::Clock& clock);

  // Stop().
  ~SpokeNode();

  SpokeNode(const SpokeNode&) = delete;
  SpokeNode& operator=(const SpokeNode&) = delete;

  // The port actually bound (config.listen may ask for port 0); 0 in process.
  int port() const;
  // The port metrics.listen bound; 0 when it is off (always in process).
  int metrics_port() const;
  // The spoke's metrics (llmbox_spoke_*) in the Prometheus text format; the hub serves its
  // local spoke's in its own /metrics.
  std::string MetricsText() const;

  // A new channel to the in-process server (receiving messages up to 8 MiB); nullptr when the
  // transport is kMutualTls. Call it before Stop(), and make no call on the channel once the
  // node has stopped: gRPC 1.51 crashes on an in-process channel whose server has shut down
  // (so the hub stops everything that calls its local spoke before the node).
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // The node's BoxManager, for benches and tests that work beneath the service (the MCP
  // bench's BoxManager::Create floor). Valid while the node lives.
  box::BoxManager& boxes();

  // Stops the renewer, then the reaper (each waits for a pass in progress), then shuts the
  // server down, giving calls in flight 10 s (5 s in process) before cancelling them.
  // Idempotent.
  void Stop();

 private:
  struct Parts;
  explicit SpokeNode(std::unique_ptr<Parts> parts);

  std::unique_ptr<Parts> parts_;
};

}  // namespace llmbox::spoke::node
