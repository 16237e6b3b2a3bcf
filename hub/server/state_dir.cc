#include "hub/server/state_dir.h"

#include <filesystem>
#include <system_error>

#include <sys/stat.h>

#include "common/files.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::server {

[[nodiscard]] absl::Status EnsureStateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create the state directory " + dir + ": " +
                                         ec.message());
  }
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<store::SqliteStore>> OpenStore(
    const config::HubConfig& config) {
  LLMBOX_RETURN_IF_ERROR(EnsureStateDir(config.state_dir));
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
