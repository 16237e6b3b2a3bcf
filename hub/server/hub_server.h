// hub/server/hub_server.h
//
// The hub as one object: it builds everything `llmbox-hub serve` runs, in order, and takes it
// down in the reverse order. The state directory's store and session key; the local spoke
// (through the LocalSpoke seam); the cluster (its CA, the joined spokes dialed with mutual
// TLS, and the enrollment service); the box registry and its reconcile loop; the MCP tools;
// sign-in gating; the activation page; the MCP endpoint with its Host/Origin policy and API
// keys; and the HTTP server that routes to them. main.cc, the tests and the benches build the
// same object.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto hub, HubServer::Start(config, {.start_local_spoke = factory},
//                                                      common::SystemClock::Get()));
//   // hub->public_url() serves MCP at "/" and the activation page at /auth/...
//   common::WaitForStopSignal();
//   hub->Stop();
//
// Thread-safety: Start and Stop from one thread; the accessors from any thread while the
// server lives. Errors from Start: whatever a part refuses with (the state directory, the
// store, the local spoke's engine, the cluster's keys or port, the sign-in provider, the HTTP
// port), with its own message; everything started before is stopped again.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/config/hub_config.h"
#include "hub/server/local_spoke.h"

namespace llmbox::hub::store {
class Store;
}
namespace llmbox::hub::boxes {
class BoxRegistry;
}

namespace llmbox::hub::server {

// What HubServer cannot build itself.
struct HubServerDeps {
  // Starts the spoke named "local"; called once when config.local_spoke is on (then it is
  // required).
  LocalSpokeFactory start_local_spoke;
};

class HubServer {
 public:
  // Starts serving `config`. `clock` must outlive the server. Logs what it starts, as
  // `llmbox-hub serve` always has.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HubServer>> Start(
      const config::HubConfig& config, HubServerDeps deps, common::Clock& clock);
  ~HubServer();  // Stop(), then the rest in reverse order of construction
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  // The HTTP port actually bound (config's, or the one port 0 picked).
  int port() const;
  // The origin served (no trailing slash): hub.public_url, or the default naming the bound
  // port.
  const std::string& public_url() const;
  // The hub's store and registry, for tests and benches that seed or inspect them.
  store::Store& store();
  boxes::BoxRegistry& registry();

  // Stops the HTTP server (10 s for requests in flight) and the enrollment service (5 s),
  // then logs "hub: stopped". Idempotent.
  void Stop();

 private:
  struct State;
  explicit HubServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace llmbox::hub::server
