// tests/support/oauth_http.h
//
// The hub's OAuth flow and MCP endpoint driven by plain HTTP (libcurl), without a browser: for
// the e2e tests' attacks (a replayed code, a token in the query string, another resource) and
// the OAuth benchmark. The person's clicks become the form posts a browser would send: the
// key sign-in page's form with `api_key`, the consent page's form with decision=allow.
//
//   OAuthHttpClient oauth("http://127.0.0.1:8080");
//   LLMBOX_ASSIGN_OR_RETURN(std::string client_id, oauth.Register(redirect_uri));
//   Pkce pkce = Pkce::Make();
//   LLMBOX_ASSIGN_OR_RETURN(std::string code,
//       oauth.AuthorizeWithKey(client_id, redirect_uri, pkce, api_key, "state-1"));
//   LLMBOX_ASSIGN_OR_RETURN(OAuthTokens tokens,
//       oauth.ExchangeCode(client_id, code, redirect_uri, pkce.verifier));
//   McpHttpSession mcp(oauth.issuer() + "/", tokens.access_token);
//
// No Catch2 here (benchmarks link it). Not thread-safe: one object per thread. Nothing here
// logs; error messages carry HTTP statuses and bodies the hub sent (never a token we hold).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

typedef void CURL;
struct curl_slist;

namespace llmbox::testing {

struct HttpResult {
  long status = 0;  // 0 when no response came (error says why)
  std::string body;
  std::string headers;  // the raw header block of the last response
  std::string error;
  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
};

// One libcurl handle: keep-alive, a cookie jar of its own, redirects never followed.
class PlainHttp {
 public:
  PlainHttp();
  ~PlainHttp();
  PlainHttp(const PlainHttp&) = delete;
  PlainHttp& operator=(const PlainHttp&) = delete;

  HttpResult Get(const std::string& url, const std::vector<std::string>& headers = {});
  HttpResult Post(const std::string& url, std::string_view body, std::string_view content_type,
                  const std::vector<std::string>& headers = {});

 private:
  HttpResult Perform(const std::string& url, const std::vector<std::string>& headers,
                     std::optional<std::string_view> body);
  CURL* curl_;
};

// application/x-www-form-urlencoded.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);
std::string PercentDecode(std::string_view text);
// The decoded value of `name` in `url`'s query, nullopt when absent.
std::optional<std::string> QueryParam(std::string_view url, std::string_view name);

// A <form> of an HTML page: its action and the name/value of its inputs (entities decoded).
struct HtmlForm {
  std::string action;
  std::map<std::string, std::string> inputs;
};
// The first form of `html` whose text contains `marker` (e.g. `name="api_key"`).
std::optional<HtmlForm> FindForm(std::string_view html, std::string_view marker);

struct Pkce {
  std::string verifier;   // 43 base64url characters
  std::string challenge;  // S256 of it
  static Pkce Make();
};

struct OAuthTokens {
  std::string access_token;
  std::string refresh_token;
  std::int64_t expires_in = 0;
};

class OAuthHttpClient {
 public:
  // `issuer` without a trailing slash; the hub's resource is the same URL.
  explicit OAuthHttpClient(std::string issuer);

  const std::string& issuer() const { return issuer_; }
  PlainHttp& http() { return http_; }

  // POST /register of a public client (token_endpoint_auth_method none) with `redirect_uri`.
  [[nodiscard]] absl::StatusOr<std::string> Register(const std::string& redirect_uri,
                                                     const std::string& name = "plain http");

  // GET /authorize, the key sign-in form with `api_key`, the consent form with Allow: the
  // code from the redirect to `redirect_uri` (whose state must be `state` and iss the issuer).
  // `resource` nullopt sends none; `extra_query` is appended to the authorize URL as is.
  [[nodiscard]] absl::StatusOr<std::string> AuthorizeWithKey(
      const std::string& client_id, const std::string& redirect_uri, const Pkce& pkce,
      const std::string& api_key, const std::string& state,
      std::optional<std::string> resource = std::nullopt);

  // The response to the authorize URL alone (no sign-in): for refusals.
  HttpResult StartAuthorize(const std::vector<std::pair<std::string, std::string>>& params);

  // POST /token, grant_type=authorization_code / refresh_token; the raw answer.
  HttpResult TokenRequest(const std::vector<std::pair<std::string, std::string>>& fields);
  [[nodiscard]] absl::StatusOr<OAuthTokens> ExchangeCode(
      const std::string& client_id, const std::string& code, const std::string& redirect_uri,
      const std::string& verifier, std::optional<std::string> resource = std::nullopt);
  [[nodiscard]] absl::StatusOr<OAuthTokens> Refresh(const std::string& client_id,
                                                    const std::string& refresh_token);

 private:
  std::string issuer_;
  PlainHttp http_;
};

// The `error` of an OAuth JSON error body, "" when none.
std::string OAuthErrorOf(const HttpResult& result);

// One MCP session over plain HTTP with `authorization` ("Bearer ...") on every request.
class McpHttpSession {
 public:
  McpHttpSession(std::string url, std::string bearer);
  // initialize + notifications/initialized; the initialize response (status 200 on success).
  HttpResult Initialize();
  // tools/call; the raw response (SSE or JSON).
  HttpResult Call(const std::string& tool, std::string_view arguments_json);
  // The JSON-RPC result of a tools/call response body (SSE's last data line or JSON).
  static absl::StatusOr<std::string> ResultOf(const HttpResult& response);
  const std::string& session_id() const { return session_; }
  PlainHttp& http() { return http_; }

 private:
  std::vector<std::string> Headers() const;
  std::string url_;
  std::string bearer_;
  std::string session_;
  int next_id_ = 1;
  PlainHttp http_;
};

}  // namespace llmbox::testing
