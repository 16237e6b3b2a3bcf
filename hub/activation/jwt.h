// hub/activation/jwt.h
//
// A narrow verifier for OpenID Connect ID tokens (compact JWS) on OpenSSL 3: only RS256 and
// ES256, keys from a JWKS document, claims checked against an injected Clock.
//
//   LLMBOX_ASSIGN_OR_RETURN(JwkSet keys, JwkSet::Parse(jwks_json));
//   IdTokenExpectations expect{.issuer = "https://accounts.example.com",
//                              .client_id = "llmbox", .nonce = pending.nonce};
//   LLMBOX_ASSIGN_OR_RETURN(IdTokenClaims claims, VerifyIdToken(id_token, keys, expect, clock));
//   // claims.email is present and verified by the provider.
//
// The algorithm is never taken on trust from the token: it must be on the allow-list, and the
// key the `kid` names must be of the matching type (RSA for RS256, EC P-256 for ES256), so
// `none`, HS256 signed with a public key and key-type confusion are refused by construction.
//
// Thread-safe: a JwkSet is immutable after Parse() and may be shared between threads.
// Errors: InvalidArgument for a malformed token or JWKS, Unauthenticated for a token that
// parses but fails a check (signature, issuer, audience, time, nonce, email). Every message
// starts with "id token:" or "jwks:", names what failed, and never contains the token.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"

namespace llmbox::hub::activation {

// Bounds on what we parse.
inline constexpr size_t kMaxIdTokenBytes = 16 * 1024;
inline constexpr size_t kMaxJwksBytes = 256 * 1024;
inline constexpr size_t kMaxJwksKeys = 64;
// Allowed clock difference between us and the provider for exp, iat and nbf.
inline constexpr std::chrono::seconds kClockSkew{60};

// The verification keys of a provider, by `kid`. Keys we cannot use (encryption keys,
// symmetric keys, other curves, RSA under 2048 bits) are skipped, not errors: providers
// publish such keys next to the ones that sign ID tokens.
class JwkSet {
 public:
  struct Key;  // an OpenSSL public key and what it may verify (defined in jwt.cc)

  JwkSet();
  ~JwkSet();
  JwkSet(const JwkSet&);
  JwkSet& operator=(const JwkSet&);
  JwkSet(JwkSet&&) noexcept;
  JwkSet& operator=(JwkSet&&) noexcept;

  // Parses a JWKS document ({"keys": [...]}); at most kMaxJwksBytes and kMaxJwksKeys.
  // InvalidArgument when it is not a JWKS or when a usable key is malformed.
  [[nodiscard]] static absl::StatusOr<JwkSet> Parse(std::string_view jwks_json);

  bool Has(std::string_view kid) const;
  size_t size() const { return keys_.size(); }
  // The key for `kid`, or nullptr. An empty `kid` finds the only key of type `kty` (RSA or
  // EC) when there is exactly one.
  const Key* Find(std::string_view kid, std::string_view kty) const;

 private:
  std::map<std::string, std::shared_ptr<const Key>, std::less<>> keys_;
};

// The header fields we look at before verifying (to pick the key).
struct JwsHeader {
  std::string alg;
  std::string kid;  // empty when absent
};

// Splits a compact JWS and decodes its header (size caps, base64url, JSON object).
[[nodiscard]] absl::StatusOr<JwsHeader> PeekJwsHeader(std::string_view token);

struct IdTokenExpectations {
  std::string issuer;     // `iss` must equal it exactly
  std::string client_id;  // `aud` must contain it; `azp`, when present, must equal it
  std::string nonce;      // `nonce` must equal it
  // Intersected with {RS256, ES256}; a provider may sign with fewer.
  std::vector<std::string> allowed_algs = {"RS256", "ES256"};
};

struct IdTokenClaims {
  std::string issuer;
  std::string subject;
  std::string email;  // verified by the provider (email_verified was true)
  common::Clock::WallTime issued_at;
  common::Clock::WallTime expires_at;
};

// Verifies the signature of `token` with the key its `kid` names in `keys`, then the claims:
// iss, aud (and azp when there are several audiences), exp, iat and nbf with kClockSkew
// against `clock.Now()`, nonce, sub, email present and email_verified exactly true.
[[nodiscard]] absl::StatusOr<IdTokenClaims> VerifyIdToken(std::string_view token,
                                                          const JwkSet& keys,
                                                          const IdTokenExpectations& expect,
                                                          common::Clock& clock);

}  // namespace llmbox::hub::activation
