// hub/store/sqlite_spokes.cc
//
// Spoke states an operator set and queued destroys of SqliteStore (schema 9; the migration
// 8 -> 9 in sqlite_store.cc).
// PLACEHOLDER (coordinator): implemented by the store helper.
#include <map>
#include <string>
#include <vector>

#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {

absl::Status SqliteStore::SetSpokeAdmin(const SpokeAdminRecord&) {
  return absl::UnimplementedError("SetSpokeAdmin");
}
absl::StatusOr<std::vector<SpokeAdminRecord>> SqliteStore::ListSpokeAdmin() {
  return std::vector<SpokeAdminRecord>{};
}
absl::Status SqliteStore::SetSpokeCondition(const SpokeConditionRecord&) {
  return absl::OkStatus();
}
absl::StatusOr<std::vector<SpokeConditionRecord>> SqliteStore::ListSpokeConditions() {
  return std::vector<SpokeConditionRecord>{};
}
absl::Status SqliteStore::QueueDestroy(std::string_view, std::int64_t) {
  return absl::UnimplementedError("QueueDestroy");
}
absl::StatusOr<std::vector<BoxRecord>> SqliteStore::ListQueuedDestroys(std::string_view,
                                                                       std::size_t) {
  return std::vector<BoxRecord>{};
}
absl::StatusOr<std::map<std::string, SpokeBoxCount>> SqliteStore::CountBoxesBySpoke() {
  return std::map<std::string, SpokeBoxCount>{};
}

}  // namespace llmbox::hub::store
