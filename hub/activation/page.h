// hub/activation/page.h
//
// The page a person opens to sign a box in. It is where llmbox's one security property
// lives: the OAuth code goes browser -> hub -> spoke -> box stdin, never through the chatbot.
//
//   GET  /auth/<token>         the box, its state, a "Sign in with Claude" link (the box's
//                              authorize URL, which exists only here) and a code form
//   POST /auth/<token>         submits the code; answers 303 to the GET, which shows ready
//                              with the session link or the box's own error and a new form
//   GET  /auth/<token>/status  {"state": "..."} for the page's script while the box works
//   GET  /assets/activation.css, /assets/activation.js
//   GET  /auth/oidc/start?to=<token>, /auth/oidc/callback, POST /auth/signout   (with gating)
//
// States shown: working (creating, or a code being checked), pending, ready, error (no
// attempts left, or the box failed), expired (past its activation deadline, or reaped),
// destroyed. An unknown token gets a plain 404 that reveals nothing.
//
// The form carries a fresh CSRF token on every page (csrf.h), bound to an HttpOnly,
// SameSite=Strict cookie that is Secure exactly when the public URL is https. Submissions are
// limited per link and client address and per client address (Request::client_address,
// which honours hub.trusted_proxies); a code of the wrong shape is refused before it counts.
// Every response forbids caching, framing, sniffing and Referer. The code is never logged,
// stored or echoed, and neither is the link's token (LoggablePath).
//
//   ActivationPage page(registry, clock, {.public_url = "https://hub.example.com", .key = key});
//   if (ActivationPage::Serves(request.path)) return page.Handle(request, *responder);
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "hub/activation/csrf.h"
#include "hub/activation/page_chrome.h"  // FormField, HtmlEscape
#include "hub/audit/audit_log.h"
#include "hub/boxes/registry.h"
#include "hub/http/server.h"

namespace llmbox::hub::metrics {
class HubMetrics;
}

namespace llmbox::hub::activation {

class OidcClient;
class SessionCookie;

struct PageOptions {
  std::string public_url;  // cookies are Secure exactly when this is https
  std::string key;         // >= 32 secret bytes: signs the form tokens
  std::chrono::seconds form_ttl{1800};
  // Code submissions per window: per link from one client address, and per client address
  // in all (addresses as http::AddressKey counts them). A code of the wrong shape costs none.
  int max_attempts_per_token = 10;
  int max_attempts_per_address = 30;
  std::chrono::seconds attempt_window{900};
  // How many used forms are remembered, in all, per link and per client address (csrf.h).
  CsrfLimits form_limits;
  // A box's authorize URL becomes a link only with one of these prefixes.
  std::vector<std::string> trusted_sign_in_prefixes = {"https://claude.com/", "https://claude.ai/"};
  // A ready box's session URL becomes a link only with one of these prefixes.
  std::vector<std::string> trusted_session_prefixes = {"https://claude.ai/", "https://claude.com/"};
  // Sign-in gating (docs/activation.md): when both are set, a person signs in with the
  // provider before the page shows a box, and the first to sign in owns the box; anyone else
  // is refused, even with the link. Both must outlive the page.
  OidcClient* oidc = nullptr;
  const SessionCookie* sessions = nullptr;
  // Where code submissions are recorded (box.activate, box.activate_refused); null: nowhere.
  // Must outlive the page.
  audit::AuditLog* audit = nullptr;
  // Told of every code submission refused before it reached a box (/metrics); may be null.
  metrics::HubMetrics* metrics = nullptr;
};

class ActivationPage {
 public:
  ActivationPage(boxes::BoxRegistry& registry, common::Clock& clock, PageOptions options);
  ~ActivationPage();

  // Whether the request's path is the page's (/auth/..., /assets/...).
  static bool Serves(std::string_view path);
  // `path` as a log line may show it: an activation token (whatever follows /auth/, but for
  // the sign-in paths) becomes "[token]". For http::ServerOptions::loggable_path.
  static std::string LoggablePath(std::string_view path);
  void Handle(const http::Request& request, http::Responder& responder);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace llmbox::hub::activation
