#include "hub/oauth/token_endpoint.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

#include "common/absl_compat.h"
#include "common/status.h"
#include "hub/activation/page.h"
#include "hub/activation/page_chrome.h"
#include "hub/http/client_address.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/form.h"

namespace llmbox::hub::oauth {
namespace {

constexpr std::string_view kBasic = "basic ";
// A Basic header holds an id and a secret, each a few hundred bytes at most.
constexpr std::size_t kMaxBasicBytes = 2048;

http::Response WithStatus(http::Response response, int status) {
  response.status = status;
  return response;
}

// The refusal of a request that is not a POST of a form, or nullopt.
std::optional<http::Response> RefuseShape(const http::Request& request) {
  if (request.method != "POST") {
    http::Response response =
        WithStatus(OAuthErrorResponse(OAuthError(kInvalidRequest, "use POST")), 405);
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  std::string_view type = request.Header("content-type").value_or("");
  type = type.substr(0, type.find(';'));
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(common::AsAbsl(type)),
                              "application/x-www-form-urlencoded")) {
    return WithStatus(OAuthErrorResponse(OAuthError(
                          kInvalidRequest, "the body must be application/x-www-form-urlencoded")),
                      415);
  }
  return std::nullopt;
}

struct Credentials {
  std::string client_id;
  std::optional<std::string> secret;
};

// RFC 6749 §2.3.1: client_secret_basic (an Authorization: Basic header of the form-encoded
// id and secret), client_secret_post (client_id and client_secret in the form), or, for a
// public client, client_id alone. Never two methods at once.
absl::StatusOr<Credentials> ReadCredentials(const http::Request& request, const Form& form) {
  Credentials credentials;
  const std::optional<std::string> form_id = form.Get("client_id");
  if (std::optional<std::string_view> header = request.Header("authorization")) {
    if (header->size() <= kBasic.size() || header->size() > kMaxBasicBytes ||
        !absl::StartsWithIgnoreCase(common::AsAbsl(*header), common::AsAbsl(kBasic))) {
      return OAuthError(kInvalidClient, "client authentication must be HTTP Basic");
    }
    std::string decoded;
    if (!absl::Base64Unescape(common::AsAbsl(header->substr(kBasic.size())), &decoded)) {
      return OAuthError(kInvalidClient, "the Basic credentials are not base64");
    }
    const std::size_t colon = decoded.find(':');
    if (colon == std::string::npos || colon == 0) {
      return OAuthError(kInvalidClient, "the Basic credentials must be client_id:client_secret");
    }
    if (form.Has("client_secret")) {
      return OAuthError(kInvalidRequest,
                        "use one client authentication method: Basic or client_secret, not both");
    }
    credentials.client_id = activation::FormDecode(std::string_view(decoded).substr(0, colon));
    credentials.secret = activation::FormDecode(std::string_view(decoded).substr(colon + 1));
    if (form_id.has_value() && *form_id != credentials.client_id) {
      return OAuthError(kInvalidRequest, "client_id differs from the Basic credentials' client");
    }
    return credentials;
  }
  if (!form_id.has_value()) return OAuthError(kInvalidRequest, "client_id is required");
  credentials.client_id = *form_id;
  credentials.secret = form.Get("client_secret");
  return credentials;
}

absl::StatusOr<Client> AuthenticatedClient(const http::Request& request, const Form& form,
                                           ClientRegistry& clients) {
  LLMBOX_ASSIGN_OR_RETURN(Credentials credentials, ReadCredentials(request, form));
  LLMBOX_ASSIGN_OR_RETURN(
      Client client,
      clients.Find(credentials.client_id, http::AddressKey(activation::ClientOf(request))));
  std::optional<std::string_view> secret;
  if (credentials.secret.has_value()) secret = *credentials.secret;
  LLMBOX_RETURN_IF_ERROR(clients.AuthenticateClient(client, secret));
  return client;
}

std::optional<std::string_view> Optional(const std::optional<std::string>& value) {
  if (!value.has_value()) return std::nullopt;
  return std::string_view(*value);
}

absl::StatusOr<TokenResponse> Grant(const http::Request& request, const Form& form,
                                    ClientRegistry& clients, TokenService& tokens) {
  const std::optional<std::string> grant_type = form.Get("grant_type");
  if (!grant_type.has_value()) return OAuthError(kInvalidRequest, "grant_type is required");
  if (*grant_type != "authorization_code" && *grant_type != "refresh_token") {
    return OAuthError(kUnsupportedGrantType,
                      "grant_type must be authorization_code or refresh_token");
  }
  LLMBOX_ASSIGN_OR_RETURN(Client client, AuthenticatedClient(request, form, clients));
  const std::optional<std::string> resource = form.Get("resource");
  absl::StatusOr<TokenResponse> response;
  if (*grant_type == "authorization_code") {
    const std::optional<std::string> code = form.Get("code");
    const std::optional<std::string> redirect_uri = form.Get("redirect_uri");
    if (!code.has_value()) return OAuthError(kInvalidRequest, "code is required");
    if (!redirect_uri.has_value()) return OAuthError(kInvalidRequest, "redirect_uri is required");
    response = tokens.ExchangeCode(client, *code, *redirect_uri,
                                   form.Get("code_verifier").value_or(""), Optional(resource));
  } else {
    const std::optional<std::string> refresh_token = form.Get("refresh_token");
    if (!refresh_token.has_value()) {
      return OAuthError(kInvalidRequest, "refresh_token is required");
    }
    const std::optional<std::string> scope = form.Get("scope");
    response = tokens.Refresh(client, *refresh_token, Optional(scope), Optional(resource));
  }
  if (response.ok()) clients.MarkUsed(client);
  return response;
}

http::Response NoStoreJson(std::string body) {
  return http::Response{.status = 200,
                        .headers = {{"Content-Type", "application/json"},
                                    {"Cache-Control", "no-store"},
                                    {"Pragma", "no-cache"}},
                        .body = std::move(body)};
}

}  // namespace

http::Response HandleTokenRequest(const http::Request& request, ClientRegistry& clients,
                                  TokenService& tokens) {
  if (std::optional<http::Response> refusal = RefuseShape(request)) return *std::move(refusal);
  absl::StatusOr<Form> form = Form::Parse(request.body);
  if (!form.ok()) return OAuthErrorResponse(form.status());
  absl::StatusOr<TokenResponse> response = Grant(request, *form, clients, tokens);
  if (!response.ok()) return OAuthErrorResponse(response.status());
  return NoStoreJson(response->Json());
}

http::Response HandleRevokeRequest(const http::Request& request, ClientRegistry& clients,
                                   TokenService& tokens) {
  if (std::optional<http::Response> refusal = RefuseShape(request)) return *std::move(refusal);
  absl::StatusOr<Form> form = Form::Parse(request.body);
  if (!form.ok()) return OAuthErrorResponse(form.status());
  absl::Status status = [&]() -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Client client, AuthenticatedClient(request, *form, clients));
    const std::optional<std::string> token = form->Get("token");
    if (!token.has_value()) return OAuthError(kInvalidRequest, "token is required");
    // token_type_hint is only a hint (RFC 7009 §2.1): both kinds are looked up the same way.
    return tokens.Revoke(client, *token);
  }();
  if (!status.ok()) return OAuthErrorResponse(status);
  return NoStoreJson("{}");
}

}  // namespace llmbox::hub::oauth
