// hub/activation/oidc.cc
#include "hub/activation/oidc.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"
#include "hub/activation/page_chrome.h"  // FormEncode

namespace llmbox::hub::activation {

struct ProviderOidcClient::Provider {
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string jwks_uri;
  bool client_secret_post = false;  // else client_secret_basic
  std::vector<std::string> algs;    // ours, intersected with the provider's
};

namespace {

using Json = nlohmann::json;
using common::QuoteForMessage;

constexpr size_t kMaxReturnTo = 2048;
constexpr size_t kMaxCode = 4096;
constexpr size_t kMaxState = 256;

std::string Lower(std::string_view text) {
  return absl::AsciiStrToLower({text.data(), text.size()});
}

// The host of an http(s) URL, without brackets or port; "" when it has none.
std::string HostOf(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string_view::npos) return "";  // no userinfo in our URLs
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    return close == std::string_view::npos ? "" : std::string(rest.substr(1, close - 1));
  }
  return Lower(rest.substr(0, rest.find(':')));
}

bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// https, or http on loopback when the issuer itself is on loopback (tests).
[[nodiscard]] absl::Status CheckUrl(std::string_view url, const std::string& what,
                                    bool loopback_issuer) {
  const std::string host = HostOf(url);
  const bool https = url.rfind("https://", 0) == 0;
  const bool http = url.rfind("http://", 0) == 0;
  if (host.empty() || (!https && !http)) {
    return absl::FailedPreconditionError(
        absl::StrCat("oidc: ", what, " ", QuoteForMessage(url, 200), " is not an http(s) URL"));
  }
  if (!https && !(loopback_issuer && IsLoopback(host))) {
    return absl::FailedPreconditionError(
        absl::StrCat("oidc: ", what, " ", QuoteForMessage(url, 200),
                     " must be https (plain http is allowed only for a provider on loopback)"));
  }
  return absl::OkStatus();
}

std::string Params(const std::vector<std::pair<std::string_view, std::string_view>>& params) {
  std::string out;
  for (const auto& [name, value] : params) {
    absl::StrAppend(&out, out.empty() ? "" : "&", common::AsAbsl(name), "=", FormEncode(value));
  }
  return out;
}

[[nodiscard]] absl::StatusOr<Json> ParseJson(std::string_view body, const std::string& what) {
  Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::FailedPreconditionError(absl::StrCat("oidc: ", what, " is not a JSON object"));
  }
  return json;
}

std::string StringMember(const Json& json, const char* name) {
  const auto it = json.find(name);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A string array member; `fallback` when absent (the defaults of OpenID Connect Discovery).
std::vector<std::string> StringList(const Json& json, const char* name,
                                    std::vector<std::string> fallback) {
  const auto it = json.find(name);
  if (it == json.end() || !it->is_array()) return fallback;
  std::vector<std::string> out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool IsLocalPath(std::string_view path) {
  if (path.empty() || path.size() > kMaxReturnTo || path.front() != '/') return false;
  if (path.size() > 1 && (path[1] == '/' || path[1] == '\\')) return false;  // //host
  return std::all_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '\\';
  });
}

}  // namespace

EmailAllowlist::EmailAllowlist(const std::vector<std::string>& emails,
                               const std::vector<std::string>& domains) {
  for (const auto& e : emails) emails_.push_back(Lower(e));
  for (const auto& d : domains) domains_.push_back(Lower(d));
}

bool EmailAllowlist::Allows(std::string_view email) const {
  const std::string lower = Lower(email);
  const size_t at = lower.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == lower.size()) return false;
  return Contains(emails_, lower) || Contains(domains_, std::string_view(lower).substr(at + 1));
}

ProviderOidcClient::ProviderOidcClient(OidcSettings settings, HttpFetcher& http,
                                       common::Clock& clock)
    : settings_(std::move(settings)),
      allowlist_(settings_.allowed_emails, settings_.allowed_domains),
      http_(http),
      clock_(clock) {}

absl::StatusOr<std::unique_ptr<ProviderOidcClient>> ProviderOidcClient::Create(
    OidcSettings settings, HttpFetcher& http, common::Clock& clock) {
  if (settings.issuer.empty() || settings.client_id.empty() || settings.redirect_uri.empty()) {
    return absl::InvalidArgumentError("oidc: issuer, client_id and redirect_uri are all required");
  }
  const bool loopback = IsLoopback(HostOf(settings.issuer));
  if (absl::Status s = CheckUrl(settings.issuer, "issuer", loopback); !s.ok()) {
    return absl::InvalidArgumentError(s.message());
  }
  if (settings.max_pending_logins == 0) settings.max_pending_logins = 1;
  if (settings.max_pending_logins_per_address == 0) settings.max_pending_logins_per_address = 1;
  return std::unique_ptr<ProviderOidcClient>(
      new ProviderOidcClient(std::move(settings), http, clock));
}

absl::StatusOr<std::shared_ptr<const ProviderOidcClient::Provider>> ProviderOidcClient::Discover() {
  std::lock_guard lock(fetch_mu_);
  if (provider_) return provider_;
  std::string issuer = settings_.issuer;
  while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
  const std::string url = issuer + "/.well-known/openid-configuration";
  LLMBOX_ASSIGN_OR_RETURN(HttpResponse response, http_.Get(url));
  if (response.status != 200) {
    return absl::UnavailableError(absl::StrCat("oidc: discovery at ", url, " answered HTTP ",
                                               response.status, "; check activation.oidc.issuer"));
  }
  LLMBOX_ASSIGN_OR_RETURN(Json doc, ParseJson(response.body, "the discovery document"));
  const std::string named = StringMember(doc, "issuer");
  if (named != settings_.issuer) {
    return absl::FailedPreconditionError(
        absl::StrCat("oidc: the provider at ", url, " names itself ", QuoteForMessage(named, 200),
                     ", not the configured issuer ", QuoteForMessage(settings_.issuer, 200),
                     "; set activation.oidc.issuer to exactly what the provider says"));
  }
  auto provider = std::make_shared<Provider>();
  provider->authorization_endpoint = StringMember(doc, "authorization_endpoint");
  provider->token_endpoint = StringMember(doc, "token_endpoint");
  provider->jwks_uri = StringMember(doc, "jwks_uri");
  const bool loopback = IsLoopback(HostOf(settings_.issuer));
  LLMBOX_RETURN_IF_ERROR(
      CheckUrl(provider->authorization_endpoint, "authorization_endpoint", loopback));
  LLMBOX_RETURN_IF_ERROR(CheckUrl(provider->token_endpoint, "token_endpoint", loopback));
  LLMBOX_RETURN_IF_ERROR(CheckUrl(provider->jwks_uri, "jwks_uri", loopback));
  const auto algs = StringList(doc, "id_token_signing_alg_values_supported", {"RS256"});
  for (const char* alg : {"RS256", "ES256"}) {
    if (Contains(algs, alg)) provider->algs.push_back(alg);
  }
  if (provider->algs.empty()) {
    return absl::FailedPreconditionError(
        "oidc: the provider signs ID tokens with neither RS256 nor ES256, the only algorithms "
        "llmbox accepts");
  }
  const auto methods =
      StringList(doc, "token_endpoint_auth_methods_supported", {"client_secret_basic"});
  if (!Contains(methods, "client_secret_basic")) {
    if (!Contains(methods, "client_secret_post")) {
      return absl::FailedPreconditionError(
          "oidc: the token endpoint supports neither client_secret_basic nor "
          "client_secret_post");
    }
    provider->client_secret_post = true;
  }
  const auto pkce = StringList(doc, "code_challenge_methods_supported", {"S256"});
  if (!Contains(pkce, "S256")) {
    return absl::FailedPreconditionError(
        "oidc: the provider does not support PKCE with S256 (code_challenge_methods_supported)");
  }
  provider_ = provider;
  return provider_;
}

absl::StatusOr<std::shared_ptr<const JwkSet>> ProviderOidcClient::KeysFor(const Provider& provider,
                                                                          std::string_view kid) {
  std::lock_guard lock(fetch_mu_);
  const auto now = clock_.SteadyNow();
  const bool have_kid = keys_ && (kid.empty() || keys_->Has(kid));
  const bool may_refetch =
      !keys_fetched_ || now - *keys_fetched_ >= settings_.jwks_refetch_interval;
  if (have_kid || (keys_ && !may_refetch)) return keys_;
  // Counted before the request, so that a provider that fails is not asked again at once.
  keys_fetched_ = now;
  LLMBOX_ASSIGN_OR_RETURN(HttpResponse response, http_.Get(provider.jwks_uri));
  if (response.status != 200) {
    return absl::UnavailableError(
        absl::StrCat("oidc: the JWKS at ", provider.jwks_uri, " answered HTTP ", response.status));
  }
  LLMBOX_ASSIGN_OR_RETURN(JwkSet keys, JwkSet::Parse(response.body));
  keys_ = std::make_shared<const JwkSet>(std::move(keys));
  return keys_;
}

absl::StatusOr<LoginStart> ProviderOidcClient::BeginLogin(std::string return_to,
                                                          std::string_view client, LoginPool pool) {
  if (!IsLocalPath(return_to)) {
    return absl::InvalidArgumentError(
        "oidc: return_to must be a local path starting with a single '/' (at most 2048 "
        "printable characters)");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::shared_ptr<const Provider> provider, Discover());
  LLMBOX_ASSIGN_OR_RETURN(std::string state, common::RandomToken(32));
  LLMBOX_ASSIGN_OR_RETURN(std::string nonce, common::RandomToken(32));
  LLMBOX_ASSIGN_OR_RETURN(std::string verifier, common::RandomToken(32));
  const std::string challenge = common::Base64UrlEncode(common::Sha256(verifier));
  const std::string& endpoint = provider->authorization_endpoint;
  LoginStart start;
  start.state = state;
  start.authorize_url = absl::StrCat(endpoint, endpoint.find('?') == std::string::npos ? "?" : "&",
                                     Params({{"response_type", "code"},
                                             {"client_id", settings_.client_id},
                                             {"redirect_uri", settings_.redirect_uri},
                                             {"scope", "openid email"},
                                             {"state", state},
                                             {"nonce", nonce},
                                             {"code_challenge", challenge},
                                             {"code_challenge_method", "S256"}}));

  std::lock_guard lock(mu_);
  DropExpiredLocked();
  Pool& mine = PoolLocked(pool);
  // A client at its cap makes room among its own sign-ins of this pool only (a person who
  // started a few and abandoned them can still start one more); nobody else's is ever dropped
  // for it.
  if (auto count = mine.per_client.find(client);
      count != mine.per_client.end() && count->second >= settings_.max_pending_logins_per_address) {
    for (const std::string& queued : mine.order) {
      auto it = pending_.find(queued);
      if (it->second.client == client) {
        EraseLocked(it);
        break;
      }
    }
  }
  if (mine.order.size() >= settings_.max_pending_logins) {
    return absl::ResourceExhaustedError(absl::StrCat("oidc: too many sign-ins are in progress (",
                                                     mine.order.size(),
                                                     "); try again in a few minutes"));
  }
  mine.order.push_back(state);
  ++mine.per_client[std::string(client)];
  pending_.emplace(std::move(state),
                   Pending{std::move(verifier), std::move(nonce), std::move(return_to),
                           clock_.SteadyNow() + settings_.login_ttl, std::prev(mine.order.end()),
                           std::string(client), pool});
  return start;
}

void ProviderOidcClient::EraseLocked(std::map<std::string, Pending, std::less<>>::iterator it) {
  Pool& pool = PoolLocked(it->second.pool);
  auto count = pool.per_client.find(it->second.client);
  LLMBOX_CHECK(count != pool.per_client.end(), "every pending login is counted for its client");
  if (--count->second == 0) pool.per_client.erase(count);
  pool.order.erase(it->second.order);
  pending_.erase(it);
}

void ProviderOidcClient::DropExpiredLocked() {
  const auto now = clock_.SteadyNow();
  for (Pool& pool : pools_) {
    while (!pool.order.empty()) {
      const auto it = pending_.find(pool.order.front());
      LLMBOX_CHECK(it != pending_.end(), "every queued state has a pending login");
      if (it->second.expires > now) break;
      EraseLocked(it);
    }
  }
}

std::optional<ProviderOidcClient::Pending> ProviderOidcClient::TakePending(std::string_view state) {
  std::lock_guard lock(mu_);
  DropExpiredLocked();
  const auto it = pending_.find(state);
  if (it == pending_.end()) return std::nullopt;
  Pending pending = it->second;
  EraseLocked(it);
  return pending;
}

size_t ProviderOidcClient::PendingLogins() {
  std::lock_guard lock(mu_);
  DropExpiredLocked();
  return pending_.size();
}

size_t ProviderOidcClient::PendingLogins(LoginPool pool) {
  std::lock_guard lock(mu_);
  DropExpiredLocked();
  return PoolLocked(pool).order.size();
}

absl::StatusOr<std::string> ProviderOidcClient::ExchangeCode(const Provider& provider,
                                                             std::string_view code,
                                                             const Pending& pending) {
  std::vector<std::pair<std::string_view, std::string_view>> form = {
      {"grant_type", "authorization_code"},
      {"code", code},
      {"redirect_uri", settings_.redirect_uri},
      {"code_verifier", pending.verifier}};
  std::vector<std::string> headers;
  if (provider.client_secret_post) {
    form.emplace_back("client_id", settings_.client_id);
    form.emplace_back("client_secret", settings_.client_secret);
  } else {
    // RFC 6749 §2.3.1: both parts are form-encoded before base64.
    headers.push_back("Authorization: Basic " +
                      absl::Base64Escape(FormEncode(settings_.client_id) + ":" +
                                         FormEncode(settings_.client_secret)));
  }
  LLMBOX_ASSIGN_OR_RETURN(HttpResponse response,
                          http_.PostForm(provider.token_endpoint, Params(form), headers));
  Json reply = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (response.status != 200) {
    const bool described = reply.is_object();
    return absl::UnauthenticatedError(absl::StrCat(
        "oidc: the token endpoint refused the code (HTTP ", response.status,
        described ? ", " + QuoteForMessage(StringMember(reply, "error")) : std::string(),
        described && reply.contains("error_description")
            ? ": " + QuoteForMessage(StringMember(reply, "error_description"), 200)
            : std::string(),
        "); check activation.oidc.client_id and client_secret_file, then sign in again"));
  }
  if (!reply.is_object() || StringMember(reply, "id_token").empty()) {
    return absl::FailedPreconditionError(
        "oidc: the token endpoint's answer has no id_token (was the scope openid granted?)");
  }
  return StringMember(reply, "id_token");
}

absl::StatusOr<SignedIn> ProviderOidcClient::CompleteLogin(std::string_view state,
                                                           std::string_view code) {
  if (state.empty() || state.size() > kMaxState) {
    return absl::InvalidArgumentError("oidc: the callback has no usable state parameter");
  }
  if (code.empty() || code.size() > kMaxCode) {
    return absl::InvalidArgumentError(absl::StrCat("oidc: the callback's code must be 1..",
                                                   kMaxCode, " characters, got ", code.size()));
  }
  std::optional<Pending> pending = TakePending(state);
  if (!pending) {
    return absl::UnauthenticatedError(
        "oidc: this sign-in is unknown, already used or expired; start it again from the "
        "activation link");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::shared_ptr<const Provider> provider, Discover());
  LLMBOX_ASSIGN_OR_RETURN(std::string id_token, ExchangeCode(*provider, code, *pending));
  LLMBOX_ASSIGN_OR_RETURN(JwsHeader header, PeekJwsHeader(id_token));
  LLMBOX_ASSIGN_OR_RETURN(std::shared_ptr<const JwkSet> keys, KeysFor(*provider, header.kid));
  IdTokenExpectations expect{settings_.issuer, settings_.client_id, pending->nonce, provider->algs};
  LLMBOX_ASSIGN_OR_RETURN(IdTokenClaims claims, VerifyIdToken(id_token, *keys, expect, clock_));
  SignedIn out{Lower(claims.email), claims.subject, std::move(pending->return_to)};
  if (!allowlist_.Allows(out.email)) {
    return absl::PermissionDeniedError(
        absl::StrCat("oidc: ", QuoteForMessage(out.email, 200),
                     " is not allowed to sign in here (not in activation.oidc.allowed_emails or "
                     "allowed_domains)"));
  }
  return out;
}

}  // namespace llmbox::hub::activation
