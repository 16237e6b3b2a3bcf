// hub/activation/oidc.h
//
// Sign-in gating for the activation page: the OpenID Connect authorization code flow with
// PKCE (S256), `state` and `nonce`, against one provider, and the allow-list of who may sign
// in. The page calls it; it knows nothing of HTTP routes or cookies (see session_cookie.h).
//
//   // GET /auth/<token> without a session: send the browser to the provider.
//   LLMBOX_ASSIGN_OR_RETURN(LoginStart start, oidc.BeginLogin("/auth/" + token));
//   // ... set a SameSite=Lax cookie holding start.state, redirect to start.authorize_url
//
//   // GET <redirect_uri>?code=...&state=...: the provider sent the browser back.
//   // (compare the query's state with the cookie's first, constant-time)
//   LLMBOX_ASSIGN_OR_RETURN(SignedIn who, oidc.CompleteLogin(state, code));
//   // who.email is verified and allowed; issue a session cookie, redirect to who.return_to
//
// Errors: InvalidArgument for bad input (a return_to that is not a local path, an oversize
// code), Unauthenticated for an unknown, used or expired state and for an ID token that fails
// verification, PermissionDenied for a verified email the allow-list does not admit,
// Unavailable / DeadlineExceeded / ResourceExhausted when the provider cannot be reached or
// answers too much, FailedPrecondition for a provider whose discovery document we cannot use.
// Messages name what failed and never contain a code, token, verifier or secret.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/activation/http_fetch.h"
#include "hub/activation/jwt.h"

namespace llmbox::hub::activation {

struct OidcSettings {
  std::string issuer;  // exactly as the provider names itself; https unless loopback
  std::string client_id;
  std::string client_secret;                 // from activation.oidc.client_secret_file
  std::string redirect_uri;                  // <public_url> + the page's callback path
  std::vector<std::string> allowed_emails;   // exact, case-insensitive
  std::vector<std::string> allowed_domains;  // the part after '@', case-insensitive
  std::chrono::seconds login_ttl{600};       // how long a started sign-in may take
  // Started sign-ins waiting for their callback, counted in each LoginPool on its own (so a
  // flood in one pool never touches the other). Beyond the per-address cap a client's own
  // oldest in that pool is dropped; when a pool is full new ones in it are refused
  // (ResourceExhausted), so a flood never pushes out anybody else's sign-in.
  size_t max_pending_logins = 1024;
  size_t max_pending_logins_per_address = 8;
  std::chrono::seconds jwks_refetch_interval{60};  // at most one refetch per interval
};

// Who started a sign-in: the activation page (a person with an activation link), or the OAuth
// authorize page (any registered client's GET /authorize can start one). Each pool has its own
// caps (OidcSettings), so OAuth sign-ins can never fill the table activation links need.
enum class LoginPool { kActivation, kOAuth };

struct LoginStart {
  std::string authorize_url;  // where to send the browser
  std::string state;          // bind it to the browser (cookie) and compare on the callback
};

struct SignedIn {
  std::string email;  // lowercase, verified by the provider, on the allow-list
  std::string subject;
  std::string return_to;  // the local path given to BeginLogin
};

// Who may sign in: an email listed in allowed_emails, or one whose domain (after the last
// '@') is in allowed_domains; both compared case-insensitively. An empty allow-list admits
// no one. Immutable; thread-safe.
class EmailAllowlist {
 public:
  EmailAllowlist(const std::vector<std::string>& emails, const std::vector<std::string>& domains);
  bool Allows(std::string_view email) const;

 private:
  std::vector<std::string> emails_;
  std::vector<std::string> domains_;
};

// What the activation page needs from sign-in. Thread-safe.
class OidcClient {
 public:
  virtual ~OidcClient() = default;

  // Starts a sign-in that will come back to `return_to` (a local path such as
  // "/auth/<token>": it starts with one '/', at most 2048 characters) for the browser at
  // `client` (its address key, http::AddressKey). The state is single-use and expires after
  // login_ttl. `pool` is counted against its own caps. ResourceExhausted when too many
  // sign-ins of that pool are in progress.
  [[nodiscard]] virtual absl::StatusOr<LoginStart> BeginLogin(
      std::string return_to, std::string_view client, LoginPool pool = LoginPool::kActivation) = 0;

  // Finishes the sign-in that `state` names (consuming it, whatever the outcome): exchanges
  // `code` at the token endpoint, verifies the ID token, checks the allow-list.
  [[nodiscard]] virtual absl::StatusOr<SignedIn> CompleteLogin(std::string_view state,
                                                               std::string_view code) = 0;
};

// OidcClient against a real provider: discovery at <issuer>/.well-known/openid-configuration
// (fetched on first use and kept), the JWKS cached by kid and refetched on an unknown kid at
// most once per jwks_refetch_interval, every fetch bounded by `http` (timeouts, size cap).
// The issuer and every endpoint must be https, unless the issuer is on loopback (tests).
// The token endpoint is called with client_secret_basic, or client_secret_post when that is
// all the provider supports.
class ProviderOidcClient final : public OidcClient {
 public:
  // InvalidArgument when the settings are unusable (no issuer, client id or redirect URI, an
  // http issuer off loopback). `http` and `clock` must outlive the client.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProviderOidcClient>> Create(
      OidcSettings settings, HttpFetcher& http, common::Clock& clock);

  [[nodiscard]] absl::StatusOr<LoginStart> BeginLogin(
      std::string return_to, std::string_view client,
      LoginPool pool = LoginPool::kActivation) override;
  [[nodiscard]] absl::StatusOr<SignedIn> CompleteLogin(std::string_view state,
                                                       std::string_view code) override;

  // How many sign-ins are started and not yet completed or expired (for tests and metrics):
  // in all, or in `pool`.
  size_t PendingLogins();
  size_t PendingLogins(LoginPool pool);

 private:
  struct Provider;
  struct Pending {
    std::string verifier;
    std::string nonce;
    std::string return_to;
    common::Clock::SteadyTime expires;
    std::list<std::string>::iterator order;
    std::string client;
    LoginPool pool = LoginPool::kActivation;
  };
  // One LoginPool's share of the table.
  struct Pool {
    std::list<std::string> order;                           // states, oldest first
    std::map<std::string, size_t, std::less<>> per_client;  // pending per client
  };

  ProviderOidcClient(OidcSettings settings, HttpFetcher& http, common::Clock& clock);
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const Provider>> Discover();
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const JwkSet>> KeysFor(const Provider& provider,
                                                                      std::string_view kid);
  [[nodiscard]] absl::StatusOr<std::string> ExchangeCode(const Provider& provider,
                                                         std::string_view code,
                                                         const Pending& pending);
  std::optional<Pending> TakePending(std::string_view state);
  void DropExpiredLocked();
  void EraseLocked(std::map<std::string, Pending, std::less<>>::iterator it);

  const OidcSettings settings_;
  const EmailAllowlist allowlist_;
  HttpFetcher& http_;
  common::Clock& clock_;

  std::mutex fetch_mu_;                                    // one discovery or JWKS fetch at a time
  std::shared_ptr<const Provider> provider_;               // guarded by fetch_mu_
  std::shared_ptr<const JwkSet> keys_;                     // guarded by fetch_mu_
  std::optional<common::Clock::SteadyTime> keys_fetched_;  // guarded by fetch_mu_

  std::mutex mu_;
  std::map<std::string, Pending, std::less<>> pending_;  // by state; guarded by mu_
  Pool pools_[2];                                        // by LoginPool; guarded by mu_
  Pool& PoolLocked(LoginPool pool) { return pools_[static_cast<int>(pool)]; }
};

}  // namespace llmbox::hub::activation
