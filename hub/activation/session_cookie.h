// hub/activation/session_cookie.h
//
// Who is signed in to the activation page: a cookie value that carries an email and an
// expiry, signed with HMAC-SHA-256 under a key only the hub knows. Signing out is clearing
// the cookie (ClearCookieHeader).
//
//   SessionCookie sessions(key, std::chrono::hours(12), clock);   // key: 32+ random bytes
//   // after CompleteLogin:
//   response.Set("Set-Cookie", sessions.SetCookieHeader(sessions.Issue(who.email), secure));
//   // on every request:
//   absl::StatusOr<std::string> email = sessions.Verify(cookie_value);
//
// The value is "v1.<base64url email>.<expiry, unix seconds>.<base64url HMAC>"; the HMAC
// covers the version, email and expiry and is compared in constant time. The key is held in
// memory only: with a key made at start-up, a hub restart signs everyone out.
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

class SessionCookie {
 public:
  static constexpr std::string_view kName = "llmbox_session";
  static constexpr size_t kMaxValueBytes = 1024;

  // `key` must hold at least 32 bytes (a CHECK: it comes from our own CSPRNG or state).
  // `clock` must outlive this object.
  SessionCookie(std::string key, std::chrono::seconds ttl, common::Clock& clock);

  // A value for `email`, valid for the ttl from now.
  [[nodiscard]] std::string Issue(std::string_view email) const;
  // The email of a valid, unexpired value.
  [[nodiscard]] absl::StatusOr<std::string> Verify(std::string_view value) const;

  // Set-Cookie header values. HttpOnly, Path=/, SameSite=Lax (the browser arrives from the
  // provider's redirect, a cross-site navigation that would drop a Strict cookie), Secure
  // exactly when the page is served over https.
  [[nodiscard]] std::string SetCookieHeader(std::string_view value, bool secure) const;
  [[nodiscard]] static std::string ClearCookieHeader(bool secure);

 private:
  std::string Mac(std::string_view email_b64, std::string_view expiry) const;

  const std::string key_;
  const std::chrono::seconds ttl_;
  common::Clock& clock_;
};

}  // namespace llmbox::hub::activation
