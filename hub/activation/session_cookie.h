// hub/activation/session_cookie.h
//
// Who is signed in to the hub's pages (the activation page, the OAuth authorize page): a
// cookie value that carries the provider's verified email and subject and an expiry, signed
// with HMAC-SHA-256 under a key only the hub knows. Signing out is clearing the cookie
// (ClearCookieHeader).
//
//   SessionCookie sessions(key, std::chrono::hours(12), clock);   // key: 32+ random bytes
//   // after CompleteLogin:
//   response.Set("Set-Cookie",
//                sessions.SetCookieHeader(sessions.Issue(who.email, who.subject), secure));
//   // on every request:
//   absl::StatusOr<std::string> email = sessions.Verify(cookie_value);
//   absl::StatusOr<Session> who = sessions.VerifySession(cookie_value);   // email and subject
//
//   // the key, from the hub's persistent secret (a restart keeps people signed in):
//   SessionCookie sessions(SessionCookie::DeriveKey(hub_secret), ttl, clock);
//
// The value is "v2.<base64url email>.<base64url subject>.<expiry, unix seconds>.<base64url
// HMAC>"; the HMAC covers the version, email, subject and expiry and is compared in constant
// time. A v1 value (from before the subject was kept: no subject) is refused like any
// unusable cookie: that person simply signs in again.
//
// Thread-safe (immutable after construction).
// Errors from Verify: Unauthenticated for a value that is malformed, tampered with, signed
// with another key, or expired. Messages never contain the value.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "common/clock.h"

namespace llmbox::hub::activation {

// A verified session: who the provider said signed in.
struct Session {
  std::string email;    // lowercase, verified by the provider
  std::string subject;  // the provider's `sub` for the person
};

class SessionCookie {
 public:
  static constexpr std::string_view kName = "llmbox_session";
  static constexpr size_t kMaxValueBytes = 1024;

  // `key` must hold at least 32 bytes (a CHECK: it comes from our own CSPRNG or state).
  // `clock` must outlive this object.
  SessionCookie(std::string key, std::chrono::seconds ttl, common::Clock& clock);

  // A value for the person the provider knows as `subject` with `email`, valid for the ttl
  // from now.
  [[nodiscard]] std::string Issue(std::string_view email, std::string_view subject) const;
  // The email of a valid, unexpired value.
  [[nodiscard]] absl::StatusOr<std::string> Verify(std::string_view value) const;
  // The email and subject of a valid, unexpired value.
  [[nodiscard]] absl::StatusOr<Session> VerifySession(std::string_view value) const;

  // Set-Cookie header values. HttpOnly, Path=/, SameSite=Lax (the browser arrives from the
  // provider's redirect, a cross-site navigation that would drop a Strict cookie), Secure
  // exactly when the page is served over https.
  [[nodiscard]] std::string SetCookieHeader(std::string_view value, bool secure) const;
  [[nodiscard]] static std::string ClearCookieHeader(bool secure);

  // The session key derived from the hub's own secret (state_dir/session.key), so that the
  // cookie's key is separate from every other use of that secret.
  [[nodiscard]] static std::string DeriveKey(std::string_view hub_secret);

  // The cookie that binds a started sign-in to the browser that started it (login CSRF):
  // set it with BeginLogin's state, and on the callback accept the state only when it equals
  // this cookie's value (constant-time). SameSite=Lax so that the provider's redirect back
  // carries it; Path=/auth/oidc/ (only the callback reads it); it lives as long as a pending
  // sign-in (10 minutes).
  static constexpr std::string_view kStateName = "llmbox_oidc_state";
  [[nodiscard]] static std::string StateCookieHeader(std::string_view state, bool secure);
  [[nodiscard]] static std::string ClearStateCookieHeader(bool secure);

 private:
  std::string Mac(std::string_view email_b64, std::string_view subject_b64,
                  std::string_view expiry) const;

  const std::string key_;
  const std::chrono::seconds ttl_;
  common::Clock& clock_;
};

}  // namespace llmbox::hub::activation
