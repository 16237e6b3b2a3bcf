// hub/config/quota_config.h
//
// hub.quotas: what one principal (auth::Principal: an API key, the anonymous caller, later an
// OAuth subject) may use of the hub: boxes alive, creates per hour, execs at once and exec
// seconds per hour. Defaults for everyone, and overrides for named principals. See
// docs/hub.md ("Quotas") and docs/security.md ("Quotas").
//
//   hub:
//     quotas:
//       boxes_alive: 10
//       overrides:
//         - principal: key:ci
//           boxes_alive: 50
//
// Each limit keeps the key path that set it, so a refusal can name it
// ("hub.quotas.overrides[0].boxes_alive"). A plain value, copyable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "common/config.h"

namespace llmbox::hub::config {

struct QuotaLimit {
  std::int64_t value = 0;
  std::string key;  // the config key path that set it, for refusals
};

// One principal's limits. 0 is a real limit (none allowed), not "unlimited".
struct QuotaLimits {
  // Boxes the principal has that are not gone (creating, pending, ready, error), 0..10000.
  QuotaLimit boxes_alive{10, "hub.quotas.boxes_alive"};
  // Creates sent to a spoke in any sliding hour, successful or not, 0..100000.
  QuotaLimit creates_per_hour{30, "hub.quotas.creates_per_hour"};
  // Execs running at once, 0..1024.
  QuotaLimit concurrent_execs{4, "hub.quotas.concurrent_execs"};
  // Seconds execs ran (measured by the hub, failed and timed-out ones included) in any
  // sliding hour, 0..3600000.
  QuotaLimit exec_seconds_per_hour{7200, "hub.quotas.exec_seconds_per_hour"};
};

// Limits for one principal, by its id ("key:ci", "anonymous", "oidc:<issuer>#<subject>").
// Keys it does not set keep the defaults' values (and key paths).
struct QuotaOverride {
  std::string principal;
  QuotaLimits limits;
};

struct QuotaConfig {
  QuotaLimits defaults;
  // Admins (apikey create --admin) have no limits unless an override names them.
  bool admins_exempt = true;
  std::vector<QuotaOverride> overrides;  // at most one per principal
};

// Reads the `hub.quotas` section `m` into `out` (defaults stay for absent keys), validated:
// errors name the key path and line.
[[nodiscard]] absl::Status ReadQuotaConfig(common::ConfigMap& m, QuotaConfig* out);

// Whether `id` has the shape of a principal id: "anonymous", "key:<API key name>" or
// "oidc:<issuer>#<subject>".
bool IsPrincipalId(std::string_view id);

}  // namespace llmbox::hub::config
