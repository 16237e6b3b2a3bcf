// common/metrics_auth.h
//
// The optional bearer token in front of /metrics (hub.metrics.bearer_token_file on the hub,
// metrics.bearer_token_file on a spoke): read once at start from a file only its owner may
// read, and compared in constant time with what a scraper sends.
//
//   LLMBOX_ASSIGN_OR_RETURN(std::string token,
//   ReadMetricsBearerToken("/etc/llmbox/metrics.token")); if
//   (!MetricsBearerAllows(request.Header("authorization"), token)) {
//     // 401 with WWW-Authenticate: kMetricsWwwAuthenticate
//   }
//
// The token never appears in a message, a log line or an answer.
//
// Thread-safe; no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "common/config.h"

namespace llmbox::common {

// What a 401 from /metrics carries in WWW-Authenticate (RFC 6750 §3).
inline constexpr char kMetricsWwwAuthenticate[] = "Bearer realm=\"llmbox-metrics\"";

// The token in the file at `path` (ReadPrivateFile: at most 0640, one trailing newline
// dropped): 16 to 4096 visible ASCII characters (what Prometheus's credentials_file sends
// as is). Errors name the path and the rule, never the file's content: NotFound (cannot be
// read), PermissionDenied (its mode is too open), FailedPrecondition (not a regular file, too
// large), InvalidArgument (too short, too long, or a character outside 0x21..0x7e).
[[nodiscard]] absl::StatusOr<std::string> ReadMetricsBearerToken(const std::string& path);

// Whether `authorization` (the request's Authorization header, if any) is "Bearer <token>"
// with the scheme in any case. Compares hashes of equal length, so the time taken says
// nothing about the token, its length included. An empty `token` allows nothing.
[[nodiscard]] bool MetricsBearerAllows(std::optional<std::string_view> authorization,
                                       std::string_view token);

// The `bearer_token_file` key of a metrics section (hub.metrics, a spoke's metrics): the token
// into `*token` when the key is set (a relative path is taken from `base_dir`, the config
// file's folder), untouched when it is absent. An inline `bearer_token` is refused like every
// inline secret. Errors in the config's form, naming the key, its line and the file's problem.
[[nodiscard]] absl::Status ReadMetricsBearerTokenKey(ConfigMap& section,
                                                     const std::string& base_dir,
                                                     std::string* token);

}  // namespace llmbox::common
