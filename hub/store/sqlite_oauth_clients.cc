// The OAuth clients of SqliteStore (schema 7). Placeholders until the clients work lands.
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {
namespace {
absl::Status NotYet() { return absl::UnimplementedError("store: OAuth clients are not built yet"); }
}  // namespace

absl::Status SqliteStore::InsertOAuthClient(const OAuthClientRecord&) { return NotYet(); }
absl::StatusOr<OAuthClientRecord> SqliteStore::GetOAuthClient(std::string_view) { return NotYet(); }
absl::Status SqliteStore::TouchOAuthClient(std::string_view, std::int64_t) { return NotYet(); }
absl::StatusOr<std::int64_t> SqliteStore::CountOAuthClients() { return NotYet(); }

}  // namespace llmbox::hub::store
