// hub/oauth/authorize_page.cc
#include "hub/oauth/authorize_page.h"

#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"
#include "hub/activation/csrf.h"
#include "hub/activation/page_chrome.h"
#include "hub/activation/rate_limit.h"
#include "hub/http/client_address.h"
#include "hub/http/status_answer.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/redirect_uri.h"

namespace llmbox::hub::oauth {
namespace {

using activation::ClientOf;
using activation::CookieValue;
using activation::FormEncode;
using activation::FormField;
using activation::FormFieldCount;
using activation::HtmlEscape;
using activation::PageFrame;
using activation::RenderPage;
using activation::SecurityHeaders;

constexpr std::string_view kAuthorize = "/authorize";
constexpr std::string_view kContinue = "/authorize/continue";
constexpr std::string_view kSignIn = "/authorize/sign-in";
constexpr std::string_view kConsent = "/authorize/consent";
// Binds a started request to the browser that started it. SameSite=Lax: the browser comes
// back from the sign-in provider by a cross-site redirect, which drops a Strict cookie.
constexpr std::string_view kCookie = "llmbox_authorize";
constexpr std::size_t kIdChars = 43;         // 32 random bytes, base64url
constexpr std::size_t kChallengeChars = 43;  // base64url of a SHA-256
constexpr std::size_t kMaxStateBytes = 1024;
constexpr std::size_t kMaxKeyBytes = 512;
constexpr std::chrono::seconds kKeyAttemptWindow{900};
constexpr std::string_view kFooter =
    "Allow only an app you are connecting yourself, right now. You can end its access at any "
    "time by asking this hub's operator to revoke it.";

bool IsBase64Url(std::string_view text) {
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool ValidId(std::string_view id) { return id.size() == kIdChars && IsBase64Url(id); }

std::string RandomId() {
  auto id = common::RandomToken(32);
  LLMBOX_CHECK(id.ok(), "the CSPRNG failed");
  return *std::move(id);
}

// A resource or issuer URL as compared: one trailing "/" dropped (the hub's MCP endpoint is
// its origin's "/", which clients write either way), ASCII case folded (an origin only).
std::string CanonicalResource(std::string_view url) {
  if (!url.empty() && url.back() == '/') url.remove_suffix(1);
  std::string out(url);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// What the consent page says about how the hub knows the client.
std::string_view KindText(ClientKind kind) {
  switch (kind) {
    case ClientKind::kDynamic:
      return "This app registered itself with this hub just now or earlier (dynamic "
             "registration): its name is its own claim, not checked by anyone.";
    case ClientKind::kMetadataDocument:
      return "This app is identified by its metadata document, published at its client id "
             "URL below.";
    case ClientKind::kPreregistered:
      return "This app was registered by this hub's operator.";
  }
  return "";
}

// The host a person recognizes: "claude.ai", "127.0.0.1:33418", "[::1]:5000".
std::string DisplayHost(const UriParts& uri) {
  std::string host = uri.host.find(':') != std::string::npos ? "[" + uri.host + "]" : uri.host;
  if (uri.port) host += ":" + std::to_string(*uri.port);
  return host;
}

// The CSP source that lets the consent form's answer (a 303 to the redirect URI) through
// form-action: its origin, or only its scheme for a host CSP cannot name (an IPv6 literal).
std::string FormTarget(const UriParts& uri) {
  for (char c : uri.host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return uri.scheme + ":";
  }
  std::string source = uri.scheme + "://" + uri.host;
  if (uri.port) source += ":" + std::to_string(*uri.port);
  return source;
}

// The redirect URI with the answer's parameters added to its query.
std::string RedirectWith(std::string_view redirect_uri,
                         const std::vector<std::pair<std::string_view, std::string_view>>& params) {
  std::string url(redirect_uri);
  char separator = url.find('?') == std::string::npos ? '?' : '&';
  if (separator == '&' && (url.back() == '?' || url.back() == '&')) separator = '\0';
  for (const auto& [name, value] : params) {
    if (separator != '\0') url += separator;
    url += std::string(name) + "=" + FormEncode(value);
    separator = '&';
  }
  return url;
}

// An authorize request the person has not answered yet.
struct Pending {
  std::string browser;     // the kCookie value of the browser that started it
  std::string client_key;  // http::AddressKey of the client that started it
  Client client;           // redirect_uris: only the one matched
  std::string redirect_uri;
  std::string code_challenge;
  std::string scope;
  std::optional<std::string> state;
  common::Clock::SteadyTime expires;
  std::optional<auth::Principal> principal;  // once signed in
  int wrong_keys = 0;                        // API keys refused for this request
  std::list<std::string>::iterator order;
};

// One authorize request's parameters, checked.
struct Checked {
  Client client;
  std::string redirect_uri;
  std::string code_challenge;
  std::string scope;
  std::optional<std::string> state;
};

// A refusal of an authorize request: a page (client or redirect URI unusable) or a redirect
// back to the client with `error`.
struct Refusal {
  bool page = false;
  std::string error;                 // the OAuth error code (redirect) or the page's heading (page)
  std::string description;           // plain text
  std::string redirect_uri;          // (redirect) the client's, matched
  std::optional<std::string> state;  // (redirect) as the client sent it
  bool may_redirect = false;         // (redirect) else shown on a page: MayRedirectError
  int status = 400;                  // (page)
};

// Whether an error found before the person saw any page may go back to `redirect_uri` by an
// automatic redirect: only to a URI the operator listed, or for a client the operator
// registered. Anyone may register a loopback URI, and a redirect there that nobody clicked
// would make the hub an open redirector to whatever listens on the person's machine.
bool MayRedirectError(const Client& client, std::string_view redirect_uri,
                      const OAuthOptions& options) {
  return client.kind == ClientKind::kPreregistered ||
         IsOperatorListedRedirectUri(redirect_uri, options);
}

}  // namespace

struct AuthorizePage::State {
  State(const OAuthOptions& options, AuthorizePageDeps deps, common::Clock& clock)
      : options(options),
        deps(std::move(deps)),
        clock(clock),
        secure_cookies(options.issuer.rfind("https://", 0) == 0),
        csrf(this->deps.csrf_key, clock, options.authorize_ttl),
        binding_key(common::HmacSha256(this->deps.csrf_key, "browser binding")),
        key_attempts(clock, {.limit = this->deps.max_key_attempts_per_address,
                             .window = kKeyAttemptWindow}) {
    LLMBOX_CHECK(this->deps.clients != nullptr && this->deps.tokens != nullptr,
                 "the authorize page needs the client registry and the token service");
    LLMBOX_CHECK(options.sign_in != SignInMode::kOidc ||
                     (this->deps.oidc != nullptr && this->deps.sessions != nullptr &&
                      !this->deps.oidc_issuer.empty()),
                 "OIDC sign-in needs the activation module's OIDC client and session cookie");
    LLMBOX_CHECK(options.sign_in != SignInMode::kApiKey || this->deps.api_keys != nullptr,
                 "API-key sign-in needs the API key authenticator");
  }

  // ---- Answers ----

  void SendPage(http::Responder& out, int status, PageFrame page, http::Headers extra = {},
                std::string_view form_targets = "") {
    http::Headers headers = SecurityHeaders("text/html; charset=utf-8", form_targets);
    for (auto& header : extra) headers.push_back(std::move(header));
    if (page.footer.empty()) page.footer = std::string(kFooter);
    out.Respond({.status = status, .headers = std::move(headers), .body = RenderPage(page)});
  }

  void SendError(http::Responder& out, int status, std::string_view heading, std::string_view why,
                 http::Headers extra = {}) {
    SendPage(out, status,
             {.state = "error",
              .badge = "Cannot continue",
              .title = std::string(heading),
              .body = "<h1>" + HtmlEscape(heading) + "</h1><div class=\"notice\" role=\"alert\">" +
                      HtmlEscape(why) +
                      "</div><p>Go back to the app you came from and connect it again.</p>"},
             std::move(extra));
  }

  void SendRedirect(http::Responder& out, std::string location, http::Headers extra = {}) {
    http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
    headers.emplace_back("Location", std::move(location));
    for (auto& header : extra) headers.push_back(std::move(header));
    out.Respond({.status = 303, .headers = std::move(headers), .body = "Continue.\n"});
  }

  // The OAuth error answer: back to the client's (checked) redirect URI, with the state it
  // sent and our issuer (RFC 9207).
  void RedirectError(http::Responder& out, std::string_view redirect_uri,
                     const std::optional<std::string>& state, std::string_view error,
                     std::string_view description) {
    std::vector<std::pair<std::string_view, std::string_view>> params = {
        {"error", error}, {"error_description", description}};
    if (state) params.emplace_back("state", *state);
    params.emplace_back("iss", options.issuer);
    SendRedirect(out, RedirectWith(redirect_uri, params));
  }

  std::string BrowserCookie(std::string_view browser) const {
    return std::string(kCookie) + "=" + std::string(browser) +
           "; Path=/authorize; Max-Age=" + std::to_string(options.authorize_ttl.count()) +
           "; HttpOnly; SameSite=Lax" + (secure_cookies ? "; Secure" : "");
  }

  // ---- GET /authorize ----

  // The checks of authorize_page.h, in its order.
  std::variant<Checked, Refusal> Check(std::string_view query, std::string_view client_key) {
    auto once = [&](std::string_view name) { return FormFieldCount(query, name) <= 1; };
    const std::string client_id = FormField(query, "client_id");
    if (client_id.empty() || !once("client_id")) {
      return Refusal{true, "Unknown app", "The request names no app (client_id), or two."};
    }
    auto client = deps.clients->Find(client_id, client_key);
    if (OAuthErrorCode(client.status()) == kTemporarilyUnavailable) {
      return Refusal{.page = true,
                     .error = "Try again shortly",
                     .description = std::string(common::AsStd(client.status().message())),
                     .status = 503};
    }
    if (!client.ok()) {
      return Refusal{true, "Unknown app",
                     "This hub does not know the app that sent you here: " +
                         std::string(common::AsStd(client.status().message()))};
    }
    const std::string presented = FormField(query, "redirect_uri");
    std::optional<std::string> matched;
    if (once("redirect_uri") && !presented.empty()) {
      matched = MatchRedirectUri(client->redirect_uris, presented);
    }
    if (!matched) {
      return Refusal{true, "Wrong return address",
                     "The address this request would send you back to is not one the app "
                     "registered, so this hub sends nothing there."};
    }
    if (!ParseRedirectUri(presented).ok()) {
      return Refusal{true, "Wrong return address",
                     "The address this request would send you back to is not usable."};
    }
    Checked checked{.client = *std::move(client), .redirect_uri = presented};
    checked.client.redirect_uris = {*matched};
    // From here on every refusal goes back to the client, with its state when there is one.
    Refusal back{.redirect_uri = presented,
                 .may_redirect = MayRedirectError(*client, presented, options)};
    auto refuse = [&back](std::string_view error, std::string description) {
      back.error = std::string(error);
      back.description = std::move(description);
      return back;
    };
    if (!once("state")) return refuse(kInvalidRequest, "state sent twice");
    if (FormFieldCount(query, "state") == 1) {
      std::string state = FormField(query, "state");
      if (state.size() > kMaxStateBytes) {
        return refuse(kInvalidRequest, "state is longer than 1024 bytes");
      }
      checked.state = state;
      back.state = std::move(state);
    }
    for (std::string_view name :
         {"response_type", "code_challenge", "code_challenge_method", "scope"}) {
      if (!once(name)) {
        return refuse(kInvalidRequest, std::string(name) + " sent twice");
      }
    }
    const std::string response_type = FormField(query, "response_type");
    if (response_type.empty()) {
      return refuse(kInvalidRequest, "response_type is missing");
    }
    if (response_type != "code") {
      return refuse(kUnsupportedResponseType, "only response_type=code is supported");
    }
    const std::string method = FormField(query, "code_challenge_method");
    checked.code_challenge = FormField(query, "code_challenge");
    if (checked.code_challenge.empty() || method != "S256") {
      return refuse(kInvalidRequest,
                    "PKCE is required: send code_challenge with code_challenge_method=S256");
    }
    if (checked.code_challenge.size() != kChallengeChars || !IsBase64Url(checked.code_challenge)) {
      return refuse(kInvalidRequest,
                    "code_challenge must be the base64url SHA-256 of the verifier (43 "
                    "characters)");
    }
    const std::size_t resources = FormFieldCount(query, "resource");
    if (resources > 1 || (resources == 1 && CanonicalResource(FormField(query, "resource")) !=
                                                CanonicalResource(options.issuer))) {
      return refuse(kInvalidTarget,
                    "this hub issues tokens only for its own resource, " + options.issuer);
    }
    checked.scope = std::string(kScope);
    if (FormFieldCount(query, "scope") == 1) {
      const std::string scope = FormField(query, "scope");
      std::string_view rest = scope;
      while (!rest.empty()) {
        const auto space = rest.find(' ');
        const std::string_view item = rest.substr(0, space);
        if (!item.empty() && item != kScope) {
          return refuse(kInvalidScope, "the only scope is " + std::string(kScope));
        }
        if (space == std::string_view::npos) break;
        rest.remove_prefix(space + 1);
      }
    }
    return checked;
  }

  // ---- The browser binding (kCookie) ----

  // "<random id>.<base64url HMAC of it>": only this hub can make one, so a cookie tossed into
  // a victim's browser by someone else (a sibling subdomain, a plain-http answer) never
  // becomes the binding of the victim's request unless this hub issued it.
  std::string NewBrowserBinding() const {
    const std::string id = RandomId();
    return id + "." + common::Base64UrlEncode(common::HmacSha256(binding_key, id));
  }

  bool ValidBrowserBinding(std::string_view value) const {
    if (value.size() != 2 * kIdChars + 1 || value[kIdChars] != '.') return false;
    const std::string_view id = value.substr(0, kIdChars);
    if (!ValidId(id)) return false;
    return common::ConstantTimeEquals(value.substr(kIdChars + 1),
                                      common::Base64UrlEncode(common::HmacSha256(binding_key, id)));
  }

  void Start(const http::Request& request, http::Responder& out) {
    const std::string client = ClientOf(request);
    auto checked = Check(request.query, http::AddressKey(client));
    if (auto* refused = std::get_if<Refusal>(&checked)) {
      spdlog::info("oauth: an authorize request from {} was refused: {}", client,
                   refused->description);
      if (refused->page) {
        return SendError(out, refused->status, refused->error, refused->description);
      }
      if (!refused->may_redirect) {
        return SendError(out, 400, "The app's request cannot be used", refused->description);
      }
      return RedirectError(out, refused->redirect_uri, refused->state, refused->error,
                           refused->description);
    }
    Checked& c = std::get<Checked>(checked);
    std::string browser = CookieValue(request.Header("cookie"), kCookie);
    if (!ValidBrowserBinding(browser)) browser = NewBrowserBinding();
    const std::string client_key = http::AddressKey(client);
    const std::string client_id = common::QuoteForMessage(c.client.client_id, 200);
    const std::string id = Add(browser, client_key, c);
    if (id.empty()) {
      spdlog::warn("oauth: an authorize request from {} was refused: too many in progress", client);
      if (!MayRedirectError(c.client, c.redirect_uri, options)) {
        return SendError(out, 503, "Try again shortly",
                         "Too many sign-ins are in progress; try again in a minute.");
      }
      return RedirectError(out, c.redirect_uri, c.state, kTemporarilyUnavailable,
                           "too many sign-ins are in progress; try again in a minute");
    }
    spdlog::info("oauth: {} started an authorize request for client {}", client, client_id);
    http::Headers cookie = {{"Set-Cookie", BrowserCookie(browser)}};
    if (options.sign_in == SignInMode::kOidc) {
      if (auto principal = SessionPrincipal(request)) {
        SetPrincipal(id, *principal);
        return SendConsent(out, id, browser, std::move(cookie));
      }
      // A pool of its own: a flood of authorize requests never fills the table that activation
      // links need.
      auto start = deps.oidc->BeginLogin(std::string(kContinue) + "?request=" + id, client_key,
                                         activation::LoginPool::kOAuth);
      if (!start.ok()) {
        Remove(id);
        return SendSignInFailed(out, start.status());
      }
      cookie.emplace_back(
          "Set-Cookie", activation::SessionCookie::StateCookieHeader(start->state, secure_cookies));
      return SendRedirect(out, start->authorize_url, std::move(cookie));
    }
    SendKeyForm(out, 200, id, browser, c.client, "", std::move(cookie));
  }

  // ---- Sign-in ----

  std::optional<auth::Principal> SessionPrincipal(const http::Request& request) const {
    auto session = deps.sessions->VerifySession(
        CookieValue(request.Header("cookie"), activation::SessionCookie::kName));
    if (!session.ok()) return std::nullopt;
    return auth::Principal::OAuthSubject(deps.oidc_issuer, session->subject, session->email,
                                         session->email, OidcRoles(options, session->email));
  }

  void SendSignInFailed(http::Responder& out, const absl::Status& status) {
    // As on the activation page: a provider that cannot serve asks for a retry.
    const bool provider_down = http::IsServerError(status.code()) ||
                               absl::IsResourceExhausted(status) ||
                               absl::IsFailedPrecondition(status);
    spdlog::warn("oauth: sign-in failed: {}", common::AsStd(status.message()));
    SendError(out, provider_down ? 503 : 403, "Sign-in failed", common::AsStd(status.message()));
  }

  void SendKeyForm(http::Responder& out, int status, const std::string& id,
                   const std::string& browser, const Client& client, std::string_view notice,
                   http::Headers extra = {}) {
    std::string notice_html;
    if (!notice.empty()) {
      notice_html = "<div class=\"notice\" role=\"alert\">" + HtmlEscape(notice) + "</div>";
    }
    SendPage(out, status,
             {.state = "signin",
              .badge = "Sign in",
              .title = "Sign in to llmbox",
              .body = "<h1>Sign in to connect " + ClientNameHtml(client) + "</h1>" + notice_html +
                      "<p>Sign in with your llmbox API key (the one your hub's operator gave "
                      "you). Next you see what the app asks for, and choose.</p>"
                      "<form class=\"key-form\" method=\"post\" action=\"" +
                      std::string(kSignIn) +
                      "\"><label for=\"api_key\" class=\"step-title\">Your llmbox API "
                      "key</label><input type=\"password\" id=\"api_key\" name=\"api_key\" "
                      "autocomplete=\"off\" autocapitalize=\"off\" spellcheck=\"false\" required "
                      "maxlength=\"" +
                      std::to_string(kMaxKeyBytes) +
                      "\"><input type=\"hidden\" name=\"request\" value=\"" + id +
                      "\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                      HtmlEscape(csrf.Issue(browser, id)) +
                      "\"><button class=\"button\" type=\"submit\">Sign in</button></form>"
                      "<p class=\"muted\">This page checks the key and forgets it. The app "
                      "never sees it: it gets a token of its own.</p>"},
             std::move(extra));
  }

  void SignIn(const http::Request& request, http::Responder& out) {
    auto pending = Own(request, FormField(request.body, "request"), out);
    if (!pending) return;
    const std::string& id = pending->first;
    const Pending& p = pending->second;
    const std::string client = ClientOf(request);
    const std::string client_key = http::AddressKey(client);
    // What cannot be a key costs nothing; trimmed like a pasted value.
    const std::string field = FormField(request.body, "api_key");
    const std::string key(common::AsStd(absl::StripAsciiWhitespace(common::AsAbsl(field))));
    bool shaped = !key.empty() && key.size() <= kMaxKeyBytes;
    for (char c : key) shaped = shaped && c > 0x20 && c < 0x7f;
    if (!shaped) {
      return SendKeyForm(out, 400, id, p.browser, p.client,
                         "That is not an llmbox API key. Paste the whole key, and only the key.");
    }
    if (auto st = csrf.Redeem(FormField(request.body, "csrf"), p.browser, id, client_key);
        !st.ok()) {
      return SendKeyForm(out, absl::IsResourceExhausted(st) ? 429 : 403, id, p.browser, p.client,
                         std::string(common::AsStd(st.message())) + ". Nothing was checked.");
    }
    if (auto wait = key_attempts.Take(client_key)) {
      spdlog::warn("oauth: an API key sign-in from {} was refused: too many attempts", client);
      return SendKeyForm(out, 429, id, p.browser, p.client,
                         "Too many sign-in attempts from your address. Try again in " +
                             activation::Minutes(*wait) + ".",
                         {{"Retry-After", std::to_string(wait->count())}});
    }
    auto principal = deps.api_keys->Authenticate("Bearer " + key);
    if (!principal.ok()) {
      spdlog::warn("oauth: an API key sign-in from {} failed: {}", client,
                   common::AsStd(principal.status().message()));
      // Each request has its own few tries: past them it is dead, and the person starts again
      // from the app (a new request), so one address's budget is rarely what stops them.
      if (CountWrongKey(id) >= deps.max_key_attempts_per_request) {
        Remove(id);
        return SendError(out, 429, "Too many wrong keys",
                         "That key is not valid either, and this sign-in has had too many wrong "
                         "keys: it is closed.");
      }
      return SendKeyForm(out, 401, id, p.browser, p.client,
                         "That key is not valid: it is unknown or revoked.");
    }
    key_attempts.GiveBack(client_key);
    spdlog::info("oauth: {} signed in with an API key from {}", principal->id(), client);
    if (!SetPrincipal(id, *principal)) {
      return SendError(out, 400, "This request has expired",
                       "It was not answered in time, or was answered already.");
    }
    SendRedirect(out, std::string(kContinue) + "?request=" + id);
  }

  // GET /authorize/continue: back from the provider (OIDC), or after the key sign-in.
  void Continue(const http::Request& request, http::Responder& out) {
    const std::string id = FormField(request.query, "request");
    auto pending = Own(request, id, out);
    if (!pending) return;
    const Pending& p = pending->second;
    if (!p.principal) {
      if (options.sign_in == SignInMode::kApiKey) {
        return SendKeyForm(out, 200, id, p.browser, p.client, "");
      }
      auto principal = SessionPrincipal(request);
      if (!principal) {
        return SendError(out, 403, "Sign-in did not finish",
                         "This browser is not signed in to this hub.");
      }
      SetPrincipal(id, *principal);
    }
    SendConsent(out, id, p.browser);
  }

  // ---- Consent ----

  std::string ClientNameHtml(const Client& client) const {
    if (client.name.empty()) return "an app with no name";
    return "<strong class=\"client-name\">" + HtmlEscape(client.name) + "</strong>";
  }

  void SendConsent(http::Responder& out, const std::string& id, const std::string& browser,
                   http::Headers extra = {}) {
    auto pending = Get(id);
    if (!pending || !pending->principal) {
      return SendError(out, 400, "This request has expired",
                       "It was not answered in time, or was answered already.");
    }
    const Pending& p = *pending;
    auto uri = ParseRedirectUri(p.redirect_uri);
    if (!uri.ok()) {  // checked at the start: cannot happen
      return SendError(out, 500, "Wrong return address", "The app's return address is unusable.");
    }
    const auth::Principal& who = *p.principal;
    std::string admin;
    if (who.IsAdmin()) {
      admin =
          "<div class=\"notice\" role=\"alert\"><strong>You are an admin.</strong>The app will "
          "also see and act on every other person's boxes on this hub.</div>";
    }
    std::string client_id;
    if (p.client.kind == ClientKind::kMetadataDocument) {
      client_id =
          "<p class=\"muted\">Client id: <code>" + HtmlEscape(p.client.client_id) + "</code></p>";
    }
    SendPage(
        out, 200,
        {.state = "consent",
         .badge = "Your answer",
         .title = "Allow access to llmbox?",
         .body = "<h1>Allow " + ClientNameHtml(p.client) +
                 " to use llmbox?</h1><p class=\"muted\">" + HtmlEscape(KindText(p.client.kind)) +
                 "</p>" + client_id +
                 "<div class=\"notice redirect\"><strong>If you allow, your browser and the "
                 "app's access go to</strong><span class=\"host\">" +
                 HtmlEscape(DisplayHost(*uri)) + "</span><code class=\"session\">" +
                 HtmlEscape(p.redirect_uri) +
                 "</code></div><p>It will be able to <strong>create, use and destroy your "
                 "llmbox boxes as " +
                 HtmlEscape(who.display_name()) +
                 "</strong>, until its access is revoked or, at the latest, " +
                 std::to_string(options.grant_ttl.count() / 86400) + " days from now.</p>" + admin +
                 "<form class=\"consent-form\" method=\"post\" action=\"" + std::string(kConsent) +
                 "\"><input type=\"hidden\" name=\"request\" value=\"" + id +
                 "\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                 HtmlEscape(csrf.Issue(browser, id)) +
                 "\"><div class=\"actions\"><button class=\"button arming\" type=\"submit\" "
                 "name=\"decision\" value=\"allow\">Allow</button><button class=\"button "
                 "secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>"
                 "</div></form>",
         .signed_in_as = who.display_name()},
        std::move(extra), FormTarget(*uri));
  }

  void Consent(const http::Request& request, http::Responder& out) {
    const std::string id = FormField(request.body, "request");
    auto pending = Own(request, id, out);
    if (!pending) return;
    const Pending& p = pending->second;
    const std::string client = ClientOf(request);
    if (!p.principal) {
      return SendError(out, 403, "Sign in first", "Nobody has signed in for this request.");
    }
    const std::string decision = FormField(request.body, "decision");
    if (decision != "allow" && decision != "deny") {
      return SendError(out, 400, "No answer", "The form said neither Allow nor Deny.");
    }
    if (auto st =
            csrf.Redeem(FormField(request.body, "csrf"), p.browser, id, http::AddressKey(client));
        !st.ok()) {
      return SendError(out, absl::IsResourceExhausted(st) ? 429 : 403, "Not accepted",
                       std::string(common::AsStd(st.message())) + ". Nothing was sent to the app.");
    }
    // Answered once: whoever takes it first (a double click, a replay) answers it.
    if (!Remove(id)) {
      return SendError(out, 400, "This request has expired",
                       "It was not answered in time, or was answered already.");
    }
    const std::string client_id = common::QuoteForMessage(p.client.client_id, 200);
    if (decision == "deny") {
      spdlog::info("oauth: {} denied client {}", p.principal->id(), client_id);
      AuditConsent(p, client, "deny", absl::OkStatus());
      return RedirectError(out, p.redirect_uri, p.state, kAccessDenied, "the person denied access");
    }
    auto code = deps.tokens->IssueCode({.client = &p.client,
                                        .redirect_uri = p.redirect_uri,
                                        .code_challenge = p.code_challenge,
                                        .scope = p.scope,
                                        .resource = options.issuer,
                                        .principal = *p.principal});
    AuditConsent(p, client, "allow", code.status());
    if (!code.ok()) {
      spdlog::warn("oauth: no code for client {}: {}", client_id,
                   common::AsStd(code.status().message()));
      return RedirectError(out, p.redirect_uri, p.state, OAuthErrorCode(code.status()),
                           "the hub could not issue a code; try again");
    }
    spdlog::info("oauth: {} allowed client {}", p.principal->id(), client_id);
    std::vector<std::pair<std::string_view, std::string_view>> params = {{"code", *code}};
    if (p.state) params.emplace_back("state", *p.state);
    params.emplace_back("iss", options.issuer);
    SendRedirect(out, RedirectWith(p.redirect_uri, params));
  }

  // The audit record of a consent: who (the signed-in principal) let which client act for
  // them, from where; never the code, the state or the PKCE challenge.
  void AuditConsent(const Pending& p, const std::string& client, std::string_view decision,
                    const absl::Status& status) {
    if (deps.audit == nullptr) return;
    deps.audit->Record({.event = audit::Event::kOAuthConsent,
                        .principal = p.principal->id(),
                        .client = client,
                        .outcome = audit::Outcome(status),
                        .error = std::string(common::AsStd(status.message())),
                        .details = {{"client_id", p.client.client_id},
                                    {"client_name", p.client.name},
                                    {"decision", std::string(decision)}}});
  }

  // ---- The pending requests ----

  // The pending request `id` if it is this browser's; otherwise answers with an error page.
  std::optional<std::pair<std::string, Pending>> Own(const http::Request& request,
                                                     const std::string& id, http::Responder& out) {
    std::optional<Pending> pending;
    if (ValidId(id)) pending = Get(id);
    if (!pending) {
      SendError(out, 400, "This request has expired",
                "It was not answered in time, or was answered already.");
      return std::nullopt;
    }
    const std::string browser = CookieValue(request.Header("cookie"), kCookie);
    if (browser.empty() || !common::ConstantTimeEquals(browser, pending->browser)) {
      spdlog::warn("oauth: {} used an authorize request started in another browser",
                   ClientOf(request));
      SendError(out, 403, "Another browser",
                "This request was started in another browser. Connect from this one.");
      return std::nullopt;
    }
    return std::pair{id, *std::move(pending)};
  }

  void DropExpiredLocked() {
    const auto now = clock.SteadyNow();
    // All requests live the same time, so the oldest expires first.
    while (!order.empty()) {
      auto it = pending.find(order.front());
      if (it->second.expires > now) break;
      EraseLocked(it);
    }
  }

  void EraseLocked(std::map<std::string, Pending, std::less<>>::iterator it) {
    auto& mine = per_address[it->second.client_key];
    std::erase(mine, it->first);
    if (mine.empty()) per_address.erase(it->second.client_key);
    order.erase(it->second.order);
    pending.erase(it);
  }

  // Keeps `checked` under a new id; "" when the table is full. Beyond its share, a client's
  // own oldest request is dropped, so a flood never pushes out anybody else's.
  std::string Add(const std::string& browser, const std::string& client_key,
                  const Checked& checked) {
    std::lock_guard lock(mu);
    DropExpiredLocked();
    if (auto mine = per_address.find(client_key);
        mine != per_address.end() && mine->second.size() >= deps.max_pending_requests_per_address) {
      EraseLocked(pending.find(mine->second.front()));
    }
    if (pending.size() >= deps.max_pending_requests) return "";
    std::string id = RandomId();
    order.push_back(id);
    per_address[client_key].push_back(id);
    pending.emplace(id, Pending{.browser = browser,
                                .client_key = client_key,
                                .client = checked.client,
                                .redirect_uri = checked.redirect_uri,
                                .code_challenge = checked.code_challenge,
                                .scope = checked.scope,
                                .state = checked.state,
                                .expires = clock.SteadyNow() + options.authorize_ttl,
                                .order = std::prev(order.end())});
    return id;
  }

  std::optional<Pending> Get(const std::string& id) {
    std::lock_guard lock(mu);
    DropExpiredLocked();
    auto it = pending.find(id);
    if (it == pending.end()) return std::nullopt;
    return it->second;
  }

  bool SetPrincipal(const std::string& id, const auth::Principal& principal) {
    std::lock_guard lock(mu);
    DropExpiredLocked();
    auto it = pending.find(id);
    if (it == pending.end()) return false;
    it->second.principal = principal;
    return true;
  }

  // Counts a wrong key against request `id`; returns its count so far (a gone request counts
  // as past every limit).
  int CountWrongKey(const std::string& id) {
    std::lock_guard lock(mu);
    auto it = pending.find(id);
    if (it == pending.end()) return std::numeric_limits<int>::max();
    return ++it->second.wrong_keys;
  }

  bool Remove(const std::string& id) {
    std::lock_guard lock(mu);
    DropExpiredLocked();
    auto it = pending.find(id);
    if (it == pending.end()) return false;
    EraseLocked(it);
    return true;
  }

  const OAuthOptions options;
  const AuthorizePageDeps deps;
  common::Clock& clock;
  const bool secure_cookies;
  activation::CsrfTokens csrf;
  const std::string binding_key;  // MACs the kCookie values this page issues
  activation::RateLimiter key_attempts;

  std::mutex mu;
  std::map<std::string, Pending, std::less<>> pending;          // by id; guarded by mu
  std::list<std::string> order;                                 // ids, oldest first; guarded by mu
  std::map<std::string, std::vector<std::string>> per_address;  // ids, oldest first; guarded by mu
};

AuthorizePage::AuthorizePage(const OAuthOptions& options, AuthorizePageDeps deps,
                             common::Clock& clock)
    : state_(std::make_unique<State>(options, std::move(deps), clock)) {}

AuthorizePage::~AuthorizePage() = default;

bool AuthorizePage::Serves(std::string_view path) {
  return path == kAuthorize || path.starts_with(std::string(kAuthorize) + "/");
}

void AuthorizePage::Handle(const http::Request& request, http::Responder& responder) {
  State& s = *state_;
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (request.path == kAuthorize && get) return s.Start(request, responder);
  if (request.path == kContinue && get) return s.Continue(request, responder);
  if (request.path == kConsent && post) return s.Consent(request, responder);
  if (request.path == kSignIn && post && s.options.sign_in == SignInMode::kApiKey) {
    return s.SignIn(request, responder);
  }
  const bool known = request.path == kAuthorize || request.path == kContinue ||
                     request.path == kConsent ||
                     (request.path == kSignIn && s.options.sign_in == SignInMode::kApiKey);
  http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
  if (!known) {
    responder.Respond({.status = 404, .headers = std::move(headers), .body = "not found\n"});
    return;
  }
  headers.emplace_back("Allow",
                       request.path == kAuthorize || request.path == kContinue ? "GET" : "POST");
  responder.Respond({.status = 405, .headers = std::move(headers), .body = "not allowed\n"});
}

}  // namespace llmbox::hub::oauth
