// hub/oauth/oauth_server.h
//
// The hub as an OAuth 2.1 authorization server for MCP clients, and the resource-server check
// of the MCP endpoint. Knows nothing of boxes: it turns a Bearer access token into an
// auth::Principal; the MCP tools do the rest.
//
//   GET  /.well-known/oauth-protected-resource       RFC 9728 (also with the MCP path "/")
//   GET  /.well-known/oauth-authorization-server     RFC 8414
//   GET  /.well-known/openid-configuration           the same document (clients try both)
//   POST /register                                   RFC 7591 (clients.h)
//   GET|POST /authorize...                           authorize_page.h
//   POST /token                                      authorization_code, refresh_token
//   POST /revoke                                     RFC 7009
//
//   OAuthServer oauth(options, deps, clock);
//   if (OAuthServer::Serves(request.path)) return oauth.Handle(request, *responder);
//   mcp_options.authenticate = [&](auto header) { return oauth.Authenticate(header); };
//
// Token and registration endpoints take application/x-www-form-urlencoded (token, revoke) or
// JSON (register), answer JSON with Cache-Control: no-store, and RFC 6749 errors (errors.h).
// Client authentication at /token and /revoke: client_secret_post or client_secret_basic for
// confidential clients, client_id alone for public ones. CORS: the metadata, token,
// registration and revocation endpoints answer browser-based clients (any origin, no
// credentials).
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/audit/audit_log.h"
#include "hub/auth/api_key_auth.h"
#include "hub/auth/principal.h"
#include "hub/http/server.h"
#include "hub/oauth/authorize_page.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/options.h"
#include "hub/oauth/tokens.h"
#include "hub/store/store.h"

namespace llmbox::hub::oauth {

struct OAuthServerDeps {
  store::Store* store = nullptr;  // required
  CimdFetcher* cimd = nullptr;    // required when options.client_id_metadata_documents
  // Sign-in (authorize_page.h): the OIDC client, session cookie and issuer for kOidc.
  activation::OidcClient* oidc = nullptr;
  const activation::SessionCookie* sessions = nullptr;
  std::string oidc_issuer;
  // Whether an OIDC-signed-in person (by verified email) may still sign in: the activation
  // module's allow-list, asked at every use of their grants (tokens.h). Unset: not checked.
  PersonAllowed oidc_person_allowed;
  // Authenticate accepts API keys beside OAuth tokens when this is set (auth.api_keys not off).
  const auth::ApiKeyAuthenticator* api_keys = nullptr;
  // The key sign-in page (SignInMode::kApiKey) checks the key a person types with this one;
  // required in that mode, whether or not MCP accepts keys.
  const auth::ApiKeyAuthenticator* sign_in_keys = nullptr;
  std::string secret;  // >= 32 secret bytes (the hub's session key): CSRF keys derive from it
  // Where consents are recorded (oauth.consent); null: nowhere. Must outlive the server.
  audit::AuditLog* audit = nullptr;
};

class OAuthServer {
 public:
  // InvalidArgument when the options cannot work (no issuer, an issuer with a path, kOidc
  // without an OIDC client). Everything in `deps` and `clock` must outlive the server.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OAuthServer>> Create(OAuthOptions options,
                                                                           OAuthServerDeps deps,
                                                                           common::Clock& clock);
  ~OAuthServer();

  // Whether `path` is one of the paths above.
  static bool Serves(std::string_view path);
  void Handle(const http::Request& request, http::Responder& responder);

  // The resource server's check for the MCP endpoint: the principal of the Authorization
  // header's Bearer access token, or of an API key when deps.api_keys is set. Unauthenticated
  // when absent or not valid (expired, revoked, another resource's).
  [[nodiscard]] absl::StatusOr<auth::Principal> Authenticate(
      std::optional<std::string_view> authorization);

  // The WWW-Authenticate value of a 401 from the MCP endpoint: Bearer with resource_metadata
  // and scope (for mcp::EndpointOptions::www_authenticate, which adds error="invalid_token"
  // when the request carried a credential).
  std::string WwwAuthenticate() const;

  // The metadata documents (JSON).
  std::string ProtectedResourceMetadata() const;
  std::string AuthorizationServerMetadata() const;

  // Deletes expired codes, tokens, grants and unused clients (the hub calls it periodically).
  void Prune();

 private:
  OAuthServer(OAuthOptions options, OAuthServerDeps deps, common::Clock& clock);
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace llmbox::hub::oauth
