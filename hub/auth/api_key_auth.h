// hub/auth/api_key_auth.h
//
// Authenticates an MCP request by its API key: `Authorization: Bearer <key>` (the scheme
// case-insensitive), where the key's SHA-256 names a live key in the Store. The caller is the
// key's Principal (principal.h): its name, and the admin role when the key was made with
// `llmbox-hub apikey create --admin`. Revoking a key in the Store (llmbox-hub apikey revoke)
// takes effect on the next request.
//
//   ApiKeyAuthenticator auth(store);
//   options.authenticate = [&auth](std::optional<std::string_view> header) {
//     return auth.Authenticate(header);
//   };
//
// Thread-safe (as the Store is). Errors: Unauthenticated, with a message that says what to
// send; it never echoes the key.
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

#include "hub/auth/principal.h"
#include "hub/store/store.h"

namespace llmbox::hub::auth {

class ApiKeyAuthenticator {
 public:
  // `store` must outlive the authenticator.
  explicit ApiKeyAuthenticator(store::Store& store) : store_(store) {}

  // The key's principal, for the request's Authorization header (nullopt: absent).
  [[nodiscard]] absl::StatusOr<Principal> Authenticate(
      std::optional<std::string_view> authorization) const;

 private:
  store::Store& store_;
};

}  // namespace llmbox::hub::auth
