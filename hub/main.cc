// llmbox-hub: the front door. MCP over streamable HTTP, the activation page, the registry,
// and placement of boxes onto spokes (by default one spoke, in-process). Wiring of the real
// implementations happens here and nowhere else.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "spdlog/spdlog.h"
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/secrets.h"
#include "common/signals.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "common/validate.h"
#include "common/version.h"
#include "hub/activation/http_fetch.h"
#include "hub/activation/oidc.h"
#include "hub/activation/page.h"
#include "hub/activation/session_cookie.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/enrollment_service.h"
#include "hub/cluster/join_tokens.h"
#include "hub/cluster/remote_spokes.h"
#include "hub/config/hub_config.h"
#include "hub/http/server.h"
#include "hub/mcp/endpoint.h"
#include "hub/store/sqlite_store.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/reaper/reaper.h"
#include "spoke/service/box_service.h"
#include "common/grpc_server.h"

namespace {

using namespace llmbox;

constexpr char kUsage[] = R"(llmbox-hub - hosts sandboxed Claude Code boxes for chatbots

Usage:
  llmbox-hub serve --config FILE                   serve MCP and the activation page until SIGTERM
  llmbox-hub check-config --config FILE            check a config file and say what is wrong
  llmbox-hub apikey create --name NAME --config FILE   print a new MCP API key (shown once)
  llmbox-hub apikey list --config FILE             list keys (names and dates, never the keys)
  llmbox-hub apikey revoke --name NAME --config FILE   revoke a key (takes effect at once,
                                                   also while the hub is serving)
  llmbox-hub spoke token create --name NAME [--ttl 1h] --config FILE
                                                   print a one-time join token for a spoke
                                                   (shown once; the hub must have started
                                                   once with a cluster section)
  llmbox-hub spoke token list --config FILE        list join tokens (never the tokens)
  llmbox-hub spoke list --config FILE              list the spokes that joined
  llmbox-hub spoke remove --name NAME --config FILE   forget a spoke: the hub stops dialing it
                                                   and it can no longer renew its certificate
  llmbox-hub --version
  llmbox-hub --help

The config file is documented in docs/hub.md.
)";

int Fail(const absl::Status& status) {
  const std::string message(common::AsStd(status.message()));
  std::fprintf(stderr, "llmbox-hub: %s\n", message.c_str());
  return 1;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status EnsureStateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create the state directory " + dir + ": " +
                                         ec.message());
  }
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<hub::store::SqliteStore>> OpenStore(
    const hub::config::HubConfig& config) {
  LLMBOX_RETURN_IF_ERROR(EnsureStateDir(config.state_dir));
  return hub::store::SqliteStore::Open(config.state_dir + "/hub.db");
}

// The key that signs MCP session ids: made once, kept 0600 in the state dir, so sessions
// outlive a restart.
absl::StatusOr<std::string> SessionKey(const std::string& state_dir) {
  const std::string path = state_dir + "/session.key";
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str().size() >= 32) return text.str();
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string key, common::RandomToken(32));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    ::chmod(tmp.c_str(), 0600);
    out << key;
    if (!out) return absl::FailedPreconditionError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::FailedPreconditionError("cannot write " + path + ": " + ec.message());
  return key;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Hosts and origins the MCP endpoint accepts: the public URL's, the loopback names on the
// listen port when the hub listens on loopback, and the configured extras.
void AllowedHostsAndOrigins(const hub::config::HubConfig& config, std::vector<std::string>* hosts,
                            std::vector<std::string>* origins) {
  const std::string& url = config.public_url;
  const auto scheme_end = url.find("://");
  const std::string public_host = Lower(url.substr(scheme_end + 3));
  hosts->push_back(public_host);
  origins->push_back(Lower(url));
  const std::string default_port = url.rfind("https", 0) == 0 ? ":443" : ":80";
  if (public_host.size() > default_port.size() && public_host.ends_with(default_port)) {
    hosts->push_back(public_host.substr(0, public_host.size() - default_port.size()));
  } else if (public_host.find(':') == std::string::npos || public_host.back() == ']') {
    hosts->push_back(public_host + default_port);
  }
  if (hub::config::IsLoopbackHost(config.listen_host) || config.listen_host == "0.0.0.0" ||
      config.listen_host == "::") {
    const std::string port = std::to_string(config.listen_port);
    for (const char* name : {"localhost", "127.0.0.1", "[::1]"}) {
      hosts->push_back(std::string(name) + ":" + port);
      origins->push_back("http://" + std::string(name) + ":" + port);
      origins->push_back("https://" + std::string(name) + ":" + port);
    }
  }
  for (const auto& host : config.allowed_hosts) hosts->push_back(Lower(host));
  for (const auto& origin : config.allowed_origins) origins->push_back(Lower(origin));
}

std::string UtcTime(std::int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buffer);
}

std::string ClusterDir(const hub::config::HubConfig& config) {
  return config.state_dir + "/cluster";
}

int ApiKeyCommand(const std::string& verb, const std::string& name,
                  const hub::config::HubConfig& config) {
  auto store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (verb == "create") {
    if (auto st = common::ValidateName(name, "API key name"); !st.ok()) return Fail(st);
    auto secret = common::RandomToken(32);
    if (!secret.ok()) return Fail(secret.status());
    const std::string key = "llmbox_" + *secret;
    auto st = (*store)->InsertApiKey(
        {.name = name, .hash = common::Sha256Hex(key), .created_at_ms = NowMs()});
    if (!st.ok()) return Fail(st);
    std::fprintf(stderr,
                 "llmbox-hub: API key \"%s\" created. It is shown once; only its hash is kept.\n"
                 "Connect Claude Code with:\n"
                 "  claude mcp add --transport http llmbox %s/ --header \"Authorization: Bearer "
                 "<the key>\"\n",
                 name.c_str(), config.public_url.c_str());
    std::printf("%s\n", key.c_str());
    return 0;
  }
  if (verb == "list") {
    auto keys = (*store)->ListApiKeys();
    if (!keys.ok()) return Fail(keys.status());
    std::printf("%-32s %-22s %s\n", "NAME", "CREATED", "STATE");
    for (const auto& key : *keys) {
      std::printf("%-32s %-22s %s\n", key.name.c_str(), UtcTime(key.created_at_ms).c_str(),
                  key.revoked_at_ms ? ("revoked " + UtcTime(*key.revoked_at_ms)).c_str() : "live");
    }
    return 0;
  }
  if (verb == "revoke") {
    if (auto st = (*store)->RevokeApiKey(name, NowMs()); !st.ok()) return Fail(st);
    std::fprintf(stderr, "llmbox-hub: API key \"%s\" revoked\n", name.c_str());
    return 0;
  }
  std::fputs(kUsage, stderr);
  return 2;
}

// `llmbox-hub spoke ...`: join tokens and joined spokes, through the Store the serving hub
// shares, so they work while it runs.
int SpokeCommand(const std::string& verb, const std::string& name, const std::string& ttl_text,
                 const hub::config::HubConfig& config) {
  auto store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (verb == "token create") {
    if (config.cluster_listen.empty()) {
      return Fail(absl::FailedPreconditionError(
          "cluster.listen is not set in the config: spokes cannot reach this hub to join. Set "
          "it (e.g. cluster: {listen: 0.0.0.0:7444}) and restart the hub"));
    }
    auto pki = hub::cluster::LoadClusterPki(ClusterDir(config));
    if (!pki.ok()) return Fail(pki.status());
    auto ttl = common::ParseDuration(ttl_text.empty() ? "1h" : ttl_text);
    if (!ttl) return Fail(absl::InvalidArgumentError("--ttl must look like 30m, 1h or 24h"));
    auto token = hub::cluster::IssueJoinToken(**store, pki->ca_sha256, name, *ttl, NowMs());
    if (!token.ok()) return Fail(token.status());
    std::string port = config.cluster_listen.substr(config.cluster_listen.rfind(':') + 1);
    if (port == "0") port = "<its cluster port, logged at start>";
    std::fprintf(stderr,
                 "llmbox-hub: join token for spoke \"%s\" created, valid for %s and once. It is "
                 "shown once; only its hash is kept. On the spoke (spoke.name: %s in its "
                 "config):\n"
                 "  llmbox-spoke join --hub <this hub's address>:%s --token <the token> "
                 "--advertise <spoke address>:7443 --config /etc/llmbox/spoke.yaml\n",
                 name.c_str(), ttl_text.empty() ? "1h" : ttl_text.c_str(), name.c_str(),
                 port.c_str());
    std::printf("%s\n", token->c_str());
    return 0;
  }
  if (verb == "token list") {
    auto tokens = (*store)->ListJoinTokens();
    if (!tokens.ok()) return Fail(tokens.status());
    std::printf("%-32s %-22s %-22s %s\n", "SPOKE", "CREATED", "EXPIRES", "STATE");
    const std::int64_t now = NowMs();
    for (const auto& token : *tokens) {
      const std::string state = token.used_at_ms             ? "used " + UtcTime(*token.used_at_ms)
                                : now >= token.expires_at_ms ? "expired"
                                                             : "unused";
      std::printf("%-32s %-22s %-22s %s\n", token.name.c_str(),
                  UtcTime(token.created_at_ms).c_str(), UtcTime(token.expires_at_ms).c_str(),
                  state.c_str());
    }
    return 0;
  }
  if (verb == "list") {
    auto spokes = (*store)->ListSpokes();
    if (!spokes.ok()) return Fail(spokes.status());
    std::printf("%-32s %-28s %-22s %-22s %s\n", "NAME", "ADDRESS", "JOINED", "CERT UNTIL",
                "LABELS");
    for (const auto& spoke : *spokes) {
      std::string labels;
      for (const auto& [key, value] : spoke.labels) {
        labels += (labels.empty() ? "" : ",") + key + "=" + value;
      }
      std::printf("%-32s %-28s %-22s %-22s %s\n", spoke.name.c_str(),
                  spoke.advertise_address.c_str(), UtcTime(spoke.joined_at_ms).c_str(),
                  UtcTime(spoke.not_after_ms).c_str(), labels.c_str());
    }
    return 0;
  }
  if (verb == "remove") {
    if (auto st = (*store)->DeleteSpoke(name); !st.ok()) return Fail(st);
    std::fprintf(stderr,
                 "llmbox-hub: spoke \"%s\" removed: a serving hub stops dialing it within "
                 "hub.reconcile_interval, and it can no longer renew its certificate\n",
                 name.c_str());
    return 0;
  }
  std::fputs(kUsage, stderr);
  return 2;
}

class ReconcileLoop {
 public:
  // `before` (may be empty) runs ahead of each reconcile: bringing in spokes that joined or
  // were removed meanwhile.
  ReconcileLoop(hub::boxes::BoxRegistry& registry, common::Clock& clock,
                std::chrono::milliseconds interval, std::function<void()> before)
      : registry_(registry), clock_(clock), interval_(interval), before_(std::move(before)) {
    thread_ = std::thread([this] {
      std::unique_lock lock(mu_);
      while (!stop_) {
        clock_.WaitUntil(lock, cv_, clock_.SteadyNow() + interval_, [this] { return stop_; });
        if (stop_) break;
        lock.unlock();
        if (before_) before_();
        registry_.Reconcile();
        lock.lock();
      }
    });
  }
  ~ReconcileLoop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  hub::boxes::BoxRegistry& registry_;
  common::Clock& clock_;
  const std::chrono::milliseconds interval_;
  const std::function<void()> before_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The hub's in-process spoke: the spoke's own service code on an in-process gRPC channel (no
// listening port), so one binary serves a single host.
struct LocalSpoke {
  std::unique_ptr<spoke::docker::DockerEngine> engine;
  std::unique_ptr<common::PosixSubprocessRunner> subprocesses;
  std::unique_ptr<spoke::hooks::HookRunner> hooks;
  std::unique_ptr<spoke::box::BoxManager> boxes;
  std::unique_ptr<spoke::reaper::Reaper> reaper;
  std::unique_ptr<spoke::service::BoxServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<v1::BoxService::StubInterface> stub;

  ~LocalSpoke() {
    if (reaper) reaper->Stop();
    if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
};

absl::StatusOr<std::unique_ptr<LocalSpoke>> StartLocalSpoke(
    const spoke::config::SpokeConfig& config) {
  auto local = std::make_unique<LocalSpoke>();
  LLMBOX_RETURN_IF_ERROR(EnsureStateDir(config.state_dir));
  LLMBOX_ASSIGN_OR_RETURN(local->engine, spoke::docker::CurlDockerEngine::Create(config.docker));
  LLMBOX_ASSIGN_OR_RETURN(auto info, local->engine->Ping());
  spdlog::info("local spoke: Docker engine {} (API {}) at {}", info.server_version,
               info.api_version, info.endpoint);
  local->subprocesses = std::make_unique<common::PosixSubprocessRunner>();
  local->hooks = std::make_unique<spoke::hooks::HookRunner>(*local->subprocesses, config.hooks);
  local->boxes = std::make_unique<spoke::box::BoxManager>(
      *local->engine, common::SystemClock::Get(), config.boxes, local->hooks.get());
  LLMBOX_RETURN_IF_ERROR(local->boxes->Recover());
  local->reaper = std::make_unique<spoke::reaper::Reaper>(
      *local->boxes, *local->engine, common::SystemClock::Get(), config.reaper);
  local->service = std::make_unique<spoke::service::BoxServiceImpl>(
      *local->boxes, *local->engine,
      spoke::service::BoxServiceOptions{.spoke_name = "local",
                                        .allowed_peer = "",
                                        .boxes = config.boxes,
                                        .auth_ttl = config.reaper.auth_ttl});
  grpc::ServerBuilder builder;
  builder.RegisterService(local->service.get());
  builder.SetMaxReceiveMessageSize(4 << 20);
  local->server = builder.BuildAndStart();
  if (local->server == nullptr) return absl::InternalError("the in-process spoke did not start");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  local->stub = v1::BoxService::NewStub(local->server->InProcessChannel(args));
  local->reaper->Start();
  return local;
}

int Serve(const hub::config::HubConfig& config) {
  if (auto st = common::InitLogging(config.log); !st.ok()) return Fail(st);
  auto store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  auto session_key = SessionKey(config.state_dir);
  if (!session_key.ok()) return Fail(session_key.status());
  common::Clock& clock = common::SystemClock::Get();

  hub::boxes::SpokeDirectory spokes;
  std::unique_ptr<LocalSpoke> local;
  if (config.local_spoke) {
    auto started = StartLocalSpoke(config.local_spoke_config);
    if (!started.ok()) return Fail(started.status());
    local = *std::move(started);
    spokes.Add("local", local->stub, /*local=*/true);
  }
  // The cluster: spokes that joined are dialed with mutual TLS, and the enrollment service
  // listens for more.
  // Declared in the order they may be destroyed in reverse: the server (and its handlers)
  // goes first.
  std::optional<hub::cluster::ClusterPki> pki;
  std::unique_ptr<hub::cluster::RemoteSpokes> remote;
  std::function<void()> sync_spokes;
  std::unique_ptr<hub::cluster::EnrollmentServiceImpl> enrollment;
  std::optional<common::RunningGrpcServer> cluster_server;
  if (!config.cluster_listen.empty()) {
    auto loaded = hub::cluster::LoadOrCreateClusterPki(ClusterDir(config), {});
    if (!loaded.ok()) return Fail(loaded.status());
    pki = *std::move(loaded);
    remote = std::make_unique<hub::cluster::RemoteSpokes>(**store, spokes, pki->hub);
    sync_spokes = [&remote] {
      if (auto st = remote->Sync(); !st.ok()) {
        spdlog::warn("cluster: cannot read the joined spokes: {}", common::AsStd(st.message()));
      }
    };
    if (auto st = remote->Sync(); !st.ok()) return Fail(st);
    enrollment = std::make_unique<hub::cluster::EnrollmentServiceImpl>(
        **store, *pki, clock,
        hub::cluster::EnrollmentOptions{.cert_validity = absl::FromChrono(config.cert_validity),
                                        .renew_before = absl::FromChrono(config.renew_before)},
        [&sync_spokes](const hub::store::SpokeRecord&) { sync_spokes(); });
    auto started = common::StartGrpcServer(
        {.address = config.cluster_listen, .max_message_bytes = 64 << 10},
        common::OptionalClientTlsServerCredentials(pki->hub), enrollment.get());
    if (!started.ok()) return Fail(started.status());
    cluster_server = *std::move(started);
    spdlog::info("cluster: enrollment service on port {} (cluster CA sha256:{})",
                 cluster_server->port, pki->ca_sha256);
  }
  hub::boxes::BoxRegistry registry(**store, spokes, clock, {.public_url = config.public_url});
  const auto unknown = registry.Reconcile();
  {
    auto boxes = registry.List({});
    spdlog::info("hub: registry restored: {} boxes ({} unknown managed boxes on spokes)",
                 boxes.ok() ? boxes->size() : 0, unknown.size());
  }
  ReconcileLoop reconcile(registry, clock, config.reconcile_interval, sync_spokes);

  hub::boxes::BoxTools tools(registry);
  // Sign-in gating of the activation page, when activation.oidc is configured.
  std::unique_ptr<hub::activation::CurlHttpFetcher> oidc_http;
  std::unique_ptr<hub::activation::ProviderOidcClient> oidc;
  std::unique_ptr<hub::activation::SessionCookie> sessions;
  if (config.activation_oidc) {
    const auto& o = *config.activation_oidc;
    oidc_http = std::make_unique<hub::activation::CurlHttpFetcher>(
        hub::activation::CurlHttpFetcher::Options{.total_timeout = o.http_timeout});
    auto created = hub::activation::ProviderOidcClient::Create(
        {.issuer = o.issuer,
         .client_id = o.client_id,
         .client_secret = o.client_secret,
         .redirect_uri = config.public_url + "/auth/oidc/callback",
         .allowed_emails = o.allowed_emails,
         .allowed_domains = o.allowed_domains},
        *oidc_http, clock);
    if (!created.ok()) return Fail(created.status());
    oidc = *std::move(created);
    sessions = std::make_unique<hub::activation::SessionCookie>(
        hub::activation::SessionCookie::DeriveKey(*session_key),
        std::chrono::duration_cast<std::chrono::seconds>(o.session_ttl), clock);
    spdlog::info("hub: activation gated by sign-in at {} (redirect URI {}/auth/oidc/callback)",
                 o.issuer, config.public_url);
  }
  hub::activation::ActivationPage activation(
      registry, clock,
      {.public_url = config.public_url,
       .key = common::HmacSha256(*session_key, "llmbox activation form tokens"),
       .form_ttl = std::chrono::duration_cast<std::chrono::seconds>(config.form_ttl),
       .max_attempts_per_token = config.max_attempts_per_token,
       .max_attempts_per_address = config.max_attempts_per_address,
       .attempt_window = std::chrono::duration_cast<std::chrono::seconds>(config.attempt_window),
       .oidc = oidc.get(),
       .sessions = sessions.get()});
  // The endpoint is made once the port is bound (port 0 picks one, and the default public URL
  // names it); until then MCP requests get 503.
  std::atomic<hub::mcp::McpEndpoint*> mcp_ptr{nullptr};
  auto handler = [&](hub::http::Request request, std::shared_ptr<hub::http::Responder> out) {
    if (request.path == "/healthz") {
      out->Respond({.status = 200, .headers = {{"Content-Type", "text/plain"}}, .body = "ok\n"});
      return;
    }
    if (request.path == "/readyz") {
      bool ready = true;
      std::string body;
      for (const auto& spoke : registry.Spokes()) {
        ready = ready && (spoke.connected || !spoke.local);
        body += spoke.name + ": " + (spoke.connected ? "ok" : "down: " + spoke.error) + "\n";
      }
      out->Respond(
          {.status = ready ? 200 : 503, .headers = {{"Content-Type", "text/plain"}}, .body = body});
      return;
    }
    if (hub::activation::ActivationPage::Serves(request.path)) {
      activation.Handle(request, *out);
      return;
    }
    hub::mcp::McpEndpoint* mcp = mcp_ptr.load();
    if (mcp == nullptr) {
      out->Respond(hub::mcp::McpEndpoint::HttpError(503, "the hub is starting"));
      return;
    }
    mcp->Handle(std::move(request), std::move(out));
  };
  hub::http::HttpServer server({.address = config.listen_host,
                                .port = config.listen_port,
                                .worker_threads = config.worker_threads,
                                .max_connections = config.max_connections,
                                .idle_timeout = config.idle_timeout,
                                .error_response = hub::mcp::McpEndpoint::HttpError,
                                .tls_cert_file = config.tls_cert_file,
                                .tls_key_file = config.tls_key_file},
                               handler);
  if (auto st = server.Start(); !st.ok()) return Fail(st);
  hub::config::HubConfig bound = config;
  bound.listen_port = server.BoundPort();
  if (config.listen_port == 0 && config.public_url_is_default) {
    bound.public_url = hub::config::DefaultPublicUrl(bound);
  }
  registry.SetPublicUrl(bound.public_url);

  hub::mcp::EndpointOptions mcp_options{
      .server_version = common::kVersion,
      .instructions =
          "llmbox hosts sandboxed Claude Code boxes. create_llmbox returns an auth_url: give it "
          "to the user, who signs the box in with their own Claude account in a browser. Then "
          "get_llmbox shows the session_url they drive it from. Never ask for codes or tokens.",
      .session_key = *session_key};
  AllowedHostsAndOrigins(bound, &mcp_options.allowed_hosts, &mcp_options.allowed_origins);
  hub::store::Store* store_ptr = store->get();
  // Ended sessions stay ended across a restart.
  auto ended = store_ptr->ListEndedMcpSessions(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
          .count());
  if (!ended.ok()) return Fail(ended.status());
  mcp_options.ended_sessions = *std::move(ended);
  mcp_options.on_session_ended = [store_ptr](const std::string& hash, std::int64_t expires_at_ms) {
    if (auto st = store_ptr->EndMcpSession(hash, expires_at_ms); !st.ok()) {
      spdlog::warn("mcp: an ended session could not be recorded (it ends until a restart): {}",
                   common::AsStd(st.message()));
    }
  };
  if (config.api_keys_required) {
    mcp_options.authenticate =
        [store_ptr](std::optional<std::string_view> header) -> absl::StatusOr<std::string> {
      if (!header) {
        return absl::UnauthenticatedError(
            "an API key is required: send Authorization: Bearer <key> (llmbox-hub apikey "
            "create)");
      }
      std::string_view value = *header;
      if (value.size() < 8 || Lower(std::string(value.substr(0, 7))) != "bearer ") {
        return absl::UnauthenticatedError("the Authorization header must be Bearer <key>");
      }
      value.remove_prefix(7);
      auto key = store_ptr->FindLiveApiKey(common::Sha256Hex(value));
      if (!key.ok()) return absl::UnauthenticatedError("this API key is unknown or revoked");
      return key->name;
    };
  }
  hub::mcp::McpEndpoint mcp(std::move(mcp_options), tools, clock);
  mcp_ptr.store(&mcp);
  spdlog::info("hub: serving MCP at {}/ (listening on {}:{}, API keys {})", bound.public_url,
               config.listen_host, server.BoundPort(),
               config.api_keys_required ? "required" : "off");

  // SIGTERM and SIGINT are blocked in every thread (see main); only this wait sees them.
  const int signal_number = common::WaitForStopSignal();
  spdlog::info("hub: {} received; stopping", strsignal(signal_number));
  server.Stop(std::chrono::seconds(10));
  if (cluster_server) {
    cluster_server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  mcp_ptr.store(nullptr);
  spdlog::info("hub: stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  const std::string_view command = args.empty() ? "" : args[0];
  if (command == "--version") {
    std::printf("llmbox-hub %s\n", common::kVersion);
    return 0;
  }
  if (command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Words after the command up to the first flag are its verb ("create", "token create");
  // then flags: --config FILE, --name NAME, --ttl DURATION.
  std::string config_path;
  std::string name;
  std::string ttl;
  std::string verb;
  std::size_t first_flag = 1;
  while (first_flag < args.size() && !args[first_flag].starts_with("--")) {
    verb += (verb.empty() ? "" : " ") + std::string(args[first_flag++]);
  }
  bool flags_ok = args.size() >= first_flag;
  for (std::size_t i = first_flag; flags_ok && i < args.size(); i += 2) {
    if (i + 1 >= args.size()) {
      flags_ok = false;
    } else if (args[i] == "--config") {
      config_path = args[i + 1];
    } else if (args[i] == "--name") {
      name = args[i + 1];
    } else if (args[i] == "--ttl") {
      ttl = args[i + 1];
    } else {
      flags_ok = false;
    }
  }
  const bool known = ((command == "serve" || command == "check-config") && verb.empty()) ||
                     command == "apikey" || command == "spoke";
  const bool needs_name = (command == "apikey" && verb != "list") ||
                          (command == "spoke" && (verb == "token create" || verb == "remove"));
  if (!known || !flags_ok || config_path.empty() || (needs_name && name.empty()) ||
      (!ttl.empty() && verb != "token create")) {
    std::fputs(kUsage, stderr);
    if (!command.empty()) {
      std::fprintf(stderr, "\nllmbox-hub: unknown command or missing arguments: %s\n", argv[1]);
    }
    return 2;
  }
  // Before any thread starts, so only WaitForStopSignal sees them.
  common::BlockStopSignals();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto config = hub::config::LoadHubConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  if (command == "check-config") {
    std::printf(
        "llmbox-hub: %s is valid (listen %s:%d, public URL %s, API keys %s, local spoke "
        "%s, cluster %s)\n",
        config_path.c_str(), config->listen_host.c_str(), config->listen_port,
        config->public_url.c_str(), config->api_keys_required ? "required" : "off",
        config->local_spoke ? "on" : "off",
        config->cluster_listen.empty() ? "off" : config->cluster_listen.c_str());
    if (config->activation_oidc) {
      // What the provider's client registration must list.
      std::printf("llmbox-hub: activation sign-in at %s, redirect URI %s/auth/oidc/callback\n",
                  config->activation_oidc->issuer.c_str(), config->public_url.c_str());
    }
    return 0;
  }
  if (command == "apikey") return ApiKeyCommand(verb, name, *config);
  if (command == "spoke") return SpokeCommand(verb, name, ttl, *config);
  return Serve(*config);
}
