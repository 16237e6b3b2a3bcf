#include "hub/auth/api_key_auth.h"

#include <cctype>

#include "common/secrets.h"

namespace llmbox::hub::auth {
namespace {

constexpr std::string_view kBearer = "bearer ";

bool StartsWithBearer(std::string_view value) {
  // At least one byte of key after the scheme.
  if (value.size() <= kBearer.size()) return false;
  for (std::size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kBearer[i]) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ApiKeyAuthenticator::Authenticate(
    std::optional<std::string_view> authorization) const {
  if (!authorization) {
    return absl::UnauthenticatedError(
        "an API key is required: send Authorization: Bearer <key> (llmbox-hub apikey create)");
  }
  std::string_view value = *authorization;
  if (!StartsWithBearer(value)) {
    return absl::UnauthenticatedError("the Authorization header must be Bearer <key>");
  }
  value.remove_prefix(kBearer.size());
  auto key = store_.FindLiveApiKey(common::Sha256Hex(value));
  if (!key.ok()) return absl::UnauthenticatedError("this API key is unknown or revoked");
  return key->name;
}

}  // namespace llmbox::hub::auth
