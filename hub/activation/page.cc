// hub/activation/page.cc
#include "hub/activation/page.h"

#include <string>

#include "common/absl_compat.h"
#include "common/secrets.h"

namespace llmbox::hub::activation {
namespace {

constexpr char kCsrfCookie[] = "llmbox_csrf";

http::Headers PageHeaders() {
  return {{"Content-Type", "text/html; charset=utf-8"},
          {"Cache-Control", "no-store"},
          {"Referrer-Policy", "no-referrer"},
          {"X-Frame-Options", "DENY"},
          {"X-Content-Type-Options", "nosniff"},
          {"Content-Security-Policy",
           "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
           "frame-ancestors 'none'"}};
}

std::string Page(std::string_view title, std::string_view body) {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" +
         HtmlEscape(title) +
         "</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem "
         "auto;padding:0 1rem;line-height:1.5}a.button,button{display:inline-block;padding:.6rem "
         "1rem;border-radius:.4rem;background:#c15f3c;color:#fff;text-decoration:none;border:0;"
         "font-size:1rem}input{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;"
         "margin:.5rem 0}.error{color:#a00}</style></head><body>" +
         std::string(body) + "</body></html>";
}

void Answer(http::Responder& responder, int status, std::string_view title, std::string_view body,
            http::Headers extra = {}) {
  http::Headers headers = PageHeaders();
  for (auto& header : extra) headers.push_back(std::move(header));
  responder.Respond({.status = status, .headers = std::move(headers), .body = Page(title, body)});
}

std::string CookieValue(std::optional<std::string_view> header, std::string_view name) {
  if (!header) return "";
  std::string_view rest = *header;
  while (!rest.empty()) {
    const auto end = rest.find(';');
    std::string_view part = rest.substr(0, end);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=') {
      return std::string(part.substr(name.size() + 1));
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return "";
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string FormDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() + 0 && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string SignInForm(const store::BoxRecord& box, const std::string& csrf,
                       std::string_view message) {
  std::string body = "<h1>Sign in box " + HtmlEscape(box.box_id) + "</h1>";
  if (!message.empty()) body += "<p class=\"error\">" + HtmlEscape(message) + "</p>";
  body +=
      "<p>1. Sign in with your own Claude account. Claude then shows a code.</p>"
      "<p><a class=\"button\" href=\"" +
      HtmlEscape(box.authorize_url) +
      "\" target=\"_blank\" rel=\"noopener noreferrer\">Sign in with Claude</a></p>"
      "<form method=\"post\"><p>2. Paste the code here:</p>"
      "<input name=\"code\" autocomplete=\"off\" required maxlength=\"512\">"
      "<input type=\"hidden\" name=\"csrf\" value=\"" +
      HtmlEscape(csrf) + "\"><button type=\"submit\">Activate the box</button></form>";
  return body;
}

std::string ReadyBody(const store::BoxRecord& box) {
  return "<h1>Box " + HtmlEscape(box.box_id) + " is ready</h1><p>Continue in <a href=\"" +
         HtmlEscape(box.session_url) + "\">" + HtmlEscape(box.session_url) +
         "</a> (claude.ai/code or the Claude app).</p>";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormField(std::string_view body, std::string_view field) {
  while (!body.empty()) {
    const auto end = body.find('&');
    std::string_view pair = body.substr(0, end);
    const auto eq = pair.find('=');
    if (FormDecode(pair.substr(0, eq)) == field) {
      return eq == std::string_view::npos ? "" : FormDecode(pair.substr(eq + 1));
    }
    if (end == std::string_view::npos) break;
    body.remove_prefix(end + 1);
  }
  return "";
}

void ActivationPage::Handle(const http::Request& request, http::Responder& responder) {
  const std::string token = request.path.substr(std::string_view("/auth/").size());
  auto box = registry_.FindByToken(token);
  if (!box.ok()) {
    return Answer(responder, 404, "Unknown link",
                  "<h1>This activation link is unknown</h1><p>The box may have been destroyed or "
                  "reaped. Ask for a new box.</p>");
  }
  if (box->phase == store::Phase::kReady) {
    return Answer(responder, 200, "Box ready", ReadyBody(*box));
  }
  if (box->phase == store::Phase::kGone) {
    return Answer(responder, 410, "Box gone",
                  "<h1>Box " + HtmlEscape(box->box_id) + " is gone</h1><p>" +
                      HtmlEscape(box->last_error) + "</p>");
  }
  if (request.method == "GET" || request.method == "HEAD") {
    auto csrf = common::RandomToken(24);
    if (!csrf.ok()) return Answer(responder, 500, "Error", "<h1>Try again</h1>");
    return Answer(responder, 200, "Sign in box " + box->box_id,
                  SignInForm(*box, *csrf, box->last_error),
                  {{"Set-Cookie", std::string(kCsrfCookie) + "=" + *csrf +
                                      "; Path=/auth/; HttpOnly; SameSite=Strict" +
                                      (request.tls ? "; Secure" : "")}});
  }
  if (request.method != "POST") {
    return Answer(responder, 405, "Not allowed", "<h1>Use the form</h1>", {{"Allow", "GET, POST"}});
  }
  const std::string cookie = CookieValue(request.Header("cookie"), kCsrfCookie);
  const std::string form_csrf = FormField(request.body, "csrf");
  if (cookie.empty() || !common::ConstantTimeEquals(cookie, form_csrf)) {
    return Answer(responder, 403, "Expired form",
                  "<h1>This form has expired</h1><p>Open the activation link again.</p>");
  }
  std::string code = FormField(request.body, "code");
  while (!code.empty() && (code.back() == ' ' || code.back() == '\n' || code.back() == '\r')) {
    code.pop_back();
  }
  while (!code.empty() && code.front() == ' ') code.erase(code.begin());
  if (code.empty()) {
    return Answer(responder, 400, "No code", SignInForm(*box, cookie, "Paste the code first."));
  }
  auto result = registry_.SubmitCode(token, code);
  if (!result.ok()) {
    return Answer(responder, 200, "Not activated",
                  SignInForm(*box, cookie, std::string(common::AsStd(result.status().message()))));
  }
  if (result->activated) return Answer(responder, 200, "Box ready", ReadyBody(result->record));
  return Answer(responder, 200, "Not activated",
                SignInForm(result->record, cookie,
                           "Claude did not accept the code: " + result->box_error +
                               " Sign in again with the new link and paste the new code."));
}

}  // namespace llmbox::hub::activation
