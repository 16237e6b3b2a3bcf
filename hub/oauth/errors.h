// hub/oauth/errors.h
//
// OAuth errors (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 7009) as absl::Status: the OAuth error
// code rides in a payload, the status code gives the HTTP status, the message is the
// error_description (never a token, code, verifier or secret).
//
//   return OAuthError(kInvalidGrant, "this authorization code was already used");
//   ...
//   http::Response r = OAuthErrorResponse(status);   // 400 {"error":"invalid_grant",...}
//
// A Status without the payload answers as server_error (500) or temporarily_unavailable
// (503, for Unavailable/DeadlineExceeded/ResourceExhausted).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "hub/http/server.h"

namespace llmbox::hub::oauth {

inline constexpr std::string_view kInvalidRequest = "invalid_request";
inline constexpr std::string_view kInvalidClient = "invalid_client";  // 401
inline constexpr std::string_view kInvalidGrant = "invalid_grant";
inline constexpr std::string_view kUnauthorizedClient = "unauthorized_client";
inline constexpr std::string_view kUnsupportedGrantType = "unsupported_grant_type";
inline constexpr std::string_view kUnsupportedResponseType = "unsupported_response_type";
inline constexpr std::string_view kInvalidScope = "invalid_scope";
inline constexpr std::string_view kInvalidTarget = "invalid_target";  // RFC 8707
inline constexpr std::string_view kAccessDenied = "access_denied";
inline constexpr std::string_view kInvalidRedirectUri = "invalid_redirect_uri";        // 7591
inline constexpr std::string_view kInvalidClientMetadata = "invalid_client_metadata";  // 7591
inline constexpr std::string_view kUnsupportedTokenType = "unsupported_token_type";    // 7009
inline constexpr std::string_view kTemporarilyUnavailable = "temporarily_unavailable";
inline constexpr std::string_view kServerError = "server_error";

// A Status carrying `error` (one of the above). invalid_client maps to Unauthenticated (401),
// temporarily_unavailable to Unavailable (503), server_error to Internal, the rest to
// InvalidArgument (400).
[[nodiscard]] absl::Status OAuthError(std::string_view error, std::string_view description);

// The OAuth error code of `status`: its payload, or server_error / temporarily_unavailable.
std::string OAuthErrorCode(const absl::Status& status);

// The JSON error response for the token, registration and revocation endpoints: the status's
// HTTP status, {"error": ..., "error_description": ...}, no-store, and for invalid_client a
// `WWW-Authenticate: Basic realm="llmbox"` header.
http::Response OAuthErrorResponse(const absl::Status& status);

}  // namespace llmbox::hub::oauth
