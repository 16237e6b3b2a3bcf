// hub/oauth/form.h
//
// The form-encoded bodies of the token and revocation endpoints (RFC 6749 §3.2: "parameters
// sent without a value MUST be treated as if they were omitted from the request"; "request and
// response parameters MUST NOT be included more than once"). Decoding is activation::FormDecode.
//
//   LLMBOX_ASSIGN_OR_RETURN(Form form, Form::Parse(request.body));
//   std::optional<std::string> code = form.Get("code");
//
// A plain value. Errors: invalid_request (errors.h) for a body over kMaxFormBytes, more than
// kMaxFormFields fields, or a parameter sent twice (the message names it when it is one of the
// OAuth parameters this hub reads; never a value, nor a name it does not know).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace llmbox::hub::oauth {

inline constexpr std::size_t kMaxFormBytes = 8 * 1024;
inline constexpr std::size_t kMaxFormFields = 32;

class Form {
 public:
  // Linear in `body`; reads nothing beyond kMaxFormBytes.
  [[nodiscard]] static absl::StatusOr<Form> Parse(std::string_view body);

  // The parameter's value; nullopt when absent or sent empty.
  std::optional<std::string> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

 private:
  std::map<std::string, std::string, std::less<>> fields_;
};

}  // namespace llmbox::hub::oauth
