// hub/auth/api_key_auth.h
//
// Authenticates an MCP request by its API key: `Authorization: Bearer <key>` (the scheme
// case-insensitive), where the key's SHA-256 names a live key in the Store. Revoking a key in
// the Store (llmbox-hub apikey revoke) takes effect on the next request.
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
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::auth {

class ApiKeyAuthenticator {
 public:
  // `store` must outlive the authenticator.
  explicit ApiKeyAuthenticator(store::Store& store) : store_(store) {}

  // The key's name, for the request's Authorization header (nullopt: absent).
  [[nodiscard]] absl::StatusOr<std::string> Authenticate(
      std::optional<std::string_view> authorization) const;

 private:
  store::Store& store_;
};

}  // namespace llmbox::hub::auth
