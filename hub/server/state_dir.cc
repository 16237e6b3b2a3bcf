#include "hub/server/state_dir.h"

#include <system_error>

#include "common/files.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::server {

[[nodiscard]] absl::StatusOr<std::unique_ptr<store::SqliteStore>> OpenStore(
    const config::HubConfig& config) {
  LLMBOX_RETURN_IF_ERROR(common::EnsureStateDir(config.state_dir));
  return store::SqliteStore::Open(config.state_dir + "/hub.db");
}

std::string ClusterDir(const config::HubConfig& config) { return config.state_dir + "/cluster"; }

[[nodiscard]] absl::StatusOr<std::string> LoadOrCreateSessionKey(const std::string& state_dir) {
  const std::string path = state_dir + "/session.key";
  if (auto existing = common::ReadSmallFile(path); existing.ok() && existing->size() >= 32) {
    return *std::move(existing);
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string key, common::RandomToken(32));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(path, key, 0600));
  return key;
}

}  // namespace llmbox::hub::server
