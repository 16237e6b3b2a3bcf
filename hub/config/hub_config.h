// hub/config/hub_config.h
//
// The hub's configuration file (strict YAML, see docs/hub.md) as a plain struct.
//
//   LLMBOX_ASSIGN_OR_RETURN(HubConfig config, LoadHubConfig("/etc/llmbox/hub.yaml"));
//
// Every error names the key path and line. Relative paths are taken relative to the config
// file's folder.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/log.h"
#include "hub/config/quota_config.h"
#include "hub/oauth/options.h"

namespace llmbox::hub::config {

enum class ApiKeyMode {
  kAuto,      // required unless the hub listens on loopback only
  kRequired,  // every MCP request needs a key
  kOff,       // no keys (refused unless the hub listens on loopback only)
};

// activation.oidc: sign-in gating of the activation page (docs/activation.md).
struct OidcConfig {
  std::string issuer;  // exactly as the provider names itself; https unless loopback
  std::string client_id;
  std::string client_secret;                 // read from client_secret_file
  std::vector<std::string> allowed_emails;   // exact, case-insensitive
  std::vector<std::string> allowed_domains;  // the part after '@', case-insensitive
  std::chrono::milliseconds session_ttl{12 * 3'600'000};
  std::chrono::milliseconds http_timeout{10'000};  // each discovery, JWKS and token request
};

// The text a HubConfig was parsed from, its name in errors, and the folder relative paths
// are taken from.
struct ConfigSource {
  std::string text;
  std::string name;
  std::string base_dir;
};

// hub.spokes: how the hub watches its spokes and takes failing ones out of placement
// (hub/boxes/spoke_monitor.h, MonitorOptions). How often it asks is hub.spoke_health_interval.
struct SpokeMonitorConfig {
  std::chrono::milliseconds health_timeout{3'000};  // one health call, 100ms..60s
  int max_concurrent_probes = 32;                   // health calls at once, 1..1024
  int unreachable_after = 2;  // health calls in a row that do not reach a spoke, 1..100
  // Degraded: of a spoke's latest `degraded_window` creates (1..1000; none older than
  // degraded_window_age), at least degraded_min_creates (1..window) counted and a failed
  // share over degraded_threshold (0..1).
  double degraded_threshold = 0.5;
  int degraded_window = 10;
  int degraded_min_creates = 3;
  std::chrono::milliseconds degraded_window_age{600'000};  // 1s..7d
  // A degraded spoke's trial creates: the first after trial_backoff_min, each failed one
  // doubling the wait up to trial_backoff_max (min 100ms..1d, max min..7d).
  std::chrono::milliseconds trial_backoff_min{30'000};
  std::chrono::milliseconds trial_backoff_max{600'000};
  // The most places a spoke's health may claim (1..100000): a spoke saying more is counted as
  // this many, so a lying spoke cannot draw every placement. The spoke's own spoke.max_boxes
  // is at most 1000.
  int max_boxes_per_spoke = 1000;
};

// hub.audit: the audit log (hub/audit/audit_log.h, docs/security.md "Audit log").
struct AuditConfig {
  std::string path;                      // default <state_dir>/audit.log
  std::uint64_t max_size = 64ull << 20;  // rotate past this, 64KiB..16GiB
  int keep = 5;                          // rotated files kept, 1..1000
  bool fsync = false;                    // fsync after every record
};

struct HubConfig {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8080;
  std::string public_url;  // default http://<listen>; no trailing slash
  bool public_url_is_default = true;
  std::string state_dir = "/var/lib/llmbox-hub";
  std::vector<std::string> allowed_origins;  // beyond public_url's origin
  std::vector<std::string> allowed_hosts;    // beyond public_url's host and loopback names
  std::string tls_cert_file;
  std::string tls_key_file;
  // hub.trusted_proxies: CIDRs of the reverse proxies whose X-Forwarded-For / Forwarded
  // name the client (hub/http/client_address.h); checked at load. Empty: the TCP peer is.
  std::vector<std::string> trusted_proxies;
  int max_connections = 1024;
  int worker_threads = 32;
  // Tool calls one caller may have running at once; 0: half the workers (so one caller with
  // slow execs leaves the other half to everyone else).
  int max_calls_per_caller = 0;
  // How often the hub asks every spoke for its health; /readyz answers from the last answers.
  std::chrono::milliseconds spoke_health_interval{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds reconcile_interval{30'000};
  // hub.quotas: what each principal may use (quota_config.h).
  QuotaConfig quotas;
  // hub.spokes: spoke health, degraded and unreachable spokes.
  SpokeMonitorConfig spokes;
  // hub.audit: the audit log.
  AuditConfig audit;
  // hub.metrics: /metrics in the Prometheus text format (docs/monitoring.md), served when
  // enabled to clients whose address (after trusted_proxies) is in `allow` (CIDRs or bare
  // addresses, at most 256; checked at load); everyone else gets 403.
  bool metrics_enabled = true;
  std::vector<std::string> metrics_allow = {"127.0.0.0/8", "::1"};
  // hub.metrics.bearer_token_file, read at load (common::ReadMetricsBearerToken): when set,
  // /metrics also wants "Authorization: Bearer <token>". Empty: no token. Never logged.
  std::string metrics_bearer_token;
  ApiKeyMode api_keys = ApiKeyMode::kAuto;
  bool api_keys_required = false;  // the resolved mode
  // auth.oauth: the hub as an OAuth authorization server for MCP clients (hub/oauth). Its
  // issuer is filled in from the public URL once the port is bound.
  oauth::OAuthOptions oauth;
  // Whether auth.oauth.sign_in was written (else: oidc when activation.oidc is set).
  bool oauth_sign_in_is_default = true;
  // cluster: the enrollment listener (host:port; empty: off, and no remote spokes are
  // dialed) and the spoke certificates it issues.
  std::string cluster_listen;
  std::chrono::milliseconds cert_validity{std::chrono::hours(24 * 30)};
  std::chrono::milliseconds renew_before{std::chrono::hours(24 * 10)};
  // local_spoke.enabled: the hub runs a spoke named "local" in-process. The section's other
  // keys are the spoke's own (docker, boxes, reaper, hooks): hub/local reads them from
  // `source`, with the spoke's reader (ReadLocalSpokeConfig), so the hub library knows nothing
  // of them.
  bool local_spoke = true;
  common::LogConfig log;
  // activation: the page a person opens to sign a box in.
  int max_attempts_per_token = 10;    // code submissions per link per window
  int max_attempts_per_address = 30;  // code submissions per client address per window
  std::chrono::milliseconds attempt_window{900'000};
  std::chrono::milliseconds form_ttl{1'800'000};  // how long a page's form can be sent
  std::optional<OidcConfig> activation_oidc;      // sign-in gating when set
  // The file this was parsed from, for sections read elsewhere (local_spoke).
  ConfigSource source;
};

bool IsLoopbackHost(std::string_view host);
// http(s)://<listen host>:<listen port>, https when the hub has its own TLS certificate.
std::string DefaultPublicUrl(const HubConfig& config);

[[nodiscard]] absl::StatusOr<HubConfig> LoadHubConfig(const std::string& path);
[[nodiscard]] absl::StatusOr<HubConfig> ParseHubConfig(std::string_view yaml,
                                                       const std::string& source,
                                                       const std::string& base_dir);

}  // namespace llmbox::hub::config
