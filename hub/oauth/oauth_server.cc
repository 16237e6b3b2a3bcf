#include "hub/oauth/oauth_server.h"

#include <utility>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/secrets.h"
#include "common/status.h"
#include "hub/http/client_address.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/token_endpoint.h"

namespace llmbox::hub::oauth {
namespace {

constexpr std::string_view kProtectedResourcePath = "/.well-known/oauth-protected-resource";
constexpr std::string_view kAuthorizationServerPath = "/.well-known/oauth-authorization-server";
constexpr std::string_view kOpenIdConfigurationPath = "/.well-known/openid-configuration";
constexpr std::string_view kRegisterPath = "/register";
constexpr std::string_view kTokenPath = "/token";
constexpr std::string_view kRevokePath = "/revoke";

// A well-known path, or the same with the MCP endpoint's path appended (RFC 9728 §3.1, RFC
// 8414 §3.1: "/.well-known/<name>/<path>"); the MCP endpoint is "/", so only a "/" may follow.
bool IsWellKnown(std::string_view path, std::string_view name) {
  return path == name || (absl::StartsWith(common::AsAbsl(path), common::AsAbsl(name)) &&
                          path.substr(name.size()) == "/");
}

// The client's address for limits: the one the server resolved, else the TCP peer's.
std::string ClientKey(const http::Request& request) {
  return http::AddressKey(request.client_address.empty() ? request.remote_address
                                                         : request.client_address);
}

// Browser-based clients (the MCP Inspector) call these endpoints from another origin; they
// carry no cookies, so any origin may read the answers.
void AddCors(http::Response& response) {
  response.headers.emplace_back("Access-Control-Allow-Origin", "*");
  response.headers.emplace_back("Access-Control-Expose-Headers", "WWW-Authenticate");
}

http::Response Json(int status, std::string body, bool cacheable) {
  http::Response response{
      .status = status, .headers = {{"Content-Type", "application/json"}}, .body = std::move(body)};
  if (cacheable) {
    response.headers.emplace_back("Cache-Control", "public, max-age=300");
  } else {
    response.headers.emplace_back("Cache-Control", "no-store");
    response.headers.emplace_back("Pragma", "no-cache");
  }
  return response;
}

http::Response MethodNotAllowed(std::string_view allow) {
  http::Response response =
      OAuthErrorResponse(OAuthError(kInvalidRequest, "this endpoint takes " + std::string(allow)));
  response.status = 405;
  response.headers.emplace_back("Allow", std::string(allow));
  return response;
}

bool IsJson(const http::Request& request) {
  auto type = request.Header("content-type");
  if (!type) return false;
  std::string_view value = *type;
  value = value.substr(0, value.find(';'));
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return absl::EqualsIgnoreCase(common::AsAbsl(value), "application/json");
}

}  // namespace

struct OAuthServer::State {
  State(OAuthOptions o, OAuthServerDeps d, common::Clock& c)
      : options(std::move(o)),
        deps(std::move(d)),
        clock(c),
        clients(*deps.store, *deps.cimd, clock, options),
        tokens(*deps.store, clock, options, deps.oidc_person_allowed),
        page(options,
             AuthorizePageDeps{.clients = &clients,
                               .tokens = &tokens,
                               .oidc = deps.oidc,
                               .sessions = deps.sessions,
                               .oidc_issuer = deps.oidc_issuer,
                               .api_keys = deps.sign_in_keys,
                               .csrf_key = common::HmacSha256(deps.secret, "llmbox oauth forms"),
                               .audit = deps.audit},
             clock) {}

  const OAuthOptions options;
  const OAuthServerDeps deps;
  common::Clock& clock;
  ClientRegistry clients;
  TokenService tokens;
  AuthorizePage page;
};

OAuthServer::OAuthServer(OAuthOptions options, OAuthServerDeps deps, common::Clock& clock)
    : state_(std::make_unique<State>(std::move(options), std::move(deps), clock)) {}

OAuthServer::~OAuthServer() = default;

absl::StatusOr<std::unique_ptr<OAuthServer>> OAuthServer::Create(OAuthOptions options,
                                                                 OAuthServerDeps deps,
                                                                 common::Clock& clock) {
  const std::string& issuer = options.issuer;
  const bool https = absl::StartsWith(issuer, "https://");
  if (!https && !absl::StartsWith(issuer, "http://")) {
    return absl::InvalidArgumentError(
        "auth.oauth: the issuer (hub.public_url) must be an "
        "http(s) URL, got \"" +
        issuer + "\"");
  }
  const size_t host = issuer.find("//") + 2;
  if (issuer.find('/', host) != std::string::npos ||
      issuer.find_first_of("?#", host) != std::string::npos) {
    return absl::InvalidArgumentError(
        "auth.oauth: the issuer (hub.public_url) must be an "
        "origin without a path, got \"" +
        issuer + "\"");
  }
  if (deps.store == nullptr) return absl::InvalidArgumentError("auth.oauth: no store");
  if (deps.cimd == nullptr) return absl::InvalidArgumentError("auth.oauth: no CIMD fetcher");
  if (options.sign_in == SignInMode::kOidc && (deps.oidc == nullptr || deps.sessions == nullptr)) {
    return absl::InvalidArgumentError(
        "auth.oauth.sign_in: oidc needs activation.oidc (the provider people sign in with)");
  }
  if (options.sign_in == SignInMode::kApiKey && deps.sign_in_keys == nullptr) {
    return absl::InvalidArgumentError("auth.oauth.sign_in: api_key needs the API key store");
  }
  if (deps.secret.size() < 32) {
    return absl::InvalidArgumentError("auth.oauth: the hub secret is too short");
  }
  return std::unique_ptr<OAuthServer>(new OAuthServer(std::move(options), std::move(deps), clock));
}

bool OAuthServer::Serves(std::string_view path) {
  return IsWellKnown(path, kProtectedResourcePath) || IsWellKnown(path, kAuthorizationServerPath) ||
         IsWellKnown(path, kOpenIdConfigurationPath) || path == kRegisterPath ||
         path == kTokenPath || path == kRevokePath || AuthorizePage::Serves(path);
}

void OAuthServer::Handle(const http::Request& request, http::Responder& responder) {
  State& s = *state_;
  const std::string_view path = request.path;
  if (AuthorizePage::Serves(path)) return s.page.Handle(request, responder);

  http::Response response;
  if (request.method == "OPTIONS") {
    // CORS preflight for the endpoints browser-based clients call.
    response = {.status = 204,
                .headers = {{"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                            {"Access-Control-Allow-Headers",
                             "Content-Type, Authorization, MCP-Protocol-Version"},
                            {"Access-Control-Max-Age", "600"}}};
  } else if (IsWellKnown(path, kProtectedResourcePath)) {
    response = request.method == "GET" || request.method == "HEAD"
                   ? Json(200, ProtectedResourceMetadata(), /*cacheable=*/true)
                   : MethodNotAllowed("GET");
  } else if (IsWellKnown(path, kAuthorizationServerPath) ||
             IsWellKnown(path, kOpenIdConfigurationPath)) {
    response = request.method == "GET" || request.method == "HEAD"
                   ? Json(200, AuthorizationServerMetadata(), /*cacheable=*/true)
                   : MethodNotAllowed("GET");
  } else if (path == kRegisterPath) {
    if (request.method != "POST") {
      response = MethodNotAllowed("POST");
    } else if (!IsJson(request)) {
      response = OAuthErrorResponse(OAuthError(
          kInvalidClientMetadata, "send the registration as Content-Type: application/json"));
    } else if (auto registered = s.clients.Register(request.body, ClientKey(request));
               registered.ok()) {
      response = Json(201, *std::move(registered), /*cacheable=*/false);
    } else {
      if (OAuthErrorCode(registered.status()) == kServerError) {
        spdlog::warn("oauth: registration failed: {}",
                     common::AsStd(registered.status().message()));
      }
      response = OAuthErrorResponse(registered.status());
    }
  } else if (path == kTokenPath) {
    response = HandleTokenRequest(request, s.clients, s.tokens);
  } else if (path == kRevokePath) {
    response = HandleRevokeRequest(request, s.clients, s.tokens);
  } else {
    response = OAuthErrorResponse(OAuthError(kInvalidRequest, "no such endpoint"));
    response.status = 404;
  }
  AddCors(response);
  responder.Respond(std::move(response));
}

absl::StatusOr<auth::Principal> OAuthServer::Authenticate(
    std::optional<std::string_view> authorization) {
  State& s = *state_;
  if (!authorization) {
    return absl::UnauthenticatedError(
        "authorization required: sign in through this hub's OAuth server (" + s.options.issuer +
        std::string(kProtectedResourcePath) + ")" +
        (s.deps.api_keys != nullptr ? " or send Authorization: Bearer <llmbox API key>" : ""));
  }
  const std::optional<std::string_view> credential = common::BearerCredential(*authorization);
  if (!credential.has_value()) {
    return absl::UnauthenticatedError("the Authorization header must be Bearer <token>");
  }
  if (LooksLikeAccessToken(*credential)) return s.tokens.Authenticate(*credential);
  if (s.deps.api_keys != nullptr) return s.deps.api_keys->Authenticate(authorization);
  return absl::UnauthenticatedError("this access token is unknown, expired or revoked");
}

std::string OAuthServer::WwwAuthenticate() const {
  return "Bearer resource_metadata=\"" + state_->options.issuer +
         std::string(kProtectedResourcePath) + "\", scope=\"" + std::string(kScope) + "\"";
}

std::string OAuthServer::ProtectedResourceMetadata() const {
  const std::string& issuer = state_->options.issuer;
  return nlohmann::json{{"resource", issuer},
                        {"authorization_servers", {issuer}},
                        {"scopes_supported", {kScope}},
                        {"bearer_methods_supported", {"header"}},
                        {"resource_name", "llmbox"}}
      .dump();
}

std::string OAuthServer::AuthorizationServerMetadata() const {
  const OAuthOptions& o = state_->options;
  const std::string& issuer = o.issuer;
  const nlohmann::json auth_methods = {"none", "client_secret_post", "client_secret_basic"};
  return nlohmann::json{{"issuer", issuer},
                        {"authorization_endpoint", issuer + "/authorize"},
                        {"token_endpoint", issuer + std::string(kTokenPath)},
                        {"registration_endpoint", issuer + std::string(kRegisterPath)},
                        {"revocation_endpoint", issuer + std::string(kRevokePath)},
                        {"scopes_supported", {kScope}},
                        {"response_types_supported", {"code"}},
                        {"response_modes_supported", {"query"}},
                        {"grant_types_supported", {"authorization_code", "refresh_token"}},
                        {"code_challenge_methods_supported", {"S256"}},
                        {"token_endpoint_auth_methods_supported", auth_methods},
                        {"revocation_endpoint_auth_methods_supported", auth_methods},
                        {"authorization_response_iss_parameter_supported", true},
                        {"client_id_metadata_document_supported", o.client_id_metadata_documents}}
      .dump();
}

void OAuthServer::Prune() {
  State& s = *state_;
  auto pruned = s.deps.store->PruneOAuth(common::ToUnixMillis(s.clock.Now()));
  if (!pruned.ok()) {
    spdlog::warn("oauth: pruning expired codes and tokens failed: {}",
                 common::AsStd(pruned.status().message()));
  } else if (*pruned > 0) {
    spdlog::debug("oauth: pruned {} expired rows", *pruned);
  }
}

}  // namespace llmbox::hub::oauth
