// Placeholders for the parts of hub/oauth being built on other branches; each goes when its
// branch merges. Everything here refuses.
#include "hub/oauth/authorize_page.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/redirect_uri.h"
#include "hub/oauth/token_endpoint.h"
#include "hub/oauth/tokens.h"

namespace llmbox::hub::oauth {
namespace {
absl::Status NotYet() { return absl::UnimplementedError("oauth: not built yet"); }
http::Response NotYetResponse() {
  return {.status = 501, .headers = {{"Content-Type", "text/plain"}}, .body = "not built yet\n"};
}
class NoCimd final : public CimdFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string&) override { return NotYet(); }
};
}  // namespace

// clients
std::unique_ptr<CimdFetcher> MakeCurlCimdFetcher(std::chrono::milliseconds, std::size_t, bool) {
  return std::make_unique<NoCimd>();
}
struct ClientRegistry::State {};
ClientRegistry::ClientRegistry(store::Store&, CimdFetcher&, common::Clock&, const OAuthOptions&)
    : state_(std::make_unique<State>()) {}
ClientRegistry::~ClientRegistry() = default;
absl::StatusOr<std::string> ClientRegistry::Register(std::string_view, std::string_view) {
  return NotYet();
}
absl::StatusOr<Client> ClientRegistry::Find(std::string_view) { return NotYet(); }
absl::Status ClientRegistry::AuthenticateClient(const Client&, std::optional<std::string_view>) {
  return NotYet();
}
void ClientRegistry::MarkUsed(const Client&) {}

// tokens
bool LooksLikeAccessToken(std::string_view credential) {
  return credential.substr(0, kAccessTokenPrefix.size()) == kAccessTokenPrefix;
}
TokenService::TokenService(store::Store& store, common::Clock& clock, const OAuthOptions& options)
    : store_(store), clock_(clock), options_(options) {}
absl::StatusOr<std::string> TokenService::IssueCode(const CodeRequest&) { return NotYet(); }
absl::StatusOr<TokenResponse> TokenService::ExchangeCode(const Client&, std::string_view,
                                                         std::string_view, std::string_view,
                                                         std::optional<std::string_view>) {
  return NotYet();
}
absl::StatusOr<TokenResponse> TokenService::Refresh(const Client&, std::string_view,
                                                    std::optional<std::string_view>,
                                                    std::optional<std::string_view>) {
  return NotYet();
}
absl::Status TokenService::Revoke(const Client&, std::string_view) { return NotYet(); }
absl::StatusOr<auth::Principal> TokenService::Authenticate(std::string_view) {
  return absl::UnauthenticatedError("oauth: not built yet");
}
http::Response HandleTokenRequest(const http::Request&, ClientRegistry&, TokenService&) {
  return NotYetResponse();
}
http::Response HandleRevokeRequest(const http::Request&, ClientRegistry&, TokenService&) {
  return NotYetResponse();
}

// authorize
struct AuthorizePage::State {};
AuthorizePage::AuthorizePage(const OAuthOptions&, AuthorizePageDeps, common::Clock&)
    : state_(std::make_unique<State>()) {}
AuthorizePage::~AuthorizePage() = default;
bool AuthorizePage::Serves(std::string_view path) {
  return path == "/authorize" || path.substr(0, 11) == "/authorize/";
}
void AuthorizePage::Handle(const http::Request&, http::Responder& responder) {
  responder.Respond(NotYetResponse());
}

}  // namespace llmbox::hub::oauth
