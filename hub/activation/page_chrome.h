// hub/activation/page_chrome.h
//
// What every page a person sees on the hub shares with the activation page: the security
// headers, the frame (the card, its badge and footer, styled by /assets/activation.css), form
// and URL encoding, the browser's cookies and the client address that limits count. The OAuth
// authorize pages (hub/oauth/authorize_page.h) are built from the same pieces.
//
//   out.Respond({.status = 200,
//                .headers = SecurityHeaders("text/html; charset=utf-8"),
//                .body = RenderPage({.state = "signin", .badge = "Sign in", .title = "Sign in",
//                                    .body = "<h1>Sign in</h1>" + HtmlEscape(name)})});
//
// Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "hub/http/server.h"

namespace llmbox::hub::activation {

// Headers that forbid caching, framing, sniffing and Referer, with a strict
// Content-Security-Policy: same-origin files only (no inline code) and forms that post only to
// this origin. `form_targets` adds sources to form-action (space-separated, such as
// "https://claude.ai"): browsers check form-action on the redirect that answers a form too,
// so a page whose form is answered by a redirect to another origin must name it.
http::Headers SecurityHeaders(std::string_view content_type, std::string_view form_targets = "");

// One page in the activation page's look.
struct PageFrame {
  std::string state;            // <body class="state-..."> and <main data-state="...">: [a-z-]+
  std::string badge;            // the badge's text (plain text)
  std::string title;            // plain text
  std::string body;             // the card's inner HTML (the caller escapes what it puts in)
  std::string status_url;       // data-status-url: the activation script polls it while working
  bool refresh = false;         // without script, reload every 3 seconds
  std::string signed_in_as;     // plain text: "Signed in as ..." under the card when set
  std::string sign_out_action;  // with signed_in_as: a Sign out button posting here when set
  std::string footer;           // plain text
};
std::string RenderPage(const PageFrame& page);

// Escapes text for HTML element content and attribute values.
std::string HtmlEscape(std::string_view text);

// Decodes application/x-www-form-urlencoded text (a body or a query); the value of the first
// `field`, or "" when absent. Linear in the text.
std::string FormField(std::string_view body, std::string_view field);
// Decodes one form-encoded name or value: '+' is a space, %XX a byte, and a '%' without two
// hex digits after it stays as it is. Linear in `text`.
std::string FormDecode(std::string_view text);
// How many times `field` occurs in the same text (a parameter sent twice is ambiguous).
std::size_t FormFieldCount(std::string_view body, std::string_view field);
// Percent-encodes `text` for a query component or form value: all but A-Z a-z 0-9 - . _ ~.
std::string FormEncode(std::string_view text);

// The value of the cookie `name` in a Cookie header, or "" when absent.
std::string CookieValue(std::optional<std::string_view> header, std::string_view name);

// The address that limits and logs use: the client's, as the server resolved it (honouring
// trusted proxies); the TCP peer's for a request built without one (tests).
std::string ClientOf(const http::Request& request);

// A wait for people: "1 minute", "15 minutes" (rounded up).
std::string Minutes(std::chrono::seconds wait);

}  // namespace llmbox::hub::activation
