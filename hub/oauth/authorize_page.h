// hub/oauth/authorize_page.h
//
// The browser side of the authorization code flow: GET /authorize checks the request, the
// person signs in (through the activation module's OIDC provider, or on a page that takes
// their llmbox API key), then sees a consent page naming the client, its redirect host and
// what it will be able to do, and answers Allow or Deny. Allow sends the browser to the
// client's redirect URI with `code`, `state` and `iss` (RFC 9207); Deny with
// error=access_denied.
//
//   GET  /authorize?response_type=code&client_id=..&redirect_uri=..&code_challenge=..
//        &code_challenge_method=S256&state=..&scope=llmbox&resource=<issuer>
//   GET  /authorize/continue?request=<id>   back from the OIDC provider (its return_to, via
//                                           the activation page's /auth/oidc/callback, which
//                                           sets the session cookie), or after the key
//                                           sign-in (303): the consent page
//   POST /authorize/sign-in                 request, csrf, api_key     (SignInMode::kApiKey)
//   POST /authorize/consent                 request, csrf, decision=allow|deny
//
// Cookies: llmbox_authorize (a random browser id and its HMAC under a key derived from
// csrf_key: a value this page did not issue is ignored and replaced; Path=/authorize,
// HttpOnly, SameSite=Lax so that it survives the provider's cross-site redirect back, Secure
// when the issuer is https, Max-Age authorize_ttl) binds each started request to its browser. In
// kOidc mode the page also sets the activation module's llmbox_oidc_state cookie
// (SessionCookie::StateCookieHeader) and reads its llmbox_session cookie: a person already signed
// in skips the provider.
//
// Checks, in this order: the client is known and redirect_uri is one of its own (else an
// error page, never a redirect: RFC 6749 §4.1.2.1); then, answered by a redirect with error
// and state when the redirect URI is on the operator's list (IsOperatorListedRedirectUri) or
// the client is pre-registered, and otherwise by an error page (no redirect nobody clicked to
// a loopback URI anyone may register): response_type=code, PKCE S256 with a well-formed challenge
// (plain and a missing challenge refused), resource (RFC 8707) naming this hub (absent: this hub),
// scope ⊆ {llmbox} (absent: llmbox). A started request is kept in memory (bounded in all and per
// client address, expiring after options.authorize_ttl) and bound to the browser by an
// HttpOnly cookie; the forms carry CSRF tokens (activation/csrf.h) scoped to the request.
// Wrong API keys are limited per client address and per request. Every page has the activation
// page's security headers (no caching, framing, sniffing or Referer; a strict CSP whose form-action
// on the consent page also names the redirect URI's origin, as the form's answer is a 303
// there). Nothing secret is logged or echoed: not the key, the code, the challenge's verifier
// or the state.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "hub/activation/oidc.h"
#include "hub/activation/session_cookie.h"
#include "hub/audit/audit_log.h"
#include "hub/auth/api_key_auth.h"
#include "hub/http/server.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/options.h"
#include "hub/oauth/tokens.h"

namespace llmbox::hub::oauth {

struct AuthorizePageDeps {
  ClientRegistry* clients = nullptr;  // required
  TokenService* tokens = nullptr;     // required
  // SignInMode::kOidc: the activation module's client and session cookie (both required), and
  // the provider's issuer (principals are "oidc:<issuer>#<subject>").
  activation::OidcClient* oidc = nullptr;
  const activation::SessionCookie* sessions = nullptr;
  std::string oidc_issuer;
  // SignInMode::kApiKey: checks the key a person types (required in that mode).
  const auth::ApiKeyAuthenticator* api_keys = nullptr;
  std::string csrf_key;  // >= 32 secret bytes
  // Wrong API keys: per client address and 15 minutes (bounds load and noise; keys are 256-bit
  // random), and per pending request (past it the request is dead: the person starts again
  // from the app).
  int max_key_attempts_per_address = 30;
  int max_key_attempts_per_request = 5;
  std::size_t max_pending_requests = 10'000;
  std::size_t max_pending_requests_per_address = 20;
  // Where consents are recorded (oauth.consent: allowed or denied); null: nowhere.
  audit::AuditLog* audit = nullptr;
};

class AuthorizePage {
 public:
  // `options` is copied; `clock` and everything in `deps` must outlive the page. The deps
  // that the sign-in mode needs must be set (a CHECK: the server's wiring).
  AuthorizePage(const OAuthOptions& options, AuthorizePageDeps deps, common::Clock& clock);
  ~AuthorizePage();

  static bool Serves(std::string_view path);  // /authorize and /authorize/...
  void Handle(const http::Request& request, http::Responder& responder);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace llmbox::hub::oauth
