// hub/config/hub_config.cc
#include "hub/config/hub_config.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"

#include "common/absl_compat.h"
#include "common/config.h"
#include "common/files.h"
#include "common/metrics_auth.h"
#include "common/status.h"
#include "hub/http/client_address.h"

namespace llmbox::hub::config {
namespace {

using common::ConfigMap;

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

// "host:port", "[v6]:port"; the port is required.
bool SplitHostPort(const std::string& text, std::string* host, int* port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) return false;
  int p = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
    if (p > 65535) return false;
  }
  *host = h;
  *port = p;
  return true;
}

// A share from 0 to 1 ("0", "0.5", "1"), read by hand: at most 1 digit before the point and
// 6 after it.
std::optional<double> ParseShare(std::string_view text) {
  if (text.empty() || text.size() > 8 || (text[0] != '0' && text[0] != '1')) return std::nullopt;
  double value = text[0] - '0';
  if (text.size() == 1) return value;
  if (text[1] != '.' || text.size() == 2) return std::nullopt;
  double scale = 0.1;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    value += (c - '0') * scale;
    scale /= 10;
  }
  if (value > 1.0) return std::nullopt;
  return value;
}

// hub.spokes (SpokeMonitorConfig).
[[nodiscard]] absl::Status ReadSpokes(ConfigMap& m, SpokeMonitorConfig* c) {
  using std::chrono::milliseconds;
  const auto duration = [&m](std::string_view key, milliseconds* out, milliseconds min,
                             milliseconds max, std::string_view range) -> absl::Status {
    LLMBOX_RETURN_IF_ERROR(m.Duration(key, out));
    if (*out < min || *out > max) {
      return m.Error(key,
                     absl::StrCat("must be ", common::AsAbsl(range), ", got ", out->count(), "ms"));
    }
    return absl::OkStatus();
  };
  constexpr milliseconds kDay = std::chrono::hours(24);
  LLMBOX_RETURN_IF_ERROR(duration("health_timeout", &c->health_timeout, milliseconds(100),
                                  milliseconds(60'000), "100ms..60s"));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_concurrent_probes", &c->max_concurrent_probes, 1, 1024));
  LLMBOX_RETURN_IF_ERROR(m.Int("unreachable_after", &c->unreachable_after, 1, 100));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_boxes_per_spoke", &c->max_boxes_per_spoke, 1, 100'000));
  std::string threshold;
  LLMBOX_RETURN_IF_ERROR(m.Str("degraded_threshold", &threshold));
  if (!threshold.empty()) {
    const std::optional<double> share = ParseShare(threshold);
    if (!share.has_value()) {
      return m.Error("degraded_threshold",
                     "must be a share from 0 to 1 (0.5: over half of the recent creates failed), "
                     "got \"" +
                         threshold.substr(0, 32) + "\"");
    }
    c->degraded_threshold = *share;
  }
  LLMBOX_RETURN_IF_ERROR(m.Int("degraded_window", &c->degraded_window, 1, 1000));
  LLMBOX_RETURN_IF_ERROR(
      m.Int("degraded_min_creates", &c->degraded_min_creates, 1, c->degraded_window));
  LLMBOX_RETURN_IF_ERROR(duration("degraded_window_age", &c->degraded_window_age,
                                  milliseconds(1'000), 7 * kDay, "1s..7d"));
  LLMBOX_RETURN_IF_ERROR(
      duration("trial_backoff_min", &c->trial_backoff_min, milliseconds(100), kDay, "100ms..24h"));
  if (!m.Has("trial_backoff_max")) {
    c->trial_backoff_max = std::max(c->trial_backoff_max, c->trial_backoff_min);
  }
  LLMBOX_RETURN_IF_ERROR(duration("trial_backoff_max", &c->trial_backoff_max, c->trial_backoff_min,
                                  7 * kDay, "at least trial_backoff_min and at most 7d"));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadAudit(ConfigMap& m, const std::string& base, AuditConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("path", &c->path));
  if (!c->path.empty()) c->path = Resolve(base, c->path);
  LLMBOX_RETURN_IF_ERROR(m.Size("max_size", &c->max_size));
  if (c->max_size < (64ull << 10) || c->max_size > (16ull << 30)) {
    return m.Error("max_size", "must be 64KiB..16GiB");
  }
  LLMBOX_RETURN_IF_ERROR(m.Int("keep", &c->keep, 1, 1000));
  LLMBOX_RETURN_IF_ERROR(m.Bool("fsync", &c->fsync));
  return m.Finish();
}

// hub.metrics (docs/monitoring.md).
[[nodiscard]] absl::Status ReadMetrics(ConfigMap& m, const std::string& base, HubConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Bool("enabled", &c->metrics_enabled));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allow", &c->metrics_allow));
  if (auto allow = http::TrustedProxies::Parse(c->metrics_allow); !allow.ok()) {
    return m.Error("allow", common::AsStd(allow.status().message()));
  }
  LLMBOX_RETURN_IF_ERROR(common::ReadMetricsBearerTokenKey(m, base, &c->metrics_bearer_token));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadHub(ConfigMap& m, const std::string& base, HubConfig* c) {
  std::string listen;
  LLMBOX_RETURN_IF_ERROR(m.Str("listen", &listen));
  if (!listen.empty() && !SplitHostPort(listen, &c->listen_host, &c->listen_port)) {
    return m.Error("listen", "must be host:port (127.0.0.1:8080, [::1]:8080, 0.0.0.0:443)");
  }
  LLMBOX_RETURN_IF_ERROR(m.Str("public_url", &c->public_url));
  if (!c->public_url.empty()) {
    if (c->public_url.rfind("http://", 0) != 0 && c->public_url.rfind("https://", 0) != 0) {
      return m.Error("public_url", "must start with http:// or https://");
    }
    while (!c->public_url.empty() && c->public_url.back() == '/') c->public_url.pop_back();
    if (c->public_url.find('/', c->public_url.find("//") + 2) != std::string::npos) {
      return m.Error("public_url", "must be an origin without a path (https://hub.example.com)");
    }
  }
  LLMBOX_RETURN_IF_ERROR(m.Str("state_dir", &c->state_dir));
  c->state_dir = Resolve(base, c->state_dir);
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_origins", &c->allowed_origins));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_hosts", &c->allowed_hosts));
  LLMBOX_RETURN_IF_ERROR(m.StrList("trusted_proxies", &c->trusted_proxies));
  if (auto trusted = http::TrustedProxies::Parse(c->trusted_proxies); !trusted.ok()) {
    return m.Error("trusted_proxies", common::AsStd(trusted.status().message()));
  }
  LLMBOX_RETURN_IF_ERROR(m.Int("max_connections", &c->max_connections, 1, 100000));
  LLMBOX_RETURN_IF_ERROR(m.Int("worker_threads", &c->worker_threads, 2, 1024));
  LLMBOX_RETURN_IF_ERROR(m.Int("max_calls_per_caller", &c->max_calls_per_caller, 0, 1024));
  if (c->max_calls_per_caller > c->worker_threads) {
    return m.Error("max_calls_per_caller",
                   absl::StrCat("must be at most worker_threads (", c->worker_threads, "), got ",
                                c->max_calls_per_caller));
  }
  LLMBOX_RETURN_IF_ERROR(m.Duration("spoke_health_interval", &c->spoke_health_interval));
  if (c->spoke_health_interval < std::chrono::seconds(1)) {
    return m.Error("spoke_health_interval", "must be at least 1s");
  }
  LLMBOX_RETURN_IF_ERROR(m.Duration("idle_timeout", &c->idle_timeout));
  LLMBOX_RETURN_IF_ERROR(m.Duration("reconcile_interval", &c->reconcile_interval));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> tls, m.Map("tls"));
  if (tls) {
    LLMBOX_RETURN_IF_ERROR(tls->Str("cert_file", &c->tls_cert_file));
    LLMBOX_RETURN_IF_ERROR(tls->Str("key_file", &c->tls_key_file));
    c->tls_cert_file = Resolve(base, c->tls_cert_file);
    c->tls_key_file = Resolve(base, c->tls_key_file);
    if (c->tls_cert_file.empty() != c->tls_key_file.empty()) {
      return tls->Error(c->tls_cert_file.empty() ? "cert_file" : "key_file",
                        "cert_file and key_file go together");
    }
    LLMBOX_RETURN_IF_ERROR(tls->Finish());
  }
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> quotas, m.Map("quotas"));
  if (quotas) LLMBOX_RETURN_IF_ERROR(ReadQuotaConfig(*quotas, &c->quotas));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> spokes, m.Map("spokes"));
  if (spokes) LLMBOX_RETURN_IF_ERROR(ReadSpokes(*spokes, &c->spokes));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> audit, m.Map("audit"));
  if (audit) LLMBOX_RETURN_IF_ERROR(ReadAudit(*audit, base, &c->audit));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> metrics, m.Map("metrics"));
  if (metrics) LLMBOX_RETURN_IF_ERROR(ReadMetrics(*metrics, base, c));
  return m.Finish();
}

// Reads the secret in the file named by `key` (relative to the config file's folder; one
// trailing newline dropped). "" when the key is absent.
[[nodiscard]] absl::Status ReadSecretFile(ConfigMap& m, std::string_view key,
                                          const std::string& base, std::string* secret) {
  std::string file;
  LLMBOX_RETURN_IF_ERROR(m.Str(key, &file));
  if (file.empty()) return absl::OkStatus();
  // A secret is short; 64 KiB bounds what a wrong path can make the hub hold.
  auto text = common::ReadSmallFile(Resolve(base, file), 64 << 10);
  if (!text.ok()) return m.Error(key, std::string(text.status().message()));
  *secret = *std::move(text);
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
    secret->pop_back();
  }
  return absl::OkStatus();
}

// A duration key of auth.oauth within [min, max], as seconds.
[[nodiscard]] absl::Status OAuthSeconds(ConfigMap& m, std::string_view key,
                                        std::chrono::seconds min, std::chrono::seconds max,
                                        std::string_view range, std::chrono::seconds* out) {
  std::chrono::milliseconds value = *out;
  LLMBOX_RETURN_IF_ERROR(m.Duration(key, &value));
  if (value < min || value > max) return m.Error(key, "must be " + std::string(range));
  *out = std::chrono::duration_cast<std::chrono::seconds>(value);
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ReadOAuthClient(ConfigMap& m, const std::string& base,
                                           oauth::PreregisteredClient* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("client_id", &c->client_id));
  LLMBOX_RETURN_IF_ERROR(m.Str("name", &c->name));
  LLMBOX_RETURN_IF_ERROR(m.StrList("redirect_uris", &c->redirect_uris));
  if (m.Has("client_secret")) return m.SecretFile("client_secret", &c->client_secret);
  LLMBOX_RETURN_IF_ERROR(ReadSecretFile(m, "client_secret_file", base, &c->client_secret));
  LLMBOX_RETURN_IF_ERROR(m.Finish());
  const bool id_ok =
      !c->client_id.empty() && c->client_id.size() <= 128 &&
      c->client_id.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
  if (!id_ok) {
    return m.Error("client_id",
                   "must be 1 to 128 of A-Z a-z 0-9 . _ - (an https URL names a "
                   "client ID metadata document, which needs no entry here)");
  }
  if (c->redirect_uris.empty()) return m.Error("redirect_uris", "must list at least one URI");
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ReadOAuth(ConfigMap& m, const std::string& base, HubConfig* hub) {
  oauth::OAuthOptions* c = &hub->oauth;
  LLMBOX_RETURN_IF_ERROR(m.Bool("enabled", &c->enabled));
  std::string sign_in;
  LLMBOX_RETURN_IF_ERROR(m.Str("sign_in", &sign_in));
  if (sign_in == "oidc") {
    c->sign_in = oauth::SignInMode::kOidc;
    hub->oauth_sign_in_is_default = false;
  } else if (sign_in == "api_key") {
    c->sign_in = oauth::SignInMode::kApiKey;
    hub->oauth_sign_in_is_default = false;
  } else if (!sign_in.empty()) {
    return m.Error("sign_in", "must be oidc or api_key, got \"" + sign_in + "\"");
  }
  using std::chrono::hours;
  using std::chrono::seconds;
  LLMBOX_RETURN_IF_ERROR(
      OAuthSeconds(m, "access_token_ttl", seconds(1), hours(24), "1s..24h", &c->access_token_ttl));
  LLMBOX_RETURN_IF_ERROR(OAuthSeconds(m, "refresh_token_ttl", seconds(60), hours(24 * 365),
                                      "1m..8760h", &c->refresh_token_ttl));
  LLMBOX_RETURN_IF_ERROR(
      OAuthSeconds(m, "grant_ttl", seconds(60), hours(24 * 365), "1m..8760h", &c->grant_ttl));
  LLMBOX_RETURN_IF_ERROR(
      OAuthSeconds(m, "code_ttl", seconds(1), seconds(600), "1s..10m", &c->code_ttl));
  if (m.Has("redirect_uris")) {
    LLMBOX_RETURN_IF_ERROR(m.StrList("redirect_uris", &c->allowed_redirect_uris));
  }
  LLMBOX_RETURN_IF_ERROR(m.Bool("loopback_redirects", &c->allow_loopback_redirects));
  LLMBOX_RETURN_IF_ERROR(m.Bool("client_id_metadata_documents", &c->client_id_metadata_documents));
  LLMBOX_RETURN_IF_ERROR(m.StrList("admin_emails", &c->admin_emails));
  for (const auto& email : c->admin_emails) {
    if (email.find('@') == std::string::npos || email.front() == '@' || email.back() == '@') {
      return m.Error("admin_emails", "\"" + email + "\" is not an email address");
    }
  }
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> registration, m.Map("registration"));
  if (registration) {
    ConfigMap& r = *registration;
    LLMBOX_RETURN_IF_ERROR(r.Int("per_address", &c->max_registrations_per_address, 1, 100000));
    LLMBOX_RETURN_IF_ERROR(
        r.Int("listed_per_address", &c->max_allowlisted_registrations_per_address, 1, 1000000));
    LLMBOX_RETURN_IF_ERROR(
        OAuthSeconds(r, "window", seconds(1), hours(24), "1s..24h", &c->registration_window));
    LLMBOX_RETURN_IF_ERROR(OAuthSeconds(r, "unused_client_ttl", seconds(60), hours(24 * 30),
                                        "1m..720h", &c->unused_client_ttl));
    int max_clients = static_cast<int>(c->max_clients);
    LLMBOX_RETURN_IF_ERROR(r.Int("max_clients", &max_clients, 1, 10'000'000));
    c->max_clients = static_cast<size_t>(max_clients);
    LLMBOX_RETURN_IF_ERROR(r.Finish());
  }
  LLMBOX_ASSIGN_OR_RETURN(std::vector<ConfigMap> clients, m.MapList("clients"));
  for (ConfigMap& client : clients) {
    LLMBOX_RETURN_IF_ERROR(ReadOAuthClient(client, base, &c->clients.emplace_back()));
  }
  LLMBOX_RETURN_IF_ERROR(m.Finish());
  for (const auto& uri : c->allowed_redirect_uris) {
    if (uri.rfind("https://", 0) != 0) {
      return m.Error("redirect_uris", "\"" + uri +
                                          "\" must be an https URL (loopback "
                                          "redirects are allowed by loopback_redirects)");
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ReadAuth(ConfigMap& m, const std::string& base, HubConfig* c) {
  std::string mode;
  LLMBOX_RETURN_IF_ERROR(m.Str("api_keys", &mode));
  if (mode == "auto" || mode.empty()) {
    c->api_keys = ApiKeyMode::kAuto;
  } else if (mode == "required") {
    c->api_keys = ApiKeyMode::kRequired;
  } else if (mode == "off") {
    c->api_keys = ApiKeyMode::kOff;
  } else {
    return m.Error("api_keys", "must be auto, required or off, got \"" + mode + "\"");
  }
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> oauth, m.Map("oauth"));
  if (oauth) LLMBOX_RETURN_IF_ERROR(ReadOAuth(*oauth, base, c));
  return m.Finish();
}

[[nodiscard]] absl::Status ReadCluster(ConfigMap& m, HubConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("listen", &c->cluster_listen));
  std::string host;
  int port = 0;
  if (!c->cluster_listen.empty() && !SplitHostPort(c->cluster_listen, &host, &port)) {
    return m.Error("listen", "must be host:port (0.0.0.0:7444, 127.0.0.1:0), or empty for off");
  }
  LLMBOX_RETURN_IF_ERROR(m.Duration("cert_validity", &c->cert_validity));
  LLMBOX_RETURN_IF_ERROR(m.Duration("renew_before", &c->renew_before));
  if (c->cert_validity < std::chrono::hours(1) || c->cert_validity > std::chrono::hours(8760)) {
    return m.Error("cert_validity", "must be 1h..8760h");
  }
  if (c->renew_before <= std::chrono::milliseconds(0) || c->renew_before >= c->cert_validity) {
    return m.Error("renew_before", "must be more than 0 and less than cert_validity");
  }
  return m.Finish();
}

[[nodiscard]] absl::Status ReadOidc(ConfigMap& m, const std::string& base, OidcConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Str("issuer", &c->issuer));
  LLMBOX_RETURN_IF_ERROR(m.Str("client_id", &c->client_id));
  // An inline secret gets the standard refusal; the file is taken relative to the config
  // file's folder like every other path here.
  if (m.Has("client_secret")) return m.SecretFile("client_secret", &c->client_secret);
  LLMBOX_RETURN_IF_ERROR(ReadSecretFile(m, "client_secret_file", base, &c->client_secret));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_emails", &c->allowed_emails));
  LLMBOX_RETURN_IF_ERROR(m.StrList("allowed_domains", &c->allowed_domains));
  LLMBOX_RETURN_IF_ERROR(m.Duration("session_ttl", &c->session_ttl));
  LLMBOX_RETURN_IF_ERROR(m.Duration("http_timeout", &c->http_timeout));
  LLMBOX_RETURN_IF_ERROR(m.Finish());

  const bool https = c->issuer.rfind("https://", 0) == 0;
  const bool http = c->issuer.rfind("http://", 0) == 0;
  if (c->issuer.empty()) return m.Error("issuer", "is required (https://accounts.example.com)");
  if (!https && !http) return m.Error("issuer", "must be an https:// URL");
  if (http) {
    const size_t start = 7;
    std::string host = c->issuer.substr(start, c->issuer.find_first_of(":/", start) - start);
    if (!IsLoopbackHost(host)) {
      return m.Error("issuer", "must be https (plain http only for a provider on loopback)");
    }
  }
  if (c->client_id.empty()) return m.Error("client_id", "is required");
  if (c->client_secret.empty()) {
    return m.Error("client_secret_file", "is required and must name a non-empty file");
  }
  if (c->allowed_emails.empty() && c->allowed_domains.empty()) {
    return m.Error("allowed_emails",
                   "set allowed_emails or allowed_domains (or both): with neither, nobody could "
                   "sign in");
  }
  for (const auto& email : c->allowed_emails) {
    if (email.find('@') == std::string::npos || email.front() == '@' || email.back() == '@') {
      return m.Error("allowed_emails", "\"" + email + "\" is not an email address");
    }
  }
  for (const auto& domain : c->allowed_domains) {
    if (domain.empty() || domain.find('@') != std::string::npos) {
      return m.Error("allowed_domains",
                     "\"" + domain + "\" must be a bare domain (example.com, without '@')");
    }
  }
  if (c->session_ttl < std::chrono::minutes(1) || c->session_ttl > std::chrono::hours(24 * 30)) {
    return m.Error("session_ttl", "must be 1m..720h");
  }
  if (c->http_timeout < std::chrono::milliseconds(100) ||
      c->http_timeout > std::chrono::minutes(2)) {
    return m.Error("http_timeout", "must be 100ms..2m");
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status ReadActivation(ConfigMap& m, const std::string& base, HubConfig* c) {
  LLMBOX_RETURN_IF_ERROR(m.Int("max_attempts_per_token", &c->max_attempts_per_token, 1, 1000));
  LLMBOX_RETURN_IF_ERROR(
      m.Int("max_attempts_per_address", &c->max_attempts_per_address, 1, 100000));
  LLMBOX_RETURN_IF_ERROR(m.Duration("attempt_window", &c->attempt_window));
  if (c->attempt_window < std::chrono::seconds(1)) {
    return m.Error("attempt_window", "must be at least 1s");
  }
  LLMBOX_RETURN_IF_ERROR(m.Duration("form_ttl", &c->form_ttl));
  if (c->form_ttl < std::chrono::minutes(1)) return m.Error("form_ttl", "must be at least 1m");
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> oidc, m.Map("oidc"));
  if (oidc) {
    c->activation_oidc.emplace();
    LLMBOX_RETURN_IF_ERROR(ReadOidc(*oidc, base, &*c->activation_oidc));
  }
  return m.Finish();
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string DefaultPublicUrl(const HubConfig& config) {
  const bool v6 = config.listen_host.find(':') != std::string::npos;
  return std::string(config.tls_cert_file.empty() ? "http" : "https") + "://" +
         (v6 ? "[" + config.listen_host + "]" : config.listen_host) + ":" +
         std::to_string(config.listen_port);
}

[[nodiscard]] absl::StatusOr<HubConfig> ParseHubConfig(std::string_view yaml,
                                                       const std::string& source,
                                                       const std::string& base_dir) {
  LLMBOX_ASSIGN_OR_RETURN(common::ConfigDocument doc, common::ParseConfigText(yaml, source));
  ConfigMap root = doc.Root();
  HubConfig config;
  config.source = {.text = std::string(yaml), .name = source, .base_dir = base_dir};
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> hub, root.Map("hub"));
  if (hub) LLMBOX_RETURN_IF_ERROR(ReadHub(*hub, base_dir, &config));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> auth, root.Map("auth"));
  if (auth) LLMBOX_RETURN_IF_ERROR(ReadAuth(*auth, base_dir, &config));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> cluster, root.Map("cluster"));
  if (cluster) LLMBOX_RETURN_IF_ERROR(ReadCluster(*cluster, &config));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> activation, root.Map("activation"));
  if (activation) LLMBOX_RETURN_IF_ERROR(ReadActivation(*activation, base_dir, &config));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> log, root.Map("log"));
  if (log) LLMBOX_RETURN_IF_ERROR(common::ReadLogConfig(*log, &config.log));
  LLMBOX_ASSIGN_OR_RETURN(std::optional<ConfigMap> local, root.Map("local_spoke"));
  // The rest of the section is the spoke's (docker, boxes, reaper, hooks), checked whole,
  // unknown keys included, by hub/local's ReadLocalSpokeConfig.
  if (local) LLMBOX_RETURN_IF_ERROR(local->Bool("enabled", &config.local_spoke));
  LLMBOX_RETURN_IF_ERROR(root.Finish());
  if (config.audit.path.empty()) config.audit.path = config.state_dir + "/audit.log";

  const bool loopback = IsLoopbackHost(config.listen_host);
  if (config.api_keys == ApiKeyMode::kOff && !loopback && !config.oauth.enabled) {
    return absl::InvalidArgumentError(
        "config: auth.api_keys: off is refused when hub.listen is not a loopback address (" +
        config.listen_host + "): anyone who reaches the port could run boxes");
  }
  config.api_keys_required = config.api_keys == ApiKeyMode::kRequired ||
                             (config.api_keys == ApiKeyMode::kAuto && !loopback);
  config.public_url_is_default = config.public_url.empty();
  if (config.activation_oidc && config.public_url_is_default && config.listen_port == 0) {
    // The provider checks the redirect URI against the one registered for the client, so
    // it must be known before the port is bound.
    return absl::InvalidArgumentError(
        "config: activation.oidc needs hub.public_url (or a fixed port in hub.listen): the "
        "provider must know the redirect URI <public_url>/auth/oidc/callback in advance, and "
        "port 0 picks a new one on every start");
  }
  if (config.public_url.empty()) config.public_url = DefaultPublicUrl(config);
  if (config.oauth.enabled) {
    if (config.oauth_sign_in_is_default) {
      config.oauth.sign_in =
          config.activation_oidc ? oauth::SignInMode::kOidc : oauth::SignInMode::kApiKey;
    }
    if (config.oauth.sign_in == oauth::SignInMode::kOidc && !config.activation_oidc) {
      return absl::InvalidArgumentError(
          "config: auth.oauth.sign_in: oidc needs activation.oidc (the provider people sign in "
          "with); configure it, or use sign_in: api_key");
    }
    // OAuth 2.1 §1.5: TLS everywhere but on loopback. Behind a TLS proxy the public URL is
    // the proxy's https one.
    const std::string_view url = config.public_url;
    if (url.rfind("http://", 0) == 0) {
      const size_t start = 7;
      std::string host(url.substr(start, url.find('/', start) - start));
      if (!host.empty() && host.front() == '[') {
        host = host.substr(1, host.find(']') - 1);
      } else {
        host = host.substr(0, host.rfind(':'));
      }
      if (!IsLoopbackHost(host)) {
        return absl::InvalidArgumentError(
            "config: auth.oauth needs an https hub.public_url (people type keys and get codes "
            "and tokens through it); got " +
            config.public_url +
            ". Give the hub TLS (hub.tls) or put a TLS proxy in front and "
            "set public_url to its https URL");
      }
    }
    config.oauth.issuer = config.public_url;  // again once a port 0 is bound
  }
  return config;
}

[[nodiscard]] absl::StatusOr<HubConfig> LoadHubConfig(const std::string& path) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, common::ReadConfigFile(path));
  return ParseHubConfig(text, path, std::filesystem::absolute(path).parent_path().string());
}

}  // namespace llmbox::hub::config
