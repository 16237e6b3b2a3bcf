// Placeholders for the parts of hub/oauth being built on other branches; each goes when its
// branch merges. Everything here refuses.
#include "hub/oauth/authorize_page.h"
#include "hub/oauth/clients.h"
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
