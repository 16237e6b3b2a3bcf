// hub/oauth/tokens.h
//
// Authorization codes, access tokens and refresh tokens. A grant is one consent: a person (a
// Principal), a client, a scope and the resource; its codes and tokens all belong to it, and
// revoking it ends them all. Everything is opaque random text (32 random bytes, base64url,
// behind a prefix: "lbac_" codes, "lbat_" access tokens, "lbrt_" refresh tokens); the Store
// keeps only SHA-256 hashes.
//
//   TokenService tokens(store, clock, options);
//   // consent given (authorize page):
//   LLMBOX_ASSIGN_OR_RETURN(std::string code, tokens.IssueCode({...}));
//   // POST /token grant_type=authorization_code:
//   LLMBOX_ASSIGN_OR_RETURN(TokenResponse r, tokens.ExchangeCode(client, code, redirect_uri,
//                                                                verifier, resource));
//   // every MCP request with a Bearer token:
//   LLMBOX_ASSIGN_OR_RETURN(auth::Principal who, tokens.Authenticate(token));
//
// Rules: a code is single use and lives options.code_ttl; it must come back with the
// client id, redirect URI and resource it was issued with and the PKCE verifier of its S256
// challenge (RFC 7636 syntax: 43-128 characters of [A-Za-z0-9-._~], compared in constant
// time); a code presented a second time revokes its grant (RFC 6749 §4.1.2: everything
// issued from it), and so does one presented with the wrong client, redirect URI, verifier or
// resource (it is spent: a leaked code is dead). A request without a verifier is refused
// before the code is looked at. Refresh tokens rotate: each refresh returns a new refresh token and
// the old one is spent; a spent one presented again revokes the whole grant (RFC 9700 §4.14.2).
// Access tokens live options.access_token_ttl, refresh tokens options.refresh_token_ttl, both
// capped at the grant's end. A grant ends options.grant_ttl after consent. For an API-key
// principal, the key must still be live at every use (revoking the key ends its grants' tokens; a
// refresh then revokes the grant); its admin role is the key's at each use. An OIDC principal is
// rebuilt from the grant (issuer and subject from its id, name and verified email as signed
// in), without roles; when the service has a PersonAllowed check, the person's email must still
// pass it at every use (consent, code exchange, Authenticate, Refresh): someone taken off
// activation.oidc's allow-list loses access at once, and their next refresh revokes the grant.
//
// Thread-safe. Errors carry OAuth codes (errors.h): invalid_grant (unknown, expired, used,
// revoked, another client's, wrong verifier or redirect URI), invalid_target (another
// resource), invalid_scope; Authenticate returns Unauthenticated with a message for the
// WWW-Authenticate error_description (never the token).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/auth/principal.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/options.h"
#include "hub/store/store.h"

namespace llmbox::hub::oauth {

inline constexpr std::string_view kCodePrefix = "lbac_";
inline constexpr std::string_view kAccessTokenPrefix = "lbat_";
inline constexpr std::string_view kRefreshTokenPrefix = "lbrt_";

// Whether a Bearer credential is one of ours (an access token) rather than an API key.
bool LooksLikeAccessToken(std::string_view credential);

// What the person consented to, for IssueCode.
struct CodeRequest {
  const Client* client = nullptr;
  std::string redirect_uri;    // as the authorize request named it (matched already)
  std::string code_challenge;  // S256, base64url of 32 bytes (43 characters)
  std::string scope;           // "llmbox"
  std::string resource;        // the canonical resource (options.issuer)
  auth::Principal principal = auth::Principal::Anonymous();
};

// The token endpoint's success body (RFC 6749 §5.1).
struct TokenResponse {
  std::string access_token;
  std::string refresh_token;
  std::int64_t expires_in = 0;  // seconds
  std::string scope;
  std::string Json() const;  // {"access_token":...,"token_type":"Bearer",...}
};

// Whether the person with this verified email may still sign in (the activation module's
// EmailAllowlist). Called on every use of an OIDC principal's grant, so it must be cheap (no
// I/O) and thread-safe.
using PersonAllowed = std::function<bool(std::string_view email)>;

class TokenService {
 public:
  // `store` and `clock` must outlive the service. `person_allowed`, when set, is asked about
  // every OIDC principal (see above); API-key principals are checked against the key instead.
  TokenService(store::Store& store, common::Clock& clock, const OAuthOptions& options,
               PersonAllowed person_allowed = {});

  // Starts a grant and returns its authorization code.
  [[nodiscard]] absl::StatusOr<std::string> IssueCode(const CodeRequest& request);

  // grant_type=authorization_code. `resource` is the request's resource parameter (nullopt
  // when absent: then the grant's resource is meant).
  [[nodiscard]] absl::StatusOr<TokenResponse> ExchangeCode(
      const Client& client, std::string_view code, std::string_view redirect_uri,
      std::string_view code_verifier, std::optional<std::string_view> resource);

  // grant_type=refresh_token. `scope`, when sent, must not ask for more than the grant has.
  [[nodiscard]] absl::StatusOr<TokenResponse> Refresh(const Client& client,
                                                      std::string_view refresh_token,
                                                      std::optional<std::string_view> scope,
                                                      std::optional<std::string_view> resource);

  // RFC 7009: revokes the grant of `token` (access or refresh) if `client` holds it; an
  // unknown token or another client's is not an error (the endpoint answers 200 either way).
  [[nodiscard]] absl::Status Revoke(const Client& client, std::string_view token);

  // The principal of a live access token issued for this resource: one store lookup, and at
  // most once a minute per grant a write of its last use. Unauthenticated for anything else
  // (unknown, expired, revoked, a refresh token, another resource, a revoked key, a person no
  // longer allowed); the store's own failures (Unavailable) as they are.
  [[nodiscard]] absl::StatusOr<auth::Principal> Authenticate(std::string_view access_token);

 private:
  store::Store& store_;
  common::Clock& clock_;
  const OAuthOptions& options_;
  const PersonAllowed person_allowed_;

  // Whether the grant's principal is an OIDC person that person_allowed_ now refuses.
  bool PersonRefused(const store::OAuthGrantRecord& grant) const;
};

}  // namespace llmbox::hub::oauth
