// hub/activation/csrf.cc
#include "hub/activation/csrf.h"

#include <charconv>
#include <utility>

#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::activation {

namespace {

void Decrement(std::map<std::string, std::size_t, std::less<>>& counts, const std::string& key) {
  auto it = counts.find(key);
  if (it == counts.end()) return;
  if (--it->second == 0) counts.erase(it);
}

std::size_t CountOf(const std::map<std::string, std::size_t, std::less<>>& counts,
                    std::string_view key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

CsrfTokens::CsrfTokens(std::string key, common::Clock& clock, std::chrono::seconds ttl,
                       CsrfLimits limits)
    : key_(std::move(key)), clock_(clock), ttl_(ttl), limits_(limits) {
  LLMBOX_CHECK(key_.size() >= 32, "CSRF key shorter than 32 bytes");
}

std::string CsrfTokens::Mac(std::string_view browser_id, std::string_view scope,
                            std::string_view issued, std::string_view nonce) const {
  std::string data = "llmbox-csrf-1|";
  for (std::string_view part : {browser_id, scope, issued, nonce}) {
    data += std::to_string(part.size());  // length-prefixed: no two inputs share a message
    data += ':';
    data += part;
  }
  return common::Base64UrlEncode(common::HmacSha256(key_, data));
}

std::string CsrfTokens::Issue(std::string_view browser_id, std::string_view scope) {
  auto nonce = common::RandomToken(16);
  LLMBOX_CHECK(nonce.ok(), "the CSPRNG failed");
  const std::string issued = std::to_string(common::ToUnixMillis(clock_.Now()));
  return issued + "." + *nonce + "." + Mac(browser_id, scope, issued, *nonce);
}

void CsrfTokens::DropExpiredLocked(std::int64_t now_ms) {
  // Oldest first, so a flood costs each request only what it added.
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms) {
    auto used = used_.find(by_expiry_.begin()->second);
    LLMBOX_CHECK(used != used_.end(), "every expiry names a used form");
    Decrement(per_scope_, used->second.scope);
    Decrement(per_client_, used->second.client);
    used_.erase(used);
    by_expiry_.erase(by_expiry_.begin());
  }
}

std::size_t CsrfTokens::UsedForms() {
  std::lock_guard lock(mu_);
  DropExpiredLocked(common::ToUnixMillis(clock_.Now()));
  return used_.size();
}

absl::Status CsrfTokens::Redeem(std::string_view token, std::string_view browser_id,
                                std::string_view scope, std::string_view client) {
  if (token.empty()) return absl::PermissionDeniedError("the form carries no CSRF token");
  if (browser_id.empty()) {
    return absl::PermissionDeniedError("the browser sent no CSRF cookie (are cookies off?)");
  }
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (token.size() > 256 || second == std::string_view::npos) {
    return absl::PermissionDeniedError("the form's CSRF token is malformed");
  }
  const std::string_view issued = token.substr(0, first);
  const std::string_view nonce = token.substr(first + 1, second - first - 1);
  const std::string_view mac = token.substr(second + 1);
  std::int64_t issued_ms = 0;
  const auto parsed = std::from_chars(issued.data(), issued.data() + issued.size(), issued_ms);
  if (parsed.ec != std::errc() || parsed.ptr != issued.data() + issued.size() || nonce.empty()) {
    return absl::PermissionDeniedError("the form's CSRF token is malformed");
  }
  if (!common::ConstantTimeEquals(mac, Mac(browser_id, scope, issued, nonce))) {
    return absl::PermissionDeniedError("the form's CSRF token belongs to another browser or page");
  }
  const std::int64_t now = common::ToUnixMillis(clock_.Now());
  const std::int64_t expires = issued_ms + std::chrono::milliseconds(ttl_).count();
  if (now >= expires) return absl::PermissionDeniedError("the form has expired");

  std::lock_guard lock(mu_);
  DropExpiredLocked(now);
  if (used_.contains(std::string(nonce))) {
    return absl::PermissionDeniedError("the form was sent already");
  }
  // The smallest share first, so a client that floods hears about its own limit and leaves
  // the link's and the global one to everybody else.
  if (CountOf(per_client_, client) >= limits_.max_used_per_client) {
    return absl::ResourceExhaustedError(
        "too many forms were sent from your address lately; wait a few minutes and reload the "
        "page");
  }
  if (CountOf(per_scope_, scope) >= limits_.max_used_per_scope) {
    return absl::ResourceExhaustedError(
        "too many forms were sent for this link lately; wait a few minutes and reload the page");
  }
  if (used_.size() >= limits_.max_used) {
    return absl::ResourceExhaustedError("too many forms in flight; reload the page");
  }
  used_.emplace(
      std::string(nonce),
      Used{.expires_ms = expires, .scope = std::string(scope), .client = std::string(client)});
  by_expiry_.emplace(expires, std::string(nonce));
  ++per_scope_[std::string(scope)];
  ++per_client_[std::string(client)];
  return absl::OkStatus();
}

}  // namespace llmbox::hub::activation
