// hub/activation/csrf.h
//
// Form tokens that protect the activation page's code form from cross-site posts: each page
// carries a fresh token bound to the browser (a random id in an HttpOnly, SameSite=Strict
// cookie) and to the activation link; a token is accepted once, until it expires.
//
//   CsrfTokens csrf(key, clock, std::chrono::minutes(30));
//   std::string field = csrf.Issue(browser_id, activation_token);   // into <input hidden>
//   LLMBOX_RETURN_IF_ERROR(csrf.Redeem(field, browser_id, activation_token));
//
// Tokens are "<issued ms>.<nonce>.<HMAC>"; nothing is stored until one is redeemed (the used
// nonces, until they expire, at most kMaxUsed of them). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "common/clock.h"

namespace llmbox::hub::activation {

class CsrfTokens {
 public:
  static constexpr std::size_t kMaxUsed = 100'000;

  // `key`: at least 32 secret bytes.
  CsrfTokens(std::string key, common::Clock& clock, std::chrono::seconds ttl);

  std::string Issue(std::string_view browser_id, std::string_view scope);
  // PermissionDenied, saying why (missing, malformed, another browser or page, expired,
  // already used); never echoes the token.
  [[nodiscard]] absl::Status Redeem(std::string_view token, std::string_view browser_id,
                                    std::string_view scope);

 private:
  std::string Mac(std::string_view browser_id, std::string_view scope, std::string_view issued,
                  std::string_view nonce) const;

  const std::string key_;
  common::Clock& clock_;
  const std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, std::int64_t> used_;  // nonce -> when it expires (ms)
};

}  // namespace llmbox::hub::activation
