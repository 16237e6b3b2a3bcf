// DELETE THIS FILE WHEN MERGING the oauth-clients and oauth-tokens branches (their
// hub/oauth/clients.cc, redirect_uri.cc and tokens.cc define these functions for real; the
// link then fails with duplicate definitions until this file is gone).
//
// Stand-ins for the parts of hub/oauth the authorize page calls, so that its unit tests
// (oauth_authorize_test.cc) link and run on a base without them: pre-registered clients only,
// exact redirect URI match, a random code that nothing can exchange.
#include <optional>
#include <string>
#include <vector>

#include "common/secrets.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/redirect_uri.h"
#include "hub/oauth/tokens.h"

namespace llmbox::hub::oauth {

struct ClientRegistry::State {
  const OAuthOptions& options;
};

ClientRegistry::ClientRegistry(store::Store&, CimdFetcher&, common::Clock&,
                               const OAuthOptions& options)
    : state_(std::make_unique<State>(State{options})) {}
ClientRegistry::~ClientRegistry() = default;

absl::StatusOr<Client> ClientRegistry::Find(std::string_view client_id) {
  for (const auto& c : state_->options.clients) {
    if (c.client_id != client_id) continue;
    return Client{.client_id = c.client_id,
                  .kind = ClientKind::kPreregistered,
                  .name = c.name,
                  .redirect_uris = c.redirect_uris,
                  .auth_method = c.client_secret.empty() ? "none" : "client_secret_post",
                  .secret_hash = c.client_secret.empty() ? "" : common::Sha256Hex(c.client_secret)};
  }
  return OAuthError(kInvalidClient, "unknown client");
}

absl::StatusOr<std::string> ClientRegistry::Register(std::string_view, std::string_view) {
  return absl::UnimplementedError("registration is on the oauth-clients branch");
}

absl::StatusOr<UriParts> ParseRedirectUri(std::string_view uri) {
  UriParts parts;
  const auto colon = uri.find("://");
  if (colon == std::string_view::npos) return absl::InvalidArgumentError("not a URI");
  parts.scheme = std::string(uri.substr(0, colon));
  std::string_view rest = uri.substr(colon + 3);
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  parts.path_and_query = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
  } else {
    const auto port = authority.rfind(':');
    host = authority.substr(0, port);
    authority.remove_prefix(port == std::string_view::npos ? authority.size() : port);
  }
  parts.host = std::string(host);
  if (authority.size() > 1 && authority.front() == ':') {
    parts.port = std::stoi(std::string(authority.substr(1)));
  }
  return parts;
}

std::optional<std::string> MatchRedirectUri(const std::vector<std::string>& registered,
                                            std::string_view presented) {
  for (const auto& uri : registered) {
    if (uri == presented) return uri;
  }
  return std::nullopt;
}

TokenService::TokenService(store::Store& store, common::Clock& clock, const OAuthOptions& options)
    : store_(store), clock_(clock), options_(options) {}

absl::StatusOr<std::string> TokenService::IssueCode(const CodeRequest&) {
  auto code = common::RandomToken(32);
  if (!code.ok()) return code.status();
  return std::string(kCodePrefix) + *code;
}

absl::StatusOr<TokenResponse> TokenService::ExchangeCode(const Client&, std::string_view,
                                                         std::string_view, std::string_view,
                                                         std::optional<std::string_view>) {
  return absl::UnimplementedError("the code exchange is on the oauth-tokens branch");
}

absl::StatusOr<auth::Principal> TokenService::Authenticate(std::string_view) {
  return absl::UnimplementedError("tokens are on the oauth-tokens branch");
}

}  // namespace llmbox::hub::oauth
