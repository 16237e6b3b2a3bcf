#include "hub/server/hub_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/grpc_server.h"
#include "common/periodic.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/version.h"
#include "hub/activation/http_fetch.h"
#include "hub/activation/oidc.h"
#include "hub/activation/page.h"
#include "hub/activation/session_cookie.h"
#include "hub/audit/audit_log.h"
#include "hub/auth/api_key_auth.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/quota_book.h"
#include "hub/boxes/registry.h"
#include "hub/boxes/spoke_listing.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/enrollment_service.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/cluster/hub_cert_renewer.h"
#include "hub/cluster/remote_spokes.h"
#include "hub/http/host_policy.h"
#include "hub/http/router.h"
#include "hub/http/server.h"
#include "hub/mcp/endpoint.h"
#include "hub/metrics/hub_metrics.h"
#include "hub/metrics/metrics_endpoint.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/oauth_server.h"
#include "hub/server/state_dir.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::server {
namespace {

constexpr char kInstructions[] =
    "llmbox hosts sandboxed Claude Code boxes. create_llmbox returns an auth_url: give it to "
    "the user, who signs the box in with their own Claude account in a browser. Then "
    "get_llmbox shows the session_url they drive it from. Never ask for codes or tokens.";

void ServeHealth(http::Responder& out) {
  out.Respond({.status = 200, .headers = {{"Content-Type", "text/plain"}}, .body = "ok\n"});
}

// Ready when every local spoke answers (a remote spoke that is down does not make the hub
// unready); the body names each spoke's state. From the monitor's last round (SpokeMonitor::
// View), never a call: /readyz must answer while spokes or workers are slow. The body is
// public: it names states, and only the spoke's own words for an unreachable one (as it did),
// never an operator's reason.
void ServeReady(boxes::BoxRegistry& registry, http::Responder& out) {
  bool ready = true;
  std::string body;
  for (const boxes::SpokeView& spoke : registry.monitor().View()) {
    const bool connected = boxes::SpokeConnected(spoke);
    ready = ready && (connected || !spoke.local);
    body += spoke.name + ": ";
    if (connected) {
      body += spoke.state == boxes::SpokeState::kReady
                  ? std::string("ok")
                  : "ok, " + std::string(boxes::SpokeStateName(spoke.state));
    } else if (spoke.state == boxes::SpokeState::kUnreachable) {
      body += "down: " + boxes::DescribeSpokeState(spoke.state, spoke.admin, spoke.condition);
    } else if (spoke.state == boxes::SpokeState::kRemoved) {
      body += "removed";
    } else {
      body += "down: not checked yet";
    }
    body += "\n";
  }
  out.Respond(
      {.status = ready ? 200 : 503, .headers = {{"Content-Type", "text/plain"}}, .body = body});
}

}  // namespace

// Members in construction order: they are destroyed in reverse, so each part outlives
// everything that uses it (the HTTP server and its handlers go first, the store last).
struct HubServer::State {
  State(const config::HubConfig& served, common::Clock& c) : config(served), clock(c) {}

  // Brings in spokes that joined or were removed since the last look; without a cluster,
  // nothing.
  void SyncSpokes() {
    if (remote == nullptr) return;
    if (auto st = remote->Sync(); !st.ok()) {
      spdlog::warn("cluster: cannot read the joined spokes: {}", common::AsStd(st.message()));
    }
  }

  config::HubConfig config;  // as served: the bound port and the public URL naming it
  common::Clock& clock;
  metrics::HubMetrics metrics;  // first: everything below reports to it
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<audit::AuditLog> audit;  // hub.audit: who did what (audit_log.h)
  std::string session_key;
  boxes::SpokeDirectory spokes;
  std::unique_ptr<LocalSpoke> local;
  // The cluster: spokes that joined are dialed with mutual TLS, and the enrollment service
  // listens for more.
  std::optional<cluster::ClusterPki> pki;
  std::unique_ptr<cluster::RemoteSpokes> remote;
  std::unique_ptr<cluster::EnrollmentServiceImpl> enrollment;
  std::optional<common::RunningGrpcServer> cluster_server;
  std::unique_ptr<boxes::QuotaBook> quotas;  // before the registry, which uses it
  std::unique_ptr<cluster::HubCertificateRenewer> hub_cert_renewer;
  std::unique_ptr<boxes::RemovalAudit> removal_audit;  // before the registry, which uses it
  std::unique_ptr<boxes::BoxRegistry> registry;
  std::unique_ptr<common::PeriodicTask> reconcile;
  std::unique_ptr<common::PeriodicTask> spoke_health;  // the monitor's rounds
  std::unique_ptr<boxes::BoxTools> tools;
  // Sign-in gating of the activation page, when activation.oidc is configured.
  std::unique_ptr<activation::CurlHttpFetcher> oidc_http;
  std::unique_ptr<activation::ProviderOidcClient> oidc;
  std::unique_ptr<activation::SessionCookie> sessions;
  std::unique_ptr<activation::ActivationPage> activation;
  std::unique_ptr<auth::ApiKeyAuthenticator> api_keys;
  // The OAuth authorization server (auth.oauth), made with the MCP endpoint once the public
  // URL is final; until then its paths get 503.
  std::unique_ptr<oauth::CimdFetcher> cimd;
  std::atomic<oauth::OAuthServer*> oauth_ptr{nullptr};
  // The endpoint is made once the port is bound (port 0 picks one, and the default public URL
  // names it); until then MCP requests get 503.
  std::atomic<mcp::McpEndpoint*> mcp_ptr{nullptr};
  std::optional<metrics::MetricsEndpoint> metrics_endpoint;  // hub.metrics.enabled
  http::Router router;
  std::unique_ptr<http::HttpServer> http;
  std::unique_ptr<mcp::McpEndpoint> mcp;
  std::unique_ptr<oauth::OAuthServer> oauth;
  std::unique_ptr<common::PeriodicTask> oauth_prune;
  bool serving = false;
};

HubServer::HubServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

HubServer::~HubServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HubServer>> HubServer::Start(const config::HubConfig& config,
                                                            HubServerDeps deps,
                                                            common::Clock& clock) {
  // Owned by the HubServer from here on, so a failure below takes down what started.
  std::unique_ptr<HubServer> hub(new HubServer(std::make_unique<State>(config, clock)));
  State& s = *hub->state_;
  LLMBOX_ASSIGN_OR_RETURN(s.store, OpenStore(config));
  s.metrics.WatchBoxes(*s.store);
  LLMBOX_ASSIGN_OR_RETURN(s.session_key, LoadOrCreateSessionKey(config.state_dir));
  s.audit = std::make_unique<audit::AuditLog>(audit::AuditOptions{.path = config.audit.path,
                                                                  .max_size = config.audit.max_size,
                                                                  .keep = config.audit.keep,
                                                                  .fsync = config.audit.fsync},
                                              clock);
  LLMBOX_RETURN_IF_ERROR(s.audit->Open());
  spdlog::info("hub: audit log {} (rotated past {} bytes, {} files kept)", config.audit.path,
               config.audit.max_size, config.audit.keep);

  if (config.local_spoke) {
    if (!deps.start_local_spoke) {
      return absl::FailedPreconditionError(
          "local_spoke.enabled is on, but this program cannot start a local spoke");
    }
    LLMBOX_ASSIGN_OR_RETURN(s.local, deps.start_local_spoke());
    s.spokes.Add("local", cluster::MakeGrpcSpokeClient(s.local->Channel()), /*local=*/true);
  }
  if (!config.cluster_listen.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(s.pki, cluster::LoadOrCreateClusterPki(ClusterDir(config), {}));
    s.remote = std::make_unique<cluster::RemoteSpokes>(*s.store, s.spokes, s.pki->hub);
    LLMBOX_RETURN_IF_ERROR(s.remote->Sync());
    s.enrollment = std::make_unique<cluster::EnrollmentServiceImpl>(
        *s.store, *s.pki, clock,
        cluster::EnrollmentOptions{.cert_validity = config.cert_validity,
                                   .renew_before = config.renew_before,
                                   .audit = s.audit.get()},
        [&s](const store::SpokeRecord&) { s.SyncSpokes(); });
    LLMBOX_ASSIGN_OR_RETURN(
        s.cluster_server,
        common::StartGrpcServer({.address = config.cluster_listen, .max_message_bytes = 64 << 10},
                                // Watched: the hub renews its short-lived certificate.
                                common::WatchedOptionalClientTlsServerCredentials(
                                    {.cert_file = cluster::HubCertPath(ClusterDir(config)),
                                     .key_file = cluster::HubKeyPath(ClusterDir(config)),
                                     .ca_file = cluster::CaCertPath(ClusterDir(config))},
                                    /*refresh_seconds=*/5),
                                s.enrollment.get()));
    s.hub_cert_renewer = std::make_unique<cluster::HubCertificateRenewer>(
        ClusterDir(config), s.pki->ca, clock, cluster::HubCertRenewerOptions{},
        [&s](const common::TlsPems& hub) {
          s.remote->SetHubCredentials(hub);
          s.SyncSpokes();
        },
        [&s](const std::vector<std::string>& keys) {
          s.enrollment->SetHubKeys(keys);
          s.remote->PushHubKeys(keys, std::chrono::seconds(5));
        });
    s.hub_cert_renewer->Start();
    spdlog::info("cluster: enrollment service on port {} (cluster CA sha256:{})",
                 s.cluster_server->port, s.pki->ca_sha256);
  }

  s.quotas = std::make_unique<boxes::QuotaBook>(config.quotas, clock);
  const config::SpokeMonitorConfig& watch = config.spokes;
  s.removal_audit =
      std::make_unique<boxes::RemovalAudit>(*s.store, *s.audit, boxes::RemovalAuditOptions{});
  s.registry = std::make_unique<boxes::BoxRegistry>(
      *s.store, s.spokes, clock,
      boxes::RegistryOptions{
          .public_url = config.public_url,
          .monitor = {.health_timeout = watch.health_timeout,
                      .max_concurrent_probes =
                          static_cast<std::size_t>(watch.max_concurrent_probes),
                      .unreachable_after = watch.unreachable_after,
                      .window = static_cast<std::size_t>(watch.degraded_window),
                      .min_creates = static_cast<std::size_t>(watch.degraded_min_creates),
                      .failure_threshold = watch.degraded_threshold,
                      .window_age = watch.degraded_window_age,
                      .trial_backoff_min = watch.trial_backoff_min,
                      .trial_backoff_max = watch.trial_backoff_max,
                      .max_boxes_per_spoke = static_cast<std::uint32_t>(watch.max_boxes_per_spoke)},
          .metrics = &s.metrics,
          .removal_audit = s.removal_audit.get()},
      s.quotas.get());
  s.metrics.WatchSpokes(s.registry->monitor());
  // The first health round before any reconcile: each spoke that answers is reconciled once by
  // its return hook (on the monitor's pool), and an unreachable one at its return, instead of
  // a reconcile that waits out every unreachable spoke's timeout before the hub serves.
  s.registry->Start();
  {
    auto boxes = s.store->ListBoxes({});
    spdlog::info("hub: registry restored: {} boxes; each spoke is reconciled as it answers",
                 boxes.ok() ? boxes->size() : 0);
  }
  // A zero interval used to mean "as often as possible"; the task needs a positive one.
  s.reconcile = std::make_unique<common::PeriodicTask>(
      clock, std::max(config.reconcile_interval, std::chrono::milliseconds(1)), [&s] {
        s.SyncSpokes();
        s.registry->Reconcile();
      });
  s.reconcile->Start();
  s.spoke_health = std::make_unique<common::PeriodicTask>(clock, config.spoke_health_interval,
                                                          [&s] { s.registry->monitor().Poll(); });
  s.spoke_health->Start();

  // list_llmboxes' cursors: sealed under a key of their own, so they outlive a restart.
  s.tools = std::make_unique<boxes::BoxTools>(
      *s.registry, common::HmacSha256(s.session_key, "llmbox list_llmboxes cursors"),
      s.audit.get());
  {
    std::vector<std::string> tool_names;
    for (const mcp::Tool& tool : s.tools->Tools()) tool_names.push_back(tool.name);
    s.metrics.WatchTools(std::move(tool_names));
  }
  if (config.activation_oidc) {
    const auto& o = *config.activation_oidc;
    s.oidc_http = std::make_unique<activation::CurlHttpFetcher>(
        activation::CurlHttpFetcher::Options{.total_timeout = o.http_timeout});
    LLMBOX_ASSIGN_OR_RETURN(s.oidc, activation::ProviderOidcClient::Create(
                                        {.issuer = o.issuer,
                                         .client_id = o.client_id,
                                         .client_secret = o.client_secret,
                                         .redirect_uri = config.public_url + "/auth/oidc/callback",
                                         .allowed_emails = o.allowed_emails,
                                         .allowed_domains = o.allowed_domains},
                                        *s.oidc_http, clock));
    s.sessions = std::make_unique<activation::SessionCookie>(
        activation::SessionCookie::DeriveKey(s.session_key),
        std::chrono::duration_cast<std::chrono::seconds>(o.session_ttl), clock);
    spdlog::info("hub: activation gated by sign-in at {} (redirect URI {}/auth/oidc/callback)",
                 o.issuer, config.public_url);
  }
  s.activation = std::make_unique<activation::ActivationPage>(
      *s.registry, clock,
      activation::PageOptions{
          .public_url = config.public_url,
          .key = common::HmacSha256(s.session_key, "llmbox activation form tokens"),
          .form_ttl = std::chrono::duration_cast<std::chrono::seconds>(config.form_ttl),
          .max_attempts_per_token = config.max_attempts_per_token,
          .max_attempts_per_address = config.max_attempts_per_address,
          .attempt_window = std::chrono::duration_cast<std::chrono::seconds>(config.attempt_window),
          .oidc = s.oidc.get(),
          .sessions = s.sessions.get(),
          .audit = s.audit.get(),
          .metrics = &s.metrics});

  s.router.Exact("/healthz",
                 [](http::Request, std::shared_ptr<http::Responder> out) { ServeHealth(*out); });
  s.router.Exact("/readyz", [&s](http::Request, std::shared_ptr<http::Responder> out) {
    ServeReady(*s.registry, *out);
  });
  if (config.metrics_enabled) {
    LLMBOX_ASSIGN_OR_RETURN(
        s.metrics_endpoint,
        metrics::MetricsEndpoint::Create(config.metrics_allow, config.metrics_bearer_token, [&s] {
          std::string text = s.metrics.Render();
          if (s.local != nullptr) text += s.local->MetricsText();
          return text;
        }));
    s.router.Exact("/metrics", [&s](http::Request request, std::shared_ptr<http::Responder> out) {
      s.metrics_endpoint->Handle(request, *out);
    });
  }
  for (const char* prefix : {"/auth/", "/assets/"}) {
    LLMBOX_CHECK(activation::ActivationPage::Serves(prefix),
                 "the activation page's prefixes changed");
    s.router.Prefix(prefix, [&s](http::Request request, std::shared_ptr<http::Responder> out) {
      s.activation->Handle(request, *out);
    });
  }
  if (config.oauth.enabled) {
    auto serve_oauth = [&s](http::Request request, std::shared_ptr<http::Responder> out) {
      oauth::OAuthServer* server = s.oauth_ptr.load();
      if (server == nullptr || !oauth::OAuthServer::Serves(request.path)) {
        out->Respond(
            mcp::McpEndpoint::HttpError(server == nullptr ? 503 : 404,
                                        server == nullptr ? "the hub is starting" : "Not Found"));
        return;
      }
      server->Handle(request, *out);
    };
    for (const char* path : {"/register", "/token", "/revoke", "/authorize"}) {
      s.router.Exact(path, serve_oauth);
    }
    for (const char* prefix : {"/.well-known/", "/authorize/"}) {
      s.router.Prefix(prefix, serve_oauth);
    }
  }
  s.router.Fallback([&s](http::Request request, std::shared_ptr<http::Responder> out) {
    mcp::McpEndpoint* endpoint = s.mcp_ptr.load();
    if (endpoint == nullptr) {
      out->Respond(mcp::McpEndpoint::HttpError(503, "the hub is starting"));
      return;
    }
    endpoint->Handle(std::move(request), std::move(out));
  });
  LLMBOX_ASSIGN_OR_RETURN(http::TrustedProxies trusted_proxies,
                          http::TrustedProxies::Parse(config.trusted_proxies));
  s.http = std::make_unique<http::HttpServer>(
      http::ServerOptions{.address = config.listen_host,
                          .port = config.listen_port,
                          .worker_threads = config.worker_threads,
                          .priority_paths = {"/healthz", "/readyz"},
                          .max_connections = config.max_connections,
                          .idle_timeout = config.idle_timeout,
                          .error_response = mcp::McpEndpoint::HttpError,
                          .tls_cert_file = config.tls_cert_file,
                          .tls_key_file = config.tls_key_file,
                          .trusted_proxies = std::move(trusted_proxies),
                          .loggable_path = activation::ActivationPage::LoggablePath},
      s.router.AsHandler());
  LLMBOX_RETURN_IF_ERROR(s.http->Start());
  s.config.listen_port = s.http->BoundPort();
  if (config.listen_port == 0 && config.public_url_is_default) {
    s.config.public_url = config::DefaultPublicUrl(s.config);
  }
  s.registry->SetPublicUrl(s.config.public_url);

  mcp::EndpointOptions mcp_options{
      .server_version = common::kVersion,
      .instructions = kInstructions,
      .session_key = s.session_key,
      .max_calls_per_principal = config.max_calls_per_caller > 0
                                     ? config.max_calls_per_caller
                                     : std::max(1, config.worker_threads / 2),
      .on_request = [&s](std::string_view method, std::string_view tool, std::string_view outcome) {
        s.metrics.RecordMcpRequest(method, tool, outcome);
      }};
  http::HostPolicy hosts = http::HostPolicyFor(s.config);
  mcp_options.allowed_hosts = std::move(hosts.hosts);
  mcp_options.allowed_origins = std::move(hosts.origins);
  // Ended sessions stay ended across a restart.
  LLMBOX_ASSIGN_OR_RETURN(mcp_options.ended_sessions,
                          s.store->ListEndedMcpSessions(common::ToUnixMillis(clock.Now())));
  store::Store* store = s.store.get();
  mcp_options.on_session_ended = [store](const std::string& hash, std::int64_t expires_at_ms) {
    if (auto st = store->EndMcpSession(hash, expires_at_ms); !st.ok()) {
      spdlog::warn("mcp: an ended session could not be recorded (it ends until a restart): {}",
                   common::AsStd(st.message()));
    }
  };
  s.api_keys = std::make_unique<auth::ApiKeyAuthenticator>(*s.store);
  if (config.oauth.enabled) {
    // Every MCP request then needs an access token, or an API key unless auth.api_keys is off.
    oauth::OAuthOptions oauth_options = config.oauth;
    oauth_options.issuer = s.config.public_url;
    s.config.oauth.issuer = s.config.public_url;
    s.cimd = oauth::MakeCurlCimdFetcher(oauth_options.cimd_timeout, oauth_options.cimd_max_bytes,
                                        oauth_options.cimd_allow_loopback);
    const bool keys_too = config.api_keys != config::ApiKeyMode::kOff;
    LLMBOX_ASSIGN_OR_RETURN(
        s.oauth, oauth::OAuthServer::Create(
                     std::move(oauth_options),
                     {.store = s.store.get(),
                      .cimd = s.cimd.get(),
                      .oidc = s.oidc.get(),
                      .sessions = s.sessions.get(),
                      .oidc_issuer = config.activation_oidc ? config.activation_oidc->issuer : "",
                      // A person taken off activation.oidc's allow-list (or every person, once
                      // activation.oidc is gone) loses the access their grants gave.
                      .oidc_person_allowed =
                          [allowlist = std::make_shared<const activation::EmailAllowlist>(
                               config.activation_oidc ? config.activation_oidc->allowed_emails
                                                      : std::vector<std::string>{},
                               config.activation_oidc ? config.activation_oidc->allowed_domains
                                                      : std::vector<std::string>{})](
                              std::string_view email) { return allowlist->Allows(email); },
                      .api_keys = keys_too ? s.api_keys.get() : nullptr,
                      .sign_in_keys = s.api_keys.get(),
                      .secret = s.session_key,
                      .audit = s.audit.get()},
                     clock));
    mcp_options.authenticate = [server = s.oauth.get()](std::optional<std::string_view> header) {
      return server->Authenticate(header);
    };
    mcp_options.www_authenticate = s.oauth->WwwAuthenticate();
    s.oauth_ptr.store(s.oauth.get());
    s.oauth->Prune();
    s.oauth_prune = std::make_unique<common::PeriodicTask>(clock, std::chrono::minutes(10),
                                                           [&s] { s.oauth->Prune(); });
    s.oauth_prune->Start();
    spdlog::info("hub: OAuth for MCP clients at {} (sign-in: {}; API keys {})", s.config.public_url,
                 oauth::SignInModeName(config.oauth.sign_in), keys_too ? "accepted too" : "off");
  } else if (config.api_keys_required) {
    mcp_options.authenticate = [keys = s.api_keys.get()](std::optional<std::string_view> header) {
      return keys->Authenticate(header);
    };
  }
  s.mcp = std::make_unique<mcp::McpEndpoint>(std::move(mcp_options), *s.tools, clock);
  s.mcp_ptr.store(s.mcp.get());
  spdlog::info("hub: serving MCP at {}/ (listening on {}:{}, {})", s.config.public_url,
               config.listen_host, s.http->BoundPort(),
               config.oauth.enabled       ? "OAuth access tokens required"
               : config.api_keys_required ? "API keys required"
                                          : "API keys off");
  if (!config.trusted_proxies.empty()) {
    spdlog::info("hub: client addresses from X-Forwarded-For / Forwarded when sent by {}",
                 absl::StrJoin(config.trusted_proxies, ", "));
  }
  s.serving = true;
  return hub;
}

int HubServer::port() const { return state_->config.listen_port; }

const std::string& HubServer::public_url() const { return state_->config.public_url; }

store::Store& HubServer::store() { return *state_->store; }

boxes::BoxRegistry& HubServer::registry() { return *state_->registry; }

void HubServer::Stop() {
  State& s = *state_;
  if (!s.serving) return;
  s.serving = false;
  s.http->Stop(std::chrono::seconds(10));
  if (s.hub_cert_renewer != nullptr) s.hub_cert_renewer->Stop();
  if (s.cluster_server) {
    s.cluster_server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  s.mcp_ptr.store(nullptr);
  s.oauth_ptr.store(nullptr);
  if (s.oauth_prune != nullptr) s.oauth_prune->Stop();
  spdlog::info("hub: stopped");
}

}  // namespace llmbox::hub::server
