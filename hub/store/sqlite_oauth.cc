// The OAuth grants, codes and tokens of SqliteStore (schema 7). Placeholders until the tokens
// work lands.
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {
namespace {
absl::Status NotYet() { return absl::UnimplementedError("store: OAuth is not built yet"); }
}  // namespace

absl::Status SqliteStore::InsertOAuthGrant(const OAuthGrantRecord&, const OAuthCodeRecord&) {
  return NotYet();
}
absl::StatusOr<std::pair<OAuthCodeRecord, OAuthGrantRecord>> SqliteStore::RedeemOAuthCode(
    std::string_view, std::int64_t, const std::vector<OAuthTokenRecord>&) {
  return NotYet();
}
absl::StatusOr<OAuthTokenWithGrant> SqliteStore::RotateOAuthRefreshToken(
    std::string_view, std::string_view, std::int64_t, const std::vector<OAuthTokenRecord>&) {
  return NotYet();
}
absl::StatusOr<OAuthTokenWithGrant> SqliteStore::FindOAuthToken(std::string_view) {
  return NotYet();
}
absl::Status SqliteStore::TouchOAuthGrant(std::string_view, std::int64_t) { return NotYet(); }
absl::StatusOr<std::vector<OAuthGrantRecord>> SqliteStore::ListOAuthGrants(
    const OAuthGrantFilter&) {
  return NotYet();
}
absl::StatusOr<std::int64_t> SqliteStore::RevokeOAuthGrants(const OAuthGrantFilter&, std::int64_t,
                                                            std::string_view) {
  return NotYet();
}
absl::StatusOr<std::int64_t> SqliteStore::PruneOAuth(std::int64_t) { return NotYet(); }

}  // namespace llmbox::hub::store
