#include "hub/auth/api_key_auth.h"

#include "common/secrets.h"

namespace llmbox::hub::auth {
absl::StatusOr<Principal> ApiKeyAuthenticator::Authenticate(
    std::optional<std::string_view> authorization) const {
  if (!authorization) {
    return absl::UnauthenticatedError(
        "an API key is required: send Authorization: Bearer <key> (llmbox-hub apikey create)");
  }
  const std::optional<std::string_view> value = common::BearerCredential(*authorization);
  if (!value.has_value()) {
    return absl::UnauthenticatedError("the Authorization header must be Bearer <key>");
  }
  auto key = store_.FindLiveApiKey(common::Sha256Hex(*value));
  if (!key.ok()) return absl::UnauthenticatedError("this API key is unknown or revoked");
  return Principal::ApiKey(key->name, key->admin);
}

}  // namespace llmbox::hub::auth
