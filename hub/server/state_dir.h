// hub/server/state_dir.h
//
// The hub's state directory (hub.state_dir): the SQLite store, the MCP session key and the
// cluster's keys live there. The serving hub and the admin commands open it the same way.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto store, OpenStore(config));
//   LLMBOX_ASSIGN_OR_RETURN(std::string key, LoadOrCreateSessionKey(config.state_dir));
//
// Thread-safe; no state of its own.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hub/config/hub_config.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::server {

// <state_dir>/hub.db, the state directory made first.
[[nodiscard]] absl::StatusOr<std::unique_ptr<store::SqliteStore>> OpenStore(
    const config::HubConfig& config);

// <state_dir>/cluster: the cluster CA and the hub's certificate.
std::string ClusterDir(const config::HubConfig& config);

// The key that signs MCP session ids and the activation form tokens: <state_dir>/session.key,
// made once (32 random bytes, mode 0600, written atomically), so sessions outlive a restart.
// A file shorter than 32 bytes is replaced. FailedPrecondition when it cannot be written.
[[nodiscard]] absl::StatusOr<std::string> LoadOrCreateSessionKey(const std::string& state_dir);

}  // namespace llmbox::hub::server
