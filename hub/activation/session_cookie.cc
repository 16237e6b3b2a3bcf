// hub/activation/session_cookie.cc
#include "hub/activation/session_cookie.h"

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::activation {
namespace {

constexpr std::string_view kVersion = "v2";
constexpr std::string_view kStatePath = "/auth/oidc/";
constexpr size_t kMinKeyBytes = 32;

int64_t UnixSeconds(common::Clock::WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

constexpr int64_t kStateCookieSeconds = 600;

std::string Cookie(std::string_view name, std::string_view value, std::string_view path,
                   int64_t max_age, bool secure) {
  return absl::StrCat(common::AsAbsl(name), "=", common::AsAbsl(value),
                      "; Path=", common::AsAbsl(path), "; Max-Age=", max_age,
                      "; HttpOnly; SameSite=Lax", secure ? "; Secure" : "");
}

[[nodiscard]] absl::Status Refused(std::string_view why) {
  return absl::UnauthenticatedError(
      absl::StrCat("session: ", common::AsAbsl(why), "; sign in again"));
}

}  // namespace

SessionCookie::SessionCookie(std::string key, std::chrono::seconds ttl, common::Clock& clock)
    : key_(std::move(key)), ttl_(ttl), clock_(clock) {
  LLMBOX_CHECK(key_.size() >= kMinKeyBytes, "a session key needs at least 32 bytes");
}

std::string SessionCookie::Mac(std::string_view email_b64, std::string_view subject_b64,
                               std::string_view expiry) const {
  return common::Base64UrlEncode(common::HmacSha256(
      key_, absl::StrCat(common::AsAbsl(kVersion), ".", common::AsAbsl(email_b64), ".",
                         common::AsAbsl(subject_b64), ".", common::AsAbsl(expiry))));
}

std::string SessionCookie::Issue(std::string_view email, std::string_view subject) const {
  const std::string email_b64 = common::Base64UrlEncode(email);
  const std::string subject_b64 = common::Base64UrlEncode(subject);
  const std::string expiry = std::to_string(UnixSeconds(clock_.Now() + ttl_));
  return absl::StrCat(common::AsAbsl(kVersion), ".", email_b64, ".", subject_b64, ".", expiry, ".",
                      Mac(email_b64, subject_b64, expiry));
}

absl::StatusOr<std::string> SessionCookie::Verify(std::string_view value) const {
  LLMBOX_ASSIGN_OR_RETURN(Session session, VerifySession(value));
  return std::move(session.email);
}

absl::StatusOr<Session> SessionCookie::VerifySession(std::string_view value) const {
  if (value.empty() || value.size() > kMaxValueBytes) return Refused("no usable session cookie");
  const std::vector<absl::string_view> parts = absl::StrSplit(common::AsAbsl(value), '.');
  if (parts.size() != 5 || parts[0] != common::AsAbsl(kVersion)) {
    return Refused("the session cookie is malformed");
  }
  const std::string_view email_b64 = common::AsStd(parts[1]);
  const std::string_view subject_b64 = common::AsStd(parts[2]);
  const std::string_view expiry = common::AsStd(parts[3]);
  if (!common::ConstantTimeEquals(Mac(email_b64, subject_b64, expiry), common::AsStd(parts[4]))) {
    return Refused("the session cookie's signature does not verify");
  }
  int64_t expires = 0;
  if (!absl::SimpleAtoi(parts[3], &expires)) return Refused("the session cookie is malformed");
  if (UnixSeconds(clock_.Now()) >= expires) return Refused("the session has expired");
  auto email = common::Base64UrlDecode(email_b64);
  auto subject = common::Base64UrlDecode(subject_b64);
  if (!email.ok() || email->empty() || !subject.ok() || subject->empty()) {
    return Refused("the session cookie is malformed");
  }
  return Session{.email = *std::move(email), .subject = *std::move(subject)};
}

std::string SessionCookie::SetCookieHeader(std::string_view value, bool secure) const {
  return Cookie(kName, value, "/", ttl_.count(), secure);
}

std::string SessionCookie::ClearCookieHeader(bool secure) {
  return Cookie(kName, "", "/", 0, secure);
}

std::string SessionCookie::DeriveKey(std::string_view hub_secret) {
  return common::HmacSha256(hub_secret, "llmbox activation session cookie v1");
}

std::string SessionCookie::StateCookieHeader(std::string_view state, bool secure) {
  return Cookie(kStateName, state, kStatePath, kStateCookieSeconds, secure);
}

std::string SessionCookie::ClearStateCookieHeader(bool secure) {
  return Cookie(kStateName, "", kStatePath, 0, secure);
}

}  // namespace llmbox::hub::activation
