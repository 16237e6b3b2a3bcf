#include "hub/oauth/tokens.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"
#include "hub/oauth/errors.h"

namespace llmbox::hub::oauth {
namespace {

// 32 random bytes are 43 characters of base64url; anything much longer is not ours, and is
// refused before it is hashed.
constexpr std::size_t kMaxCredentialBytes = 128;
constexpr std::string_view kOidcIdPrefix = "oidc:";
// Authenticate asks the store to record a grant's use when its row is older than this.
constexpr std::int64_t kTouchIntervalMs = 60'000;

std::int64_t Millis(std::chrono::seconds duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

// RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~].
bool ValidVerifier(std::string_view verifier) {
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  return std::all_of(verifier.begin(), verifier.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
  });
}

// An S256 challenge: base64url (no padding) of a SHA-256, so 43 characters of its alphabet.
bool ValidChallenge(std::string_view challenge) {
  return challenge.size() == 43 && std::all_of(challenge.begin(), challenge.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
         });
}

// Whether `credential` has `prefix` and the length of what we issue behind it.
bool HasShape(std::string_view credential, std::string_view prefix) {
  return credential.size() > prefix.size() && credential.size() <= kMaxCredentialBytes &&
         credential.substr(0, prefix.size()) == prefix;
}

[[nodiscard]] absl::StatusOr<std::string> NewSecret(std::string_view prefix) {
  LLMBOX_ASSIGN_OR_RETURN(std::string random, common::RandomToken(32));
  return std::string(prefix) + random;
}

// The resource parameter names this grant's resource: exactly, or with the one "/" a client
// may add to an origin (https://hub.example.com/ is https://hub.example.com).
bool SameResource(std::string_view requested, std::string_view granted) {
  if (requested == granted) return true;
  return requested.size() == granted.size() + 1 && requested.back() == '/' &&
         requested.substr(0, granted.size()) == granted;
}

// Every scope in `requested` (space-separated) is one of `granted`'s.
bool ScopeWithin(std::string_view requested, std::string_view granted) {
  std::vector<absl::string_view> have =
      absl::StrSplit(common::AsAbsl(granted), ' ', absl::SkipEmpty());
  for (absl::string_view want : absl::StrSplit(common::AsAbsl(requested), ' ', absl::SkipEmpty())) {
    if (std::find(have.begin(), have.end(), want) == have.end()) return false;
  }
  return true;
}

// The principal a grant was made for, rebuilt from its record (and, for an API key, the key's
// admin role now).
[[nodiscard]] absl::StatusOr<auth::Principal> PrincipalOf(const store::OAuthGrantRecord& grant,
                                                          bool key_admin,
                                                          const OAuthOptions& options) {
  if (grant.principal_kind == auth::PrincipalKindName(auth::PrincipalKind::kApiKey)) {
    const std::string prefix = auth::ApiKeyPrincipalId("");
    if (grant.principal_id.starts_with(prefix)) {
      return auth::Principal::ApiKey(std::string_view(grant.principal_id).substr(prefix.size()),
                                     key_admin);
    }
  } else if (grant.principal_kind == auth::PrincipalKindName(auth::PrincipalKind::kOAuthSubject) &&
             grant.principal_id.starts_with(kOidcIdPrefix)) {
    // "oidc:<issuer>#<subject>": an issuer URL has no fragment, so the first '#' ends it
    // (principal.cc).
    std::string_view rest = std::string_view(grant.principal_id).substr(kOidcIdPrefix.size());
    const std::size_t hash = rest.find('#');
    if (hash != std::string_view::npos) {
      return auth::Principal::OAuthSubject(rest.substr(0, hash), rest.substr(hash + 1),
                                           grant.display_name, grant.email,
                                           OidcRoles(options, grant.email));
    }
  }
  return absl::InternalError("oauth: grant " + grant.grant_id + " has a principal of kind \"" +
                             grant.principal_kind + "\" this hub cannot rebuild");
}

// The store's refusals of a code or refresh token (NotFound, FailedPrecondition) as
// invalid_grant; the checks' own OAuth errors and other failures (the store unavailable) pass
// as they are. A refusal of a known code or token (a replay, a reuse, an expired or revoked
// one) goes to the log as well, with the client: an operator must see a replay.
absl::Status AsInvalidGrant(const absl::Status& status, const Client& client,
                            std::string_view what) {
  if (absl::IsFailedPrecondition(status)) {
    spdlog::warn("oauth: client \"{}\" presented {} that was refused: {}", client.client_id, what,
                 common::AsStd(status.message()));
  }
  if (absl::IsNotFound(status) || absl::IsFailedPrecondition(status)) {
    return OAuthError(kInvalidGrant, common::AsStd(status.message()));
  }
  return status;
}

}  // namespace

bool LooksLikeAccessToken(std::string_view credential) {
  return credential.starts_with(kAccessTokenPrefix);
}

std::string TokenResponse::Json() const {
  nlohmann::json body = {{"access_token", access_token},
                         {"token_type", "Bearer"},
                         {"expires_in", expires_in},
                         {"scope", scope}};
  if (!refresh_token.empty()) body["refresh_token"] = refresh_token;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TokenService::TokenService(store::Store& store, common::Clock& clock, const OAuthOptions& options,
                           PersonAllowed person_allowed)
    : store_(store), clock_(clock), options_(options), person_allowed_(std::move(person_allowed)) {}

bool TokenService::PersonRefused(const store::OAuthGrantRecord& grant) const {
  return person_allowed_ &&
         grant.principal_kind == auth::PrincipalKindName(auth::PrincipalKind::kOAuthSubject) &&
         !person_allowed_(grant.email);
}

absl::StatusOr<std::string> TokenService::IssueCode(const CodeRequest& request) {
  if (request.client == nullptr) {
    return OAuthError(kInvalidRequest, "no client for the authorization code");
  }
  if (!ValidChallenge(request.code_challenge)) {
    return OAuthError(kInvalidRequest, "code_challenge must be an S256 challenge (43 characters)");
  }
  if (request.resource != options_.issuer) {
    return OAuthError(kInvalidTarget, "the resource must be " + options_.issuer);
  }
  if (request.scope != kScope) {
    return OAuthError(kInvalidScope, "the scope must be " + std::string(kScope));
  }
  const auth::PrincipalKind kind = request.principal.kind();
  if (kind != auth::PrincipalKind::kApiKey && kind != auth::PrincipalKind::kOAuthSubject) {
    return OAuthError(kAccessDenied, "only a signed-in person can consent");
  }
  if (kind == auth::PrincipalKind::kOAuthSubject && person_allowed_ &&
      !person_allowed_(request.principal.verified_email())) {
    return OAuthError(kAccessDenied, "this person is no longer allowed to sign in here");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string grant_random, common::RandomToken(12));
  LLMBOX_ASSIGN_OR_RETURN(std::string code, NewSecret(kCodePrefix));
  const std::int64_t now = common::ToUnixMillis(clock_.Now());
  store::OAuthGrantRecord grant{
      .grant_id = "gr_" + grant_random,
      .client_id = request.client->client_id,
      .client_name = request.client->name,
      .principal_id = request.principal.id(),
      .principal_kind = std::string(auth::PrincipalKindName(kind)),
      .display_name = request.principal.display_name(),
      .email = request.principal.verified_email(),
      .scope = request.scope,
      .resource = request.resource,
      .created_at_ms = now,
      .expires_at_ms = now + Millis(options_.grant_ttl),
  };
  store::OAuthCodeRecord record{.hash = common::Sha256Hex(code),
                                .grant_id = grant.grant_id,
                                .redirect_uri = request.redirect_uri,
                                .code_challenge = request.code_challenge,
                                .expires_at_ms = now + Millis(options_.code_ttl)};
  LLMBOX_RETURN_IF_ERROR(store_.InsertOAuthGrant(grant, record));
  return code;
}

absl::StatusOr<TokenResponse> TokenService::ExchangeCode(const Client& client,
                                                         std::string_view code,
                                                         std::string_view redirect_uri,
                                                         std::string_view code_verifier,
                                                         std::optional<std::string_view> resource) {
  if (code_verifier.empty()) {
    return OAuthError(kInvalidRequest, "code_verifier is required (PKCE with S256)");
  }
  if (!ValidVerifier(code_verifier)) {
    return OAuthError(kInvalidGrant,
                      "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~");
  }
  if (!HasShape(code, kCodePrefix)) {
    return OAuthError(kInvalidGrant, "this authorization code is unknown");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string access, NewSecret(kAccessTokenPrefix));
  LLMBOX_ASSIGN_OR_RETURN(std::string refresh, NewSecret(kRefreshTokenPrefix));
  const std::int64_t now = common::ToUnixMillis(clock_.Now());
  const std::vector<store::OAuthTokenRecord> tokens = {
      {.hash = common::Sha256Hex(access),
       .kind = store::OAuthTokenKind::kAccess,
       .issued_at_ms = now,
       .expires_at_ms = now + Millis(options_.access_token_ttl)},
      {.hash = common::Sha256Hex(refresh),
       .kind = store::OAuthTokenKind::kRefresh,
       .issued_at_ms = now,
       .expires_at_ms = now + Millis(options_.refresh_token_ttl)},
  };
  const std::string challenge = common::Base64UrlEncode(common::Sha256(code_verifier));
  auto check = [&](const store::OAuthCodeRecord& code_record,
                   const store::OAuthGrantRecord& grant) -> absl::Status {
    if (grant.client_id != client.client_id) {
      return OAuthError(kInvalidGrant, "this authorization code was issued to another client");
    }
    if (redirect_uri != code_record.redirect_uri) {
      return OAuthError(kInvalidGrant,
                        "redirect_uri differs from the one the authorization request named");
    }
    if (!common::ConstantTimeEquals(challenge, code_record.code_challenge)) {
      return OAuthError(kInvalidGrant, "code_verifier does not match the code_challenge");
    }
    if (resource.has_value() && !SameResource(*resource, grant.resource)) {
      return OAuthError(kInvalidTarget, "this authorization code is for " + grant.resource);
    }
    if (PersonRefused(grant)) {
      return OAuthError(kInvalidGrant, "the person this code was issued for may no longer sign in");
    }
    return absl::OkStatus();
  };
  auto redeemed = store_.RedeemOAuthCode(common::Sha256Hex(code), now, check, tokens);
  if (!redeemed.ok()) return AsInvalidGrant(redeemed.status(), client, "an authorization code");
  const store::OAuthGrantRecord& grant = redeemed->second;
  return TokenResponse{
      .access_token = std::move(access),
      .refresh_token = std::move(refresh),
      .expires_in = std::min<std::int64_t>(options_.access_token_ttl.count(),
                                           (grant.expires_at_ms - now) / 1000),
      .scope = grant.scope,
  };
}

absl::StatusOr<TokenResponse> TokenService::Refresh(const Client& client,
                                                    std::string_view refresh_token,
                                                    std::optional<std::string_view> scope,
                                                    std::optional<std::string_view> resource) {
  if (!HasShape(refresh_token, kRefreshTokenPrefix)) {
    return OAuthError(kInvalidGrant, "this refresh token is unknown");
  }
  const std::string hash = common::Sha256Hex(refresh_token);
  // The checks that change nothing come first, on a read: a refresh asking for too much is
  // refused without spending the token.
  auto found = store_.FindOAuthToken(hash);
  if (!found.ok()) return AsInvalidGrant(found.status(), client, "a token");
  if (found->token.kind != store::OAuthTokenKind::kRefresh ||
      found->grant.client_id != client.client_id) {
    return OAuthError(kInvalidGrant, "this refresh token is unknown");
  }
  if (scope.has_value() && !ScopeWithin(*scope, found->grant.scope)) {
    return OAuthError(kInvalidScope, "the scope may not grow beyond " + found->grant.scope);
  }
  if (resource.has_value() && !SameResource(*resource, found->grant.resource)) {
    return OAuthError(kInvalidTarget, "this refresh token is for " + found->grant.resource);
  }
  const std::int64_t now = common::ToUnixMillis(clock_.Now());
  if (!found->principal_live) {
    // The API key behind the grant is revoked: so is the grant.
    (void)store_.RevokeOAuthGrants({.grant_id = found->grant.grant_id}, now,
                                   "the API key was revoked");
    return OAuthError(kInvalidGrant, "the API key this grant was made with is revoked");
  }
  if (PersonRefused(found->grant)) {
    (void)store_.RevokeOAuthGrants({.grant_id = found->grant.grant_id}, now,
                                   "the person is no longer allowed to sign in");
    return OAuthError(kInvalidGrant, "the person this grant was made for may no longer sign in");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string access, NewSecret(kAccessTokenPrefix));
  LLMBOX_ASSIGN_OR_RETURN(std::string refresh, NewSecret(kRefreshTokenPrefix));
  const std::int64_t grant_end = found->grant.expires_at_ms;
  const std::vector<store::OAuthTokenRecord> tokens = {
      {.hash = common::Sha256Hex(access),
       .kind = store::OAuthTokenKind::kAccess,
       .issued_at_ms = now,
       .expires_at_ms = std::min(grant_end, now + Millis(options_.access_token_ttl))},
      {.hash = common::Sha256Hex(refresh),
       .kind = store::OAuthTokenKind::kRefresh,
       .issued_at_ms = now,
       .expires_at_ms = std::min(grant_end, now + Millis(options_.refresh_token_ttl))},
  };
  auto rotated = store_.RotateOAuthRefreshToken(hash, client.client_id, now, tokens);
  if (!rotated.ok()) return AsInvalidGrant(rotated.status(), client, "a refresh token");
  return TokenResponse{
      .access_token = std::move(access),
      .refresh_token = std::move(refresh),
      .expires_in = (tokens[0].expires_at_ms - now) / 1000,
      .scope = rotated->grant.scope,
  };
}

absl::Status TokenService::Revoke(const Client& client, std::string_view token) {
  const bool ours = HasShape(token, kAccessTokenPrefix) || HasShape(token, kRefreshTokenPrefix);
  if (!ours) return absl::OkStatus();  // RFC 7009 §2.2: an unknown token is no error
  auto found = store_.FindOAuthToken(common::Sha256Hex(token));
  if (absl::IsNotFound(found.status())) return absl::OkStatus();
  if (!found.ok()) return found.status();
  // Another client's token: nothing happens, and the answer does not say so (§2.1).
  if (found->grant.client_id != client.client_id) return absl::OkStatus();
  auto revoked =
      store_.RevokeOAuthGrants({.grant_id = found->grant.grant_id},
                               common::ToUnixMillis(clock_.Now()), "revoked by the client");
  return revoked.status();
}

absl::StatusOr<auth::Principal> TokenService::Authenticate(std::string_view access_token) {
  if (!HasShape(access_token, kAccessTokenPrefix)) {
    return absl::UnauthenticatedError("this is not an access token of this hub");
  }
  auto found = store_.FindOAuthToken(common::Sha256Hex(access_token));
  if (absl::IsNotFound(found.status())) {
    return absl::UnauthenticatedError("this access token is unknown");
  }
  if (!found.ok()) return found.status();
  const store::OAuthTokenRecord& token = found->token;
  const store::OAuthGrantRecord& grant = found->grant;
  const std::int64_t now = common::ToUnixMillis(clock_.Now());
  if (token.kind != store::OAuthTokenKind::kAccess) {
    return absl::UnauthenticatedError("a refresh token is not an access token");
  }
  if (grant.revoked_at_ms.has_value()) {
    return absl::UnauthenticatedError("this access token was revoked");
  }
  if (now >= token.expires_at_ms) return absl::UnauthenticatedError("this access token expired");
  if (now >= grant.expires_at_ms) {
    return absl::UnauthenticatedError("the grant of this access token expired");
  }
  if (grant.resource != options_.issuer) {
    return absl::UnauthenticatedError("this access token was issued for another resource");
  }
  if (!found->principal_live) {
    return absl::UnauthenticatedError("the API key this access token was issued for is revoked");
  }
  if (PersonRefused(grant)) {
    return absl::UnauthenticatedError(
        "the person this access token was issued for may no longer sign in");
  }
  LLMBOX_ASSIGN_OR_RETURN(auth::Principal principal,
                          PrincipalOf(grant, found->principal_admin, options_));
  // Best effort and coarse: the row says when it was last written, and the store writes at
  // most once a minute per grant, so the hot path stays a single read.
  if (now - grant.last_used_at_ms >= kTouchIntervalMs) {
    (void)store_.TouchOAuthGrant(grant.grant_id, now);
  }
  return principal;
}

}  // namespace llmbox::hub::oauth
