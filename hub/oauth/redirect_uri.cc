#include "hub/oauth/redirect_uri.h"

#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/absl_compat.h"
#include "common/validate.h"
#include "hub/oauth/errors.h"

namespace llmbox::hub::oauth {
namespace {

constexpr std::size_t kMaxUriLength = 2048;

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("redirect_uri ", common::AsAbsl(what)));
}

bool IsHostChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
}

bool IsIpv6Char(char c) {
  return absl::ascii_isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
}

int DefaultPort(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

std::string Origin(const UriParts& parts) {
  std::string host =
      parts.host.find(':') != std::string::npos ? absl::StrCat("[", parts.host, "]") : parts.host;
  std::string origin = absl::StrCat(parts.scheme, "://", host);
  if (parts.port.has_value()) absl::StrAppend(&origin, ":", *parts.port);
  return origin;
}

bool IsLoopbackHttp(const UriParts& parts) {
  return parts.scheme == "http" && IsLoopbackRedirectHost(parts.host);
}

// Whether `uri` is allowed by the operator's `entry`: byte for byte, or, for an entry that is
// an origin alone ("https://host"), any URI on that origin.
bool AllowedBy(std::string_view entry, std::string_view uri, const UriParts& parts) {
  if (entry == uri) return true;
  absl::StatusOr<UriParts> allowed = ParseRedirectUri(entry);
  if (!allowed.ok() || !allowed->path_and_query.empty()) return false;
  return allowed->scheme == parts.scheme && allowed->host == parts.host &&
         allowed->port.value_or(DefaultPort(allowed->scheme)) ==
             parts.port.value_or(DefaultPort(parts.scheme));
}

}  // namespace

absl::StatusOr<UriParts> ParseRedirectUri(std::string_view uri) {
  if (uri.empty()) return Invalid("is empty");
  if (uri.size() > kMaxUriLength) {
    return Invalid(absl::StrCat("is longer than ", kMaxUriLength, " characters"));
  }
  for (char c : uri) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) {
      return Invalid("contains whitespace, a control character or a non-ASCII byte");
    }
  }
  if (uri.find('#') != std::string_view::npos) return Invalid("has a fragment");
  const std::size_t colon = uri.find("://");
  if (colon == std::string_view::npos) return Invalid("is not an absolute http(s) URI");
  UriParts parts;
  parts.scheme = absl::AsciiStrToLower(std::string(uri.substr(0, colon)));
  if (parts.scheme != "http" && parts.scheme != "https") {
    return Invalid("must use http or https");
  }
  std::string_view rest = uri.substr(colon + 3);
  const std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  parts.path_and_query =
      authority_end == std::string_view::npos ? "" : std::string(rest.substr(authority_end));
  if (authority.find('@') != std::string_view::npos) return Invalid("has userinfo");
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("has an unclosed IPv6 literal");
    host = authority.substr(1, close - 1);
    if (host.empty()) return Invalid("has an empty IPv6 literal");
    for (char c : host) {
      if (!IsIpv6Char(c)) return Invalid("has a malformed IPv6 literal");
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
      return Invalid("has a malformed IPv6 literal");
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid("has characters after its IPv6 literal");
      has_port = true;
      port = after.substr(1);
    }
  } else {
    const std::size_t port_colon = authority.find(':');
    host = authority.substr(0, port_colon);
    if (port_colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(port_colon + 1);
    }
    if (host.empty()) return Invalid("has no host");
    for (char c : host) {
      if (!IsHostChar(c)) return Invalid("has a host with characters other than a-z, 0-9, - and .");
    }
  }
  parts.host = absl::AsciiStrToLower(std::string(host));
  if (has_port) {
    if (port.empty() || port.size() > 5) return Invalid("has a malformed port");
    int value = 0;
    for (char c : port) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return Invalid("has a malformed port");
      }
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return Invalid("has a port outside 1..65535");
    parts.port = value;
  }
  return parts;
}

bool IsLoopbackRedirectHost(std::string_view host) {
  if (host == "localhost") return true;
  const std::string text(host);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    return std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
  }
  return false;
}

absl::Status CheckRedirectUriAllowed(std::string_view uri, const OAuthOptions& options) {
  absl::StatusOr<UriParts> parts = ParseRedirectUri(uri);
  if (!parts.ok()) return OAuthError(kInvalidRedirectUri, common::AsStd(parts.status().message()));
  if (IsLoopbackHttp(*parts)) {
    const std::string origin = common::QuoteForMessage(Origin(*parts), 100);
    if (!options.allow_loopback_redirects) {
      return OAuthError(kInvalidRedirectUri,
                        absl::StrCat("redirect_uri on ", origin,
                                     ": loopback redirects are off on this hub "
                                     "(auth.oauth.allow_loopback_redirects)"));
    }
    if (parts->path_and_query.size() < 2 || parts->path_and_query.find('?') != std::string::npos) {
      return OAuthError(kInvalidRedirectUri,
                        absl::StrCat("redirect_uri on ", origin,
                                     ": a loopback redirect must have a path (like /callback) "
                                     "and no query"));
    }
    return absl::OkStatus();
  }
  for (const std::string& entry : options.allowed_redirect_uris) {
    if (AllowedBy(entry, uri, *parts)) return absl::OkStatus();
  }
  return OAuthError(kInvalidRedirectUri,
                    absl::StrCat("redirect_uri on ", common::QuoteForMessage(Origin(*parts), 100),
                                 " is not one this hub allows (auth.oauth.allowed_redirect_uris)"));
}

bool IsOperatorListedRedirectUri(std::string_view uri, const OAuthOptions& options) {
  absl::StatusOr<UriParts> parts = ParseRedirectUri(uri);
  if (!parts.ok() || IsLoopbackHttp(*parts)) return false;
  for (const std::string& entry : options.allowed_redirect_uris) {
    if (AllowedBy(entry, uri, *parts)) return true;
  }
  return false;
}

bool RedirectUriMatches(std::string_view registered, std::string_view presented) {
  if (registered == presented) return true;
  absl::StatusOr<UriParts> a = ParseRedirectUri(registered);
  absl::StatusOr<UriParts> b = ParseRedirectUri(presented);
  if (!a.ok() || !b.ok()) return false;
  // RFC 8252 §7.3: a native app's loopback listener gets whatever port is free, so only the
  // port may differ; the host and the path must still be the registered ones.
  return IsLoopbackHttp(*a) && IsLoopbackHttp(*b) && a->host == b->host &&
         a->path_and_query == b->path_and_query;
}

std::optional<std::string> MatchRedirectUri(const std::vector<std::string>& registered,
                                            std::string_view presented) {
  for (const std::string& uri : registered) {
    if (RedirectUriMatches(uri, presented)) return uri;
  }
  return std::nullopt;
}

}  // namespace llmbox::hub::oauth
