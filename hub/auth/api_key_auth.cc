#include "hub/auth/api_key_auth.h"

#include "absl/strings/match.h"

#include "common/absl_compat.h"
#include "common/secrets.h"

namespace llmbox::hub::auth {
namespace {

constexpr std::string_view kBearer = "bearer ";

}  // namespace

absl::StatusOr<Principal> ApiKeyAuthenticator::Authenticate(
    std::optional<std::string_view> authorization) const {
  if (!authorization) {
    return absl::UnauthenticatedError(
        "an API key is required: send Authorization: Bearer <key> (llmbox-hub apikey create)");
  }
  std::string_view value = *authorization;
  // The scheme, case-insensitive, and at least one byte of key.
  if (value.size() <= kBearer.size() ||
      !absl::StartsWithIgnoreCase(common::AsAbsl(value), common::AsAbsl(kBearer))) {
    return absl::UnauthenticatedError("the Authorization header must be Bearer <key>");
  }
  value.remove_prefix(kBearer.size());
  auto key = store_.FindLiveApiKey(common::Sha256Hex(value));
  if (!key.ok()) return absl::UnauthenticatedError("this API key is unknown or revoked");
  return Principal::ApiKey(key->name, key->admin);
}

}  // namespace llmbox::hub::auth
