// hub/activation/page.h
//
// The page a person opens to sign a box in: GET /auth/<token> shows the box, a "Sign in with
// Claude" link (the box's authorize URL, which exists only here) and a code form; POST
// submits the code to the box through its spoke and shows the outcome (ready with the
// session URL, or the box's own error and a fresh sign-in link).
//
// The form is protected by a double-submit CSRF token (a random cookie that must equal the
// form field); pages are never cached or framed and send no Referer.
//
//   ActivationPage page(registry);
//   if (request.path.starts_with("/auth/")) return page.Handle(request, *responder);
//
// Thread-safe.
#pragma once

#include "hub/boxes/registry.h"
#include "hub/http/server.h"

namespace llmbox::hub::activation {

class ActivationPage {
 public:
  explicit ActivationPage(boxes::BoxRegistry& registry) : registry_(registry) {}

  void Handle(const http::Request& request, http::Responder& responder);

 private:
  boxes::BoxRegistry& registry_;
};

// Decodes application/x-www-form-urlencoded text; the value of `field`, or "" when absent.
std::string FormField(std::string_view body, std::string_view field);
// Escapes text for HTML element content and attribute values.
std::string HtmlEscape(std::string_view text);

}  // namespace llmbox::hub::activation
