#include "hub/oauth/form.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "hub/activation/page_chrome.h"
#include "hub/oauth/errors.h"

namespace llmbox::hub::oauth {
namespace {

constexpr std::string_view kKnownNames[] = {
    "grant_type", "code",     "redirect_uri",  "code_verifier", "client_id",       "client_secret",
    "scope",      "resource", "refresh_token", "token",         "token_type_hint",
};

}  // namespace

absl::StatusOr<Form> Form::Parse(std::string_view body) {
  if (body.size() > kMaxFormBytes) {
    return OAuthError(kInvalidRequest, "the form is larger than 8 KiB");
  }
  Form form;
  std::size_t fields = 0;
  while (!body.empty()) {
    const std::size_t end = body.find('&');
    const std::string_view pair = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    if (++fields > kMaxFormFields) {
      return OAuthError(kInvalidRequest, "the form has more than 32 parameters");
    }
    const std::size_t eq = pair.find('=');
    std::string name = activation::FormDecode(pair.substr(0, eq));
    std::string value =
        eq == std::string_view::npos ? std::string() : activation::FormDecode(pair.substr(eq + 1));
    if (form.fields_.contains(name)) {
      // Only a parameter name we know is named back: any other name is the client's text,
      // and might be a secret pasted in the wrong place.
      const bool known =
          std::find(std::begin(kKnownNames), std::end(kKnownNames), name) != std::end(kKnownNames);
      return OAuthError(kInvalidRequest, known ? "the parameter " + name + " was sent twice"
                                               : std::string("a parameter was sent twice"));
    }
    form.fields_.emplace(std::move(name), std::move(value));
  }
  return form;
}

std::optional<std::string> Form::Get(std::string_view name) const {
  auto it = fields_.find(name);
  if (it == fields_.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace llmbox::hub::oauth
