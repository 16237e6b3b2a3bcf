// hub/activation/page.cc
#include "hub/activation/page.h"

#include <time.h>

#include <optional>
#include <string>
#include <utility>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"
#include "hub/activation/assets.h"
#include "hub/activation/csrf.h"
#include "hub/activation/oidc.h"
#include "hub/activation/page_chrome.h"
#include "hub/activation/rate_limit.h"
#include "hub/activation/session_cookie.h"
#include "hub/http/client_address.h"
#include "hub/http/status_answer.h"
#include "hub/metrics/hub_metrics.h"

namespace llmbox::hub::activation {
namespace {

using store::BoxRecord;
using store::Phase;

constexpr std::string_view kAuthPrefix = "/auth/";
constexpr std::string_view kStatusSuffix = "/status";
constexpr std::string_view kCookie = "llmbox_browser";
constexpr std::string_view kSignInStart = "/auth/oidc/start";
constexpr std::string_view kSignInCallback = "/auth/oidc/callback";
constexpr std::string_view kSignOut = "/auth/signout";
constexpr std::size_t kTokenChars = 43;  // 256 bits, unpadded base64url (registry.cc)

// What the page shows; the names are the `data-state` values and the status endpoint's.
enum class View {
  kWorking,
  kPending,
  kReady,
  kError,
  kExpired,
  kDestroyed,
  kUnknown,
  kSignIn,
  kRefused,
  kSignInFailed
};

std::string_view ViewName(View view) {
  switch (view) {
    case View::kWorking:
      return "working";
    case View::kPending:
      return "pending";
    case View::kReady:
      return "ready";
    case View::kError:
      return "error";
    case View::kExpired:
      return "expired";
    case View::kDestroyed:
      return "destroyed";
    case View::kUnknown:
      return "unknown";
    case View::kSignIn:
      return "signin";
    case View::kRefused:
      return "refused";
    case View::kSignInFailed:
      return "signin-failed";
  }
  return "unknown";
}

std::string_view BadgeText(View view) {
  switch (view) {
    case View::kWorking:
      return "Working";
    case View::kPending:
      return "Waiting for you";
    case View::kReady:
      return "Ready";
    case View::kError:
      return "Failed";
    case View::kExpired:
      return "Expired";
    case View::kDestroyed:
      return "Destroyed";
    case View::kUnknown:
      return "Not found";
    case View::kSignIn:
      return "Sign in first";
    case View::kRefused:
      return "Not yours";
    case View::kSignInFailed:
      return "Sign-in failed";
  }
  return "";
}

View ViewOf(const BoxRecord& box, std::int64_t now_ms) {
  switch (box.phase) {
    case Phase::kCreating:
    case Phase::kActivating:
      return View::kWorking;
    case Phase::kPending:
      return box.expires_at_ms != 0 && now_ms >= box.expires_at_ms ? View::kExpired
                                                                   : View::kPending;
    case Phase::kReady:
      return View::kReady;
    case Phase::kError:
      return View::kError;
    case Phase::kGone:
      return View::kExpired;
  }
  return View::kError;
}

bool ValidToken(std::string_view token) {
  if (token.size() != kTokenChars) return false;
  for (char c : token) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool HasTrustedPrefix(std::string_view url, const std::vector<std::string>& prefixes) {
  for (const auto& prefix : prefixes) {
    if (url.size() > prefix.size() && url.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

std::string Trimmed(std::string text) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && space(text.back())) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && space(text[start])) ++start;
  return text.substr(start);
}

std::string FormatUtc(std::int64_t ms) {
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M UTC", &tm);
  return buffer;
}

// One page of the activation flow: `body` is the card's inner HTML.
struct PageText {
  View view = View::kUnknown;
  std::string title;
  std::string body;
  std::string status_url;    // set while the box works: the script polls it
  std::string signed_in_as;  // with sign-in gating: shown with a sign-out button
};

std::string Render(const PageText& page) {
  return RenderPage({.state = std::string(ViewName(page.view)),
                     .badge = std::string(BadgeText(page.view)),
                     .title = page.title,
                     .body = page.body,
                     .status_url = page.status_url,
                     .refresh = page.view == View::kWorking,
                     .signed_in_as = page.signed_in_as,
                     .sign_out_action = std::string(kSignOut),
                     .footer = "llmbox never sees your Claude password. The code you paste goes "
                               "straight to your box."});
}

}  // namespace

// Audit records of refused submissions per box and address in each attempt window.
constexpr int kAuditedRefusals = 20;

struct ActivationPage::State {
  State(boxes::BoxRegistry& registry, common::Clock& clock, PageOptions options)
      : registry(registry),
        clock(clock),
        options(std::move(options)),
        secure_cookies(this->options.public_url.rfind("https://", 0) == 0),
        csrf(this->options.key, clock, this->options.form_ttl, this->options.form_limits),
        per_token(clock, {.limit = this->options.max_attempts_per_token,
                          .window = this->options.attempt_window}),
        per_address(clock, {.limit = this->options.max_attempts_per_address,
                            .window = this->options.attempt_window}),
        audited_refusals(clock,
                         {.limit = kAuditedRefusals, .window = this->options.attempt_window}) {}

  std::int64_t NowMs() { return common::ToUnixMillis(clock.Now()); }

  void Send(http::Responder& out, int status, const PageText& page, std::string_view browser_id,
            http::Headers extra = {}) {
    http::Headers headers = SecurityHeaders("text/html; charset=utf-8");
    if (!browser_id.empty()) {
      headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + std::string(browser_id) +
                                             "; Path=/auth/; HttpOnly; SameSite=Strict" +
                                             (secure_cookies ? "; Secure" : ""));
    }
    for (auto& header : extra) headers.push_back(std::move(header));
    out.Respond({.status = status, .headers = std::move(headers), .body = Render(page)});
  }

  void SendUnknown(http::Responder& out) {
    Send(out, 404,
         {.view = View::kUnknown,
          .title = "Not found",
          .body = "<h1>Not found</h1><p>This link is not valid.</p>"},
         "");
  }

  // The browser's id from its cookie, or a fresh one; pages bind their form tokens to it.
  std::string BrowserId(const http::Request& request) {
    std::string id = CookieValue(request.Header("cookie"), kCookie);
    if (ValidToken(id)) return id;
    auto fresh = common::RandomToken(32);
    LLMBOX_CHECK(fresh.ok(), "the CSPRNG failed");
    return *fresh;
  }

  PageText BoxPage(const BoxRecord& box, View view, const std::string& token,
                   const std::string& browser_id, std::string_view notice) {
    PageText page{.view = view};
    const std::string id = "<code>" + HtmlEscape(box.box_id) + "</code>";
    std::string description;
    if (!box.description.empty()) {
      description = "<p class=\"description\">" + HtmlEscape(box.description) + "</p>";
    }
    std::string notice_html;
    if (!notice.empty()) {
      notice_html = "<div class=\"notice\" role=\"alert\">" + HtmlEscape(notice) + "</div>";
    }
    switch (view) {
      case View::kWorking: {
        const bool checking = box.phase == Phase::kActivating;
        page.title = checking ? "Checking the code" : "Preparing the box";
        page.status_url = std::string(kAuthPrefix) + token + std::string(kStatusSuffix);
        page.body = "<h1>" +
                    std::string(checking ? "Checking your code for box " : "Preparing box ") + id +
                    "</h1>" + description + notice_html +
                    "<div class=\"working\"><span class=\"spinner\" aria-hidden=\"true\"></span>"
                    "<p>" +
                    (checking ? "Your box is signing in with the code. This takes a few seconds."
                              : "Your box is starting. This takes a few seconds.") +
                    "</p></div><p class=\"muted\">This page refreshes by itself.</p>";
        break;
      }
      case View::kPending: {
        page.title = "Sign in box " + box.box_id;
        std::string last;
        if (!box.last_error.empty()) {
          last =
              "<div class=\"notice\" role=\"alert\"><strong>The last attempt did not "
              "work:</strong>" +
              HtmlEscape(box.last_error) +
              "</div><p>Sign in again with the button below: Claude shows a new code each "
              "time.</p>";
        }
        std::string sign_in;
        if (HasTrustedPrefix(box.authorize_url, options.trusted_sign_in_prefixes)) {
          sign_in = "<a class=\"button sign-in\" href=\"" + HtmlEscape(box.authorize_url) +
                    "\" target=\"_blank\" rel=\"noopener noreferrer\">Sign in with Claude</a>";
        } else {
          sign_in =
              "<div class=\"notice\">This box has not given a sign-in link llmbox "
              "trusts. Ask your chatbot for a new box.</div>";
        }
        page.body =
            "<h1>Sign in box " + id + "</h1>" + description + notice_html + last +
            "<ol class=\"steps\"><li><span class=\"step-title\">Sign in with your own Claude "
            "account.</span>" +
            sign_in + "</li><li><form class=\"code-form\" method=\"post\" action=\"" +
            std::string(kAuthPrefix) + token +
            "\"><label for=\"code\" class=\"step-title\">Claude shows a code. Paste it "
            "here.</label><input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"off\" "
            "autocapitalize=\"off\" spellcheck=\"false\" required maxlength=\"" +
            std::to_string(common::kMaxActivationCodeBytes) +
            "\" placeholder=\"Paste the code\"><input type=\"hidden\" name=\"csrf\" value=\"" +
            HtmlEscape(csrf.Issue(browser_id, token)) +
            "\"><button class=\"button\" type=\"submit\">Activate the box</button></form>"
            "</li></ol>";
        if (box.expires_at_ms != 0) {
          page.body +=
              "<p class=\"muted\">This link works until " + FormatUtc(box.expires_at_ms) + ".</p>";
        }
        break;
      }
      case View::kReady: {
        page.title = "Box " + box.box_id + " is ready";
        std::string session;
        if (HasTrustedPrefix(box.session_url, options.trusted_session_prefixes)) {
          session = "<p><a class=\"button session-link\" href=\"" + HtmlEscape(box.session_url) +
                    "\" target=\"_blank\" rel=\"noopener noreferrer\">Open the session</a>"
                    "<code class=\"session\">" +
                    HtmlEscape(box.session_url) + "</code></p>";
        } else if (!box.session_url.empty()) {
          session = "<p><code class=\"session\">" + HtmlEscape(box.session_url) + "</code></p>";
        }
        page.body = "<h1>Box " + id + " is ready</h1>" + description +
                    "<div class=\"notice ok\">Your box is signed in and runs Claude Code.</div>" +
                    session +
                    "<p class=\"muted\">You can also find it in claude.ai/code or the Claude "
                    "app, under the name " +
                    HtmlEscape(box.box_id) + ". You can close this page.</p>";
        break;
      }
      case View::kError:
        page.title = "Box " + box.box_id + " failed";
        page.body = "<h1>Box " + id + " could not be signed in</h1>" + description + notice_html +
                    "<div class=\"notice\" role=\"alert\">" +
                    HtmlEscape(box.last_error.empty() ? "The box failed." : box.last_error) +
                    "</div><p>Ask your chatbot for a new box.</p>";
        break;
      case View::kExpired:
        // Plain, like an unknown link: nothing of the box (id, description, error).
        page.title = "Link expired";
        page.body =
            "<h1>This link has expired</h1><p>A box must be signed in soon after it is made, "
            "and this one was not.</p><p>Ask your chatbot for a new box.</p>";
        break;
      case View::kDestroyed:
      case View::kUnknown:
      case View::kSignIn:
      case View::kRefused:
      case View::kSignInFailed:
        break;  // not from a live record
    }
    return page;
  }

  void ShowBox(const http::Request& request, http::Responder& out, const std::string& token,
               const std::string& email, int status = 200, std::string_view notice = "",
               http::Headers extra = {}) {
    auto box = registry.FindByToken(token);
    if (!box.ok()) {
      if (!absl::IsNotFound(box.status())) return SendUnavailable(out, box.status());
      auto destroyed = registry.FindDestroyedByToken(token);
      if (!destroyed.ok()) return SendUnknown(out);
      return Send(out, 410,
                  {.view = View::kDestroyed,
                   .title = "Box destroyed",
                   .body = "<h1>Box <code>" + HtmlEscape(destroyed->box_id) +
                           "</code> was destroyed</h1><p>It was destroyed on " +
                           FormatUtc(destroyed->destroyed_at_ms) +
                           ".</p><p>Ask your chatbot for a new box if you still need one.</p>",
                   .signed_in_as = email},
                  "");
    }
    if (!OwnedBy(*box, email, out)) return;
    const View view = ViewOf(*box, NowMs());
    const std::string browser_id = BrowserId(request);
    if (view == View::kExpired && status == 200) status = 404;
    PageText page = BoxPage(*box, view, token, browser_id, notice);
    page.signed_in_as = email;
    Send(out, status, page, browser_id, std::move(extra));
  }

  // ---- Sign-in gating ----

  bool Gated() const { return options.oidc != nullptr && options.sessions != nullptr; }

  // The signed-in person's email; "" when nobody is (or gating is off).
  std::string SignedInEmail(const http::Request& request) const {
    if (!Gated()) return "";
    auto email =
        options.sessions->Verify(CookieValue(request.Header("cookie"), SessionCookie::kName));
    return email.ok() ? *email : "";
  }

  // With gating, whether `email` owns the box (the first person to sign in claims it);
  // answers with a refusal when not. Always true without gating.
  // `*not_owner` (when given) is set when the refusal is that another person owns the box.
  bool OwnedBy(const BoxRecord& box, const std::string& email, http::Responder& out,
               bool* not_owner = nullptr) {
    if (!Gated()) return true;
    auto owner = registry.ClaimActivation(box.box_id, email);
    if (!owner.ok()) {
      SendUnavailable(out, owner.status());
      return false;
    }
    if (*owner == email) return true;
    if (not_owner != nullptr) *not_owner = true;
    Send(out, 403,
         {.view = View::kRefused,
          .title = "Not your box",
          .body = "<h1>This box is not yours</h1><p>Another person signed in to activate it "
                  "first. Only they can use this link.</p><p class=\"muted\">If it is your "
                  "box, sign out and sign in with the account you used the first time.</p>",
          .signed_in_as = email},
         "");
    return false;
  }

  void SendSignIn(http::Responder& out, const std::string& token) {
    Send(out, 200,
         {.view = View::kSignIn,
          .title = "Sign in",
          .body = "<h1>Sign in to continue</h1><p>This hub lets only its own people activate "
                  "boxes. Sign in first; then this page shows your box.</p><p><a "
                  "class=\"button sign-in-first\" href=\"" +
                  std::string(kSignInStart) + "?to=" + token + "\">Sign in</a></p>"},
         "");
  }

  void StartSignIn(const http::Request& request, http::Responder& out) {
    const std::string token = FormField(request.query, "to");
    if (!ValidToken(token)) return SendUnknown(out);
    // Only a real link starts a sign-in: without one, nobody can add to the provider's table
    // of sign-ins in progress.
    if (auto box = registry.FindByToken(token); !box.ok()) {
      if (absl::IsNotFound(box.status())) return SendUnknown(out);
      return SendUnavailable(out, box.status());
    }
    auto start =
        options.oidc->BeginLogin(std::string(kAuthPrefix) + token,
                                 http::AddressKey(ClientOf(request)), LoginPool::kActivation);
    if (!start.ok()) return SendSignInFailed(out, start.status());
    http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
    headers.emplace_back("Location", start->authorize_url);
    headers.emplace_back("Set-Cookie",
                         SessionCookie::StateCookieHeader(start->state, secure_cookies));
    out.Respond({.status = 303, .headers = std::move(headers), .body = "Sign in.\n"});
  }

  void FinishSignIn(const http::Request& request, http::Responder& out) {
    const std::string error = FormField(request.query, "error");
    if (!error.empty()) {
      return SendSignInFailed(out, absl::PermissionDeniedError("the sign-in provider said " +
                                                               common::QuoteForMessage(error, 64)));
    }
    const std::string state = FormField(request.query, "state");
    const std::string cookie = CookieValue(request.Header("cookie"), SessionCookie::kStateName);
    if (state.empty() || cookie.empty() || !common::ConstantTimeEquals(state, cookie)) {
      return SendSignInFailed(
          out, absl::UnauthenticatedError("this sign-in was started in another browser or has "
                                          "expired"));
    }
    auto who = options.oidc->CompleteLogin(state, FormField(request.query, "code"));
    if (!who.ok()) return SendSignInFailed(out, who.status());
    spdlog::info("activation: {} signed in", who->email);
    http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
    headers.emplace_back("Location", who->return_to);
    headers.emplace_back("Set-Cookie",
                         options.sessions->SetCookieHeader(
                             options.sessions->Issue(who->email, who->subject), secure_cookies));
    headers.emplace_back("Set-Cookie", SessionCookie::ClearStateCookieHeader(secure_cookies));
    out.Respond({.status = 303, .headers = std::move(headers), .body = "Signed in.\n"});
  }

  void SendSignInFailed(http::Responder& out, const absl::Status& status) {
    // Here FailedPrecondition (a provider that does not offer what llmbox needs) and
    // ResourceExhausted (an oversized answer) describe the provider, not the browser: like a
    // server error they ask for a retry (503). Anything else is a refused sign-in.
    const bool provider_down = http::IsServerError(status.code()) ||
                               absl::IsResourceExhausted(status) ||
                               absl::IsFailedPrecondition(status);
    spdlog::warn("activation: sign-in failed: {}", common::AsStd(status.message()));
    Send(out, provider_down ? 503 : 403,
         {.view = View::kSignInFailed,
          .title = "Sign-in failed",
          .body = "<h1>Sign-in failed</h1><div class=\"notice\" role=\"alert\">" +
                  HtmlEscape(common::AsStd(status.message())) +
                  "</div><p>Open your activation link again to retry.</p>"},
         "");
  }

  void SignOut(http::Responder& out) {
    http::Headers extra = {{"Set-Cookie", SessionCookie::ClearCookieHeader(secure_cookies)}};
    Send(out, 200,
         {.view = View::kSignIn,
          .title = "Signed out",
          .body = "<h1>You are signed out</h1><p>Open your activation link to sign in "
                  "again.</p>"},
         "", std::move(extra));
  }

  void Refused(metrics::ActivationRefusal reason) {
    if (options.metrics != nullptr) options.metrics->RecordActivationRefusal(reason);
  }

  void SendUnavailable(http::Responder& out, const absl::Status& status) {
    spdlog::warn("activation: the registry cannot be read: {}", common::AsStd(status.message()));
    Send(out, 503,
         {.view = View::kError,
          .title = "Try again",
          .body = "<h1>llmbox cannot answer right now</h1><p>Try again in a minute.</p>"},
         "", {{"Retry-After", "30"}});
  }

  void SendStatus(http::Responder& out, const std::string& token, const std::string& email) {
    View view = View::kUnknown;
    int status = 404;
    auto box = registry.FindByToken(token);
    if (box.ok() && Gated() && registry.ClaimActivation(box->box_id, email).value_or("") != email) {
      view = View::kRefused;
      status = 403;
    } else if (box.ok()) {
      view = ViewOf(*box, NowMs());
      status = 200;
    } else if (registry.FindDestroyedByToken(token).ok()) {
      view = View::kDestroyed;
      status = 410;
    }
    out.Respond({.status = status,
                 .headers = SecurityHeaders("application/json"),
                 .body = "{\"state\":\"" + std::string(ViewName(view)) + "\"}"});
  }

  void Submit(const http::Request& request, http::Responder& out, const std::string& token,
              const std::string& email) {
    auto box = registry.FindByToken(token);
    if (!box.ok()) return ShowBox(request, out, token, email);
    const std::string client = ClientOf(request);
    if (bool not_owner = false; !OwnedBy(*box, email, out, &not_owner)) {
      if (!not_owner) return;
      Refused(metrics::ActivationRefusal::kNotOwner);
      return Audit(audit::Event::kBoxActivateRefused, *box, client, email,
                   absl::PermissionDeniedError("another person claimed the box"), "not_the_owner");
    }
    const std::string client_key = http::AddressKey(client);
    const std::string browser_id = CookieValue(request.Header("cookie"), kCookie);
    if (auto st = csrf.Redeem(FormField(request.body, "csrf"), browser_id, token, client_key);
        !st.ok()) {
      Audit(audit::Event::kBoxActivateRefused, *box, client, email, st, "form");
      Refused(metrics::ActivationRefusal::kForm);
      return ShowBox(request, out, token, email, absl::IsResourceExhausted(st) ? 429 : 403,
                     std::string(common::AsStd(st.message())) +
                         ". Nothing was sent to the box; paste the code again.");
    }
    if (ViewOf(*box, NowMs()) != View::kPending) return SeeBox(out, token);
    // What cannot be a code is refused before it costs anyone a rate-limit token.
    const std::string code = Trimmed(FormField(request.body, "code"));
    if (auto st = common::ValidateActivationCode(code); !st.ok()) {
      Audit(audit::Event::kBoxActivateRefused, *box, client, email, st, "not_a_code");
      Refused(metrics::ActivationRefusal::kNotACode);
      return ShowBox(request, out, token, email, 400,
                     "That is not a code: the " + std::string(common::AsStd(st.message())) +
                         ". Paste only the code Claude shows.");
    }
    // Per link counts per address too: a link's holders do not share one budget that any of
    // them could spend for the others. The narrower limit is taken first, and given back when
    // the wider one refuses, so a refused attempt costs nothing.
    const std::string link_key = token + " " + client_key;
    if (auto wait = per_token.Take(link_key)) {
      return TooMany(request, out, token, email, *box, client, *wait, /*per_link=*/true);
    }
    if (auto wait = per_address.Take(client_key)) {
      per_token.GiveBack(link_key);
      return TooMany(request, out, token, email, *box, client, *wait, /*per_link=*/false);
    }
    spdlog::info("activation: box {}: a code was submitted from {}", box->box_id, client);
    auto result = registry.SubmitCode(token, code);
    if (!result.ok() && absl::IsNotFound(result.status())) {
      return ShowBox(request, out, token, email);
    }
    if (!result.ok() && !absl::IsFailedPrecondition(result.status())) {
      // The registry has recorded the failure as the box's last error; the page shows it.
      spdlog::warn("activation: box {}: the code could not be checked: {}", box->box_id,
                   common::AsStd(result.status().message()));
    }
    AuditSubmission(*box, client, email, result);
    SeeBox(out, token);
  }

  // The audit record of a code that reached the registry: sent to the box (box.activate, ok
  // or the failure), refused by the box, or refused because one is being checked already.
  void AuditSubmission(const BoxRecord& box, const std::string& client, const std::string& email,
                       const absl::StatusOr<boxes::SubmitResult>& result) {
    if (!result.ok()) {
      if (absl::IsFailedPrecondition(result.status())) {
        return Audit(audit::Event::kBoxActivateRefused, box, client, email, result.status(),
                     "busy");
      }
      return Audit(audit::Event::kBoxActivate, box, client, email, result.status(), "");
    }
    if (result->activated) {
      return Audit(audit::Event::kBoxActivate, box, client, email, absl::OkStatus(), "");
    }
    Audit(audit::Event::kBoxActivateRefused, box, client, email,
          absl::PermissionDeniedError("the box refused the code"), "box_refused_code");
  }

  // One activation record: the browser's address, the signed-in person (with gating), the
  // box and its owner; a refusal's `reason`. Never the code or the link's token.
  // Refusals are recorded up to kAuditedRefusals per box and address in each attempt window:
  // a chatbot holds its box's link and could otherwise post forms without end and push every
  // earlier record out through rotation. The rest are counted (/metrics) and not recorded.
  void Audit(audit::Event event, const BoxRecord& box, const std::string& client,
             const std::string& email, const absl::Status& status, std::string_view reason) {
    if (options.audit == nullptr) return;
    if (event == audit::Event::kBoxActivateRefused &&
        audited_refusals.Take(box.box_id + "|" + http::AddressKey(client)).has_value()) {
      return;
    }
    audit::AuditRecord record{.event = event,
                              .principal = email,
                              .client = client,
                              .box_id = box.box_id,
                              .spoke = box.spoke,
                              .outcome = audit::Outcome(status),
                              .error = std::string(common::AsStd(status.message())),
                              .details = {{"owner", box.owner}}};
    if (!reason.empty()) record.details.emplace_back("reason", std::string(reason));
    options.audit->Record(record);
  }

  void TooMany(const http::Request& request, http::Responder& out, const std::string& token,
               const std::string& email, const BoxRecord& box, const std::string& client,
               std::chrono::seconds wait, bool per_link) {
    Refused(metrics::ActivationRefusal::kRateLimited);
    spdlog::warn("activation: box {}: a code from {} was refused: too many submissions {}",
                 box.box_id, client, per_link ? "for this link from that address" : "from it");
    Audit(audit::Event::kBoxActivateRefused, box, client, email,
          absl::ResourceExhaustedError(per_link ? "too many submissions for this link"
                                                : "too many submissions from this address"),
          "rate_limited");
    ShowBox(request, out, token, email, 429,
            std::string("Too many attempts ") +
                (per_link ? "for this box from your address" : "from your address") +
                ". Try again in " + Minutes(wait) + ".",
            {{"Retry-After", std::to_string(wait.count())}});
  }

  // 303 to the box's page, so a reload never sends the code again.
  void SeeBox(http::Responder& out, const std::string& token) {
    http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
    headers.emplace_back("Location", std::string(kAuthPrefix) + token);
    out.Respond({.status = 303, .headers = std::move(headers), .body = "See the box's page.\n"});
  }

  void SendAsset(const http::Request& request, http::Responder& out) {
    if (request.method != "GET" && request.method != "HEAD") {
      out.Respond({.status = 405,
                   .headers = SecurityHeaders("text/plain; charset=utf-8"),
                   .body = "GET only\n"});
      return;
    }
    if (request.path == "/assets/activation.css") {
      out.Respond({.status = 200,
                   .headers = SecurityHeaders("text/css; charset=utf-8"),
                   .body = std::string(ActivationCss())});
      return;
    }
    if (request.path == "/assets/activation.js") {
      out.Respond({.status = 200,
                   .headers = SecurityHeaders("text/javascript; charset=utf-8"),
                   .body = std::string(ActivationJs())});
      return;
    }
    if (request.path == "/assets/favicon.svg") {
      out.Respond({.status = 200,
                   .headers = SecurityHeaders("image/svg+xml"),
                   .body = std::string(FaviconSvg())});
      return;
    }
    out.Respond({.status = 404,
                 .headers = SecurityHeaders("text/plain; charset=utf-8"),
                 .body = "not found\n"});
  }

  boxes::BoxRegistry& registry;
  common::Clock& clock;
  const PageOptions options;
  const bool secure_cookies;
  CsrfTokens csrf;
  RateLimiter per_token;
  RateLimiter per_address;
  RateLimiter audited_refusals;  // refusals recorded in the audit log, per box and address
};

ActivationPage::ActivationPage(boxes::BoxRegistry& registry, common::Clock& clock,
                               PageOptions options)
    : state_(std::make_unique<State>(registry, clock, std::move(options))) {}

ActivationPage::~ActivationPage() = default;

bool ActivationPage::Serves(std::string_view path) {
  return path.substr(0, kAuthPrefix.size()) == kAuthPrefix || path.rfind("/assets/", 0) == 0;
}

void ActivationPage::Handle(const http::Request& request, http::Responder& responder) {
  State& s = *state_;
  if (request.path.rfind("/assets/", 0) == 0) return s.SendAsset(request, responder);
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (s.Gated()) {
    if (request.path == kSignInStart && read) return s.StartSignIn(request, responder);
    if (request.path == kSignInCallback && read) return s.FinishSignIn(request, responder);
    if (request.path == kSignOut && request.method == "POST") return s.SignOut(responder);
  }
  std::string token = request.path.substr(std::min(request.path.size(), kAuthPrefix.size()));
  const bool status = token.size() > kStatusSuffix.size() &&
                      token.substr(token.size() - kStatusSuffix.size()) == kStatusSuffix;
  if (status) token.resize(token.size() - kStatusSuffix.size());
  if (!ValidToken(token)) return s.SendUnknown(responder);
  const std::string email = s.SignedInEmail(request);
  if (s.Gated() && email.empty()) {
    if (status) {
      responder.Respond({.status = 401,
                         .headers = SecurityHeaders("application/json"),
                         .body = "{\"state\":\"signin\"}"});
      return;
    }
    if (read || request.method == "POST") return s.SendSignIn(responder, token);
  }
  if (status && read) return s.SendStatus(responder, token, email);
  if (read && !status) return s.ShowBox(request, responder, token, email);
  if (request.method == "POST" && !status) return s.Submit(request, responder, token, email);
  http::Headers headers = SecurityHeaders("text/plain; charset=utf-8");
  headers.emplace_back("Allow", status ? "GET, HEAD" : "GET, HEAD, POST");
  responder.Respond({.status = 405, .headers = std::move(headers), .body = "not allowed\n"});
}

std::string ActivationPage::LoggablePath(std::string_view path) {
  if (!path.starts_with(kAuthPrefix)) return std::string(path);
  for (std::string_view fixed : {kSignInStart, kSignInCallback, kSignOut}) {
    if (path == fixed) return std::string(path);
  }
  // Whatever follows /auth/ is a link's token, or something sent as one: never logged.
  std::string_view rest = path.substr(kAuthPrefix.size());
  const bool status = rest.ends_with(kStatusSuffix);
  return std::string(kAuthPrefix) + "[token]" + (status ? std::string(kStatusSuffix) : "");
}

}  // namespace llmbox::hub::activation
