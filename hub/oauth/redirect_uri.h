// hub/oauth/redirect_uri.h
//
// Redirect URI rules: which URIs a client may register (the operator's allow-list, loopback
// for native clients), and whether the URI an authorize or token request names is one the
// client registered (exact string match, except that a loopback http URI matches any port,
// RFC 8252 §7.3). Pure functions on bounded input; no I/O.
//
//   LLMBOX_RETURN_IF_ERROR(CheckRedirectUriAllowed(uri, options));      // at registration
//   if (!RedirectUriMatches(registered, presented)) ...                  // at authorize/token
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hub/oauth/options.h"

namespace llmbox::hub::oauth {

// The parts of an absolute http(s) URI this module needs. Userinfo, fragments, and anything
// but http/https are refused by ParseRedirectUri.
struct UriParts {
  std::string scheme;  // "http" or "https", lowercase
  std::string host;    // lowercase; IPv6 without brackets
  std::optional<int> port;
  std::string path_and_query;  // from the first '/', "" when none
};

// InvalidArgument (naming the problem) for a URI that is not an absolute http(s) URI of at
// most 2048 characters, has userinfo or a fragment, or contains whitespace or control
// characters.
[[nodiscard]] absl::StatusOr<UriParts> ParseRedirectUri(std::string_view uri);

// Whether `host` is a loopback name for RFC 8252: 127.0.0.1 (any 127/8), ::1, localhost.
bool IsLoopbackRedirectHost(std::string_view host);

// Whether a client may use `uri` at all: on the operator's list (options.allowed_redirect_uris),
// or a loopback http URI when options.allow_loopback_redirects. A loopback URI must have a path
// beyond "/" and no query (RFC 8252 apps listen on a path like /callback; a free-form loopback
// target would make the hub an open redirector to whatever listens on the person's machine).
// An error with kInvalidRedirectUri (errors.h) that names the URI's origin otherwise.
[[nodiscard]] absl::Status CheckRedirectUriAllowed(std::string_view uri,
                                                   const OAuthOptions& options);

// Whether `uri` is on the operator's list (options.allowed_redirect_uris, as
// CheckRedirectUriAllowed reads it) and is not a loopback http URI: a redirect target the
// operator vouches for. Loopback URIs never count, whatever the list says.
bool IsOperatorListedRedirectUri(std::string_view uri, const OAuthOptions& options);

// Whether `presented` is `registered`: byte for byte, or both loopback http URIs that differ
// only in the port.
bool RedirectUriMatches(std::string_view registered, std::string_view presented);

// The one of `registered` that `presented` matches, or nullopt.
std::optional<std::string> MatchRedirectUri(const std::vector<std::string>& registered,
                                            std::string_view presented);

}  // namespace llmbox::hub::oauth
