// PLACEHOLDER on the tokens branch only, so that the token endpoint's tests link: pre-registered
// clients and nothing else. The clients engineer's hub/oauth/clients.cc replaces this file
// whole at the merge (take theirs).
#include "hub/oauth/clients.h"

#include "common/secrets.h"
#include "hub/oauth/errors.h"

namespace llmbox::hub::oauth {

struct ClientRegistry::State {
  const OAuthOptions& options;
};

ClientRegistry::ClientRegistry(store::Store&, CimdFetcher&, common::Clock&,
                               const OAuthOptions& options)
    : state_(std::make_unique<State>(State{options})) {}

ClientRegistry::~ClientRegistry() = default;

absl::StatusOr<std::string> ClientRegistry::Register(std::string_view, std::string_view) {
  return absl::UnimplementedError("oauth: registration is the clients branch's");
}

absl::StatusOr<Client> ClientRegistry::Find(std::string_view client_id) {
  for (const PreregisteredClient& c : state_->options.clients) {
    if (c.client_id != client_id) continue;
    return Client{.client_id = c.client_id,
                  .kind = ClientKind::kPreregistered,
                  .name = c.name,
                  .redirect_uris = c.redirect_uris,
                  .auth_method = c.client_secret.empty() ? "none" : "client_secret_basic",
                  .secret_hash = c.client_secret.empty() ? "" : common::Sha256Hex(c.client_secret)};
  }
  return OAuthError(kInvalidClient, "unknown client");
}

absl::Status ClientRegistry::AuthenticateClient(const Client& client,
                                                std::optional<std::string_view> secret) {
  if (client.secret_hash.empty()) {
    if (secret.has_value()) return OAuthError(kInvalidClient, "a public client has no secret");
    return absl::OkStatus();
  }
  if (!secret.has_value() ||
      !common::ConstantTimeEquals(common::Sha256Hex(*secret), client.secret_hash)) {
    return OAuthError(kInvalidClient, "wrong client secret");
  }
  return absl::OkStatus();
}

void ClientRegistry::MarkUsed(const Client&) {}

}  // namespace llmbox::hub::oauth
