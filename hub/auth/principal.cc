// hub/auth/principal.cc
#include "hub/auth/principal.h"

#include <algorithm>
#include <utility>

namespace llmbox::hub::auth {

std::string_view PrincipalKindName(PrincipalKind kind) {
  switch (kind) {
    case PrincipalKind::kAnonymous:
      return "anonymous";
    case PrincipalKind::kApiKey:
      return "api_key";
    case PrincipalKind::kOAuthSubject:
      return "oauth_subject";
  }
  return "unknown";
}

std::string ApiKeyPrincipalId(std::string_view key_name) { return "key:" + std::string(key_name); }

Principal::Principal(PrincipalKind kind, std::string id, std::string display_name,
                     std::vector<Role> roles, std::string verified_email)
    : kind_(kind),
      id_(std::move(id)),
      display_name_(std::move(display_name)),
      roles_(std::move(roles)),
      verified_email_(std::move(verified_email)) {}

Principal Principal::Anonymous() {
  return Principal(PrincipalKind::kAnonymous, std::string(kAnonymousPrincipalId), "anonymous", {},
                   "");
}

Principal Principal::ApiKey(std::string_view key_name, bool admin) {
  std::vector<Role> roles;
  if (admin) roles.push_back(Role::kAdmin);
  return Principal(PrincipalKind::kApiKey, ApiKeyPrincipalId(key_name), std::string(key_name),
                   std::move(roles), "");
}

Principal Principal::OAuthSubject(std::string_view issuer, std::string_view subject,
                                  std::string display_name, std::string verified_email,
                                  std::vector<Role> roles) {
  // Ids are compared, never parsed: an issuer URL has no fragment, so "<issuer>#<subject>"
  // is one pair only.
  std::string id = "oidc:" + std::string(issuer) + "#" + std::string(subject);
  return Principal(PrincipalKind::kOAuthSubject, std::move(id), std::move(display_name),
                   std::move(roles), std::move(verified_email));
}

bool Principal::HasRole(Role role) const {
  return std::find(roles_.begin(), roles_.end(), role) != roles_.end();
}

}  // namespace llmbox::hub::auth
