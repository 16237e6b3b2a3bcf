#include "hub/oauth/options.h"

#include "absl/strings/match.h"

#include "common/absl_compat.h"

namespace llmbox::hub::oauth {

std::string_view SignInModeName(SignInMode mode) {
  switch (mode) {
    case SignInMode::kOidc:
      return "oidc";
    case SignInMode::kApiKey:
      return "api_key";
  }
  return "api_key";
}

std::vector<auth::Role> OidcRoles(const OAuthOptions& options, std::string_view email) {
  if (email.empty()) return {};
  for (const auto& admin : options.admin_emails) {
    if (absl::EqualsIgnoreCase(common::AsAbsl(admin), common::AsAbsl(email))) {
      return {auth::Role::kAdmin};
    }
  }
  return {};
}

}  // namespace llmbox::hub::oauth
