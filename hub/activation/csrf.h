// hub/activation/csrf.h
//
// Form tokens that protect the activation page's code form from cross-site posts: each page
// carries a fresh token bound to the browser (a random id in an HttpOnly, SameSite=Strict
// cookie) and to the activation link; a token is accepted once, until it expires.
//
//   CsrfTokens csrf(key, clock, std::chrono::minutes(30));
//   std::string field = csrf.Issue(browser_id, activation_token);   // into <input hidden>
//   LLMBOX_RETURN_IF_ERROR(csrf.Redeem(field, browser_id, activation_token, client_key));
//
// Tokens are "<issued ms>.<nonce>.<HMAC>"; nothing is stored until one is redeemed (the used
// nonces, until they expire). That store is bounded three ways, so one client cannot fill it
// for the others: per client address (the smallest share), per activation link, and in all.
// Thread-safe.
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

// How many used forms CsrfTokens remembers (each until it expires).
struct CsrfLimits {
  std::size_t max_used = 100'000;          // in all
  std::size_t max_used_per_scope = 1'000;  // per activation link
  std::size_t max_used_per_client = 100;   // per client address (key)
};

class CsrfTokens {
 public:
  // `key`: at least 32 secret bytes.
  CsrfTokens(std::string key, common::Clock& clock, std::chrono::seconds ttl,
             CsrfLimits limits = {});

  std::string Issue(std::string_view browser_id, std::string_view scope);
  // Accepts `token` once for `browser_id` and `scope`, sent by `client` (the client's address
  // key). PermissionDenied, saying why (missing, malformed, another browser or page, expired,
  // already used); ResourceExhausted when a limit above is reached, naming which (the client's
  // own, the link's, or all). Never echoes the token.
  [[nodiscard]] absl::Status Redeem(std::string_view token, std::string_view browser_id,
                                    std::string_view scope, std::string_view client);

  // How many used forms are remembered now (for tests).
  std::size_t UsedForms();

 private:
  struct Used {
    std::int64_t expires_ms = 0;
    std::string scope;
    std::string client;
  };
  std::string Mac(std::string_view browser_id, std::string_view scope, std::string_view issued,
                  std::string_view nonce) const;
  void DropExpiredLocked(std::int64_t now_ms);

  const std::string key_;
  common::Clock& clock_;
  const std::chrono::seconds ttl_;
  const CsrfLimits limits_;
  std::mutex mu_;
  std::map<std::string, Used> used_;                            // by nonce; guarded by mu_
  std::multimap<std::int64_t, std::string> by_expiry_;          // guarded by mu_
  std::map<std::string, std::size_t, std::less<>> per_scope_;   // guarded by mu_
  std::map<std::string, std::size_t, std::less<>> per_client_;  // guarded by mu_
};

}  // namespace llmbox::hub::activation
