// hub/activation/csrf.cc
#include "hub/activation/csrf.h"

#include <charconv>
#include <utility>

#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::activation {

CsrfTokens::CsrfTokens(std::string key, common::Clock& clock, std::chrono::seconds ttl)
    : key_(std::move(key)), clock_(clock), ttl_(ttl) {
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

absl::Status CsrfTokens::Redeem(std::string_view token, std::string_view browser_id,
                                std::string_view scope) {
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
  std::erase_if(used_, [&](const auto& entry) { return entry.second <= now; });
  if (used_.size() >= kMaxUsed) {
    return absl::PermissionDeniedError("too many forms in flight; reload the page");
  }
  if (!used_.emplace(std::string(nonce), expires).second) {
    return absl::PermissionDeniedError("the form was sent already");
  }
  return absl::OkStatus();
}

}  // namespace llmbox::hub::activation
