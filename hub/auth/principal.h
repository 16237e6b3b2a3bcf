// hub/auth/principal.h
//
// Who is calling the hub: every MCP request carries one Principal, from the authenticator
// (an API key today, an OAuth subject after the OAuth issue) or, with API keys off (the hub
// listens on loopback only), the one anonymous principal. A box belongs to the principal that
// created it (store::BoxRecord::owner holds its id); the admin role sees and acts on every box.
//
//   auth::Principal alice = auth::Principal::ApiKey("alice", /*admin=*/false);
//   alice.id();             // "key:alice": what a box's owner column holds
//   alice.display_name();   // "alice"
//   alice.IsAdmin();        // false
//
// Ids are namespaced by kind so that kinds never collide: "anonymous", "key:<key name>"
// (key names are [a-z0-9][a-z0-9-_.]*, so they hold no ':'), and for OAuth subjects
// "oidc:<issuer>#<subject>". An id is stable for as long as what it names exists: a revoked
// key's name is never given to another key, so its boxes never pass to someone else.
//
// A plain value: copyable, immutable once made, safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmbox::hub::auth {

enum class PrincipalKind {
  kAnonymous,     // API keys off: every caller (on loopback) is this one principal
  kApiKey,        // an MCP API key (llmbox-hub apikey create)
  kOAuthSubject,  // a person signed in through the hub's OAuth server (the OAuth issue)
};
std::string_view PrincipalKindName(PrincipalKind kind);  // "anonymous", "api_key", "oauth_subject"

enum class Role {
  kAdmin,  // sees and acts on every principal's boxes, and is shown their owners
};

class Principal {
 public:
  // The one principal of a hub without API keys. Not an admin: it owns the boxes made while
  // keys were off, and only those.
  static Principal Anonymous();
  // The principal of the API key named `key_name`; the admin role when the key was made with
  // `llmbox-hub apikey create --admin`.
  static Principal ApiKey(std::string_view key_name, bool admin);
  // A person known to an OAuth/OIDC issuer by `subject`. `verified_email` is the email the
  // issuer vouched for (empty when none); the activation page will let only that person
  // activate the boxes this principal creates.
  static Principal OAuthSubject(std::string_view issuer, std::string_view subject,
                                std::string display_name, std::string verified_email,
                                std::vector<Role> roles);

  const std::string& id() const { return id_; }
  const std::string& display_name() const { return display_name_; }
  PrincipalKind kind() const { return kind_; }
  const std::vector<Role>& roles() const { return roles_; }
  // "" unless the identity provider verified one (never for API keys or anonymous).
  const std::string& verified_email() const { return verified_email_; }

  bool HasRole(Role role) const;
  bool IsAdmin() const { return HasRole(Role::kAdmin); }
  // Whether a box with this owner id is this principal's to see and act on: its own, or any
  // box for an admin.
  bool MayActOn(std::string_view owner_id) const { return IsAdmin() || owner_id == id_; }

  friend bool operator==(const Principal&, const Principal&) = default;

 private:
  Principal(PrincipalKind kind, std::string id, std::string display_name, std::vector<Role> roles,
            std::string verified_email);

  PrincipalKind kind_;
  std::string id_;
  std::string display_name_;
  std::vector<Role> roles_;
  std::string verified_email_;
};

// The owner id of a box made by the API key `key_name` (Principal::ApiKey(key_name, ..).id()),
// and of one made with keys off. The store's migration writes the same ids for boxes made
// before owners existed; keep the two in step.
std::string ApiKeyPrincipalId(std::string_view key_name);
inline constexpr std::string_view kAnonymousPrincipalId = "anonymous";

}  // namespace llmbox::hub::auth
