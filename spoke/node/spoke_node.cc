// spoke/node/spoke_node.cc
#include "spoke/node/spoke_node.h"

#include <ifaddrs.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <system_error>
#include <utility>

#include "spdlog/spdlog.h"
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/grpc_server.h"
#include "common/grpc_tls.h"
#include "common/metrics_server.h"
#include "common/periodic.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/box/readiness.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/egress/egress.h"
#include "spoke/egress/firewall.h"
#include "spoke/egress/proxy.h"
#include "spoke/enroll/hub_pins.h"
#include "spoke/enroll/renewer.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/metrics/metered_engine.h"
#include "spoke/metrics/spoke_metrics.h"
#include "spoke/reaper/reaper.h"
#include "spoke/service/box_service.h"

namespace llmbox::spoke::node {
namespace {

// The hub's in-process spoke has always been called this, whatever its config says.
constexpr char kInProcessName[] = "local";

// Every address of this host's interfaces: a box may reach none of them.
std::vector<egress::IpAddress> HostAddresses() {
  std::vector<egress::IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (auto address = egress::IpAddressOf(it->ifa_addr)) out.push_back(*address);
  }
  freeifaddrs(list);
  return out;
}

// A relayed connection holds 7 descriptors (two sockets, two pipes, an eventfd): raise the
// soft limit to what the proxy's caps need, within the hard limit.
void RaiseFileLimit(int max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t want = static_cast<rlim_t>(max_connections) * 8 + 1024;
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = std::min(want, limit.rlim_max);
  (void)setrlimit(RLIMIT_NOFILE, &limit);
}

// The nftables table's owner: the spoke's name (its first 32 characters) and a hash of the
// name and its engine, so that two spokes on one host never share a table (the table's name
// stays well within nft's limit whatever the spoke is called).
std::string FirewallOwner(const std::string& spoke_name, const std::string& engine_endpoint) {
  uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char ch : spoke_name + "\n" + engine_endpoint) hash = (hash ^ ch) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return spoke_name.substr(0, 32) + "_" + hex;
}

}  // namespace

// Declared in construction order, so that members are destroyed in reverse: the renewer and
// the server (whose handlers use the service, the boxes and the engine) go first, the engine
// last. Stop() has already stopped the threads by then.
struct SpokeNode::Parts {
  Parts(const config::SpokeConfig& config, SpokeNodeOptions options, common::Clock& clock)
      : config(config), options(options), clock(clock) {}

  bool in_process() const { return options.transport == SpokeTransport::kInProcess; }

  const config::SpokeConfig config;  // what the renewer reads; outlives it
  const SpokeNodeOptions options;
  common::Clock& clock;
  enroll::HubPins hub_pins{enroll::HubPinsPath(config)};   // what the service checks the hub by
  std::unique_ptr<metrics::SpokeMetrics> metrics;          // what every part below reports to
  std::unique_ptr<docker::DockerEngine> owned_engine;      // unless options.engine
  std::unique_ptr<metrics::MeteredEngine> metered_engine;  // over owned_engine or options.engine
  docker::DockerEngine* engine = nullptr;                  // metered_engine
  common::PosixSubprocessRunner subprocesses;
  std::unique_ptr<hooks::HookRunner> hooks;
  // The boxes' way out (unless options.egress): the proxy and the host rules.
  std::unique_ptr<egress::Resolver> resolver;
  std::unique_ptr<egress::EgressProxy> proxy;
  std::unique_ptr<egress::Firewall> firewall;
  std::unique_ptr<egress::HostEgress> host_egress;
  std::unique_ptr<common::PeriodicTask> refusal_log;     // the host rules' refusals, to the log
  std::unique_ptr<box::WorkspaceDisks> workspace_disks;  // loop workspaces only
  std::unique_ptr<box::BoxManager> boxes;
  // The reaper's removals until the hub collects them (ListRemovals); before both users.
  std::unique_ptr<reaper::RemovalJournal> removals;
  std::unique_ptr<reaper::Reaper> reaper;
  std::unique_ptr<service::BoxServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::unique_ptr<enroll::CertificateRenewer> renewer;
  std::unique_ptr<common::MetricsServer> metrics_server;  // metrics.listen, when set
  bool stopped = false;
};

absl::StatusOr<std::unique_ptr<SpokeNode>> SpokeNode::Start(const config::SpokeConfig& config,
                                                            SpokeNodeOptions options,
                                                            common::Clock& clock) {
  auto parts = std::make_unique<Parts>(config, options, clock);
  const config::SpokeConfig& c = parts->config;
  if (parts->in_process()) {
    LLMBOX_RETURN_IF_ERROR(common::EnsureStateDir(c.state_dir));
  } else {
    // Only a check: the server reads the files itself (and again when they change).
    LLMBOX_RETURN_IF_ERROR(common::ReadTlsFiles(c.tls).status());
    LLMBOX_RETURN_IF_ERROR(parts->hub_pins.Load());
  }

  if (options.engine != nullptr && options.egress == nullptr) {
    // An injected engine's networks are not the host's: host rules and listeners for them
    // would be made on this machine for nothing (or fail).
    return absl::InvalidArgumentError(
        "a spoke node on an injected engine needs an injected egress (SpokeNodeOptions.egress)");
  }
  {
    std::vector<std::string> hook_names;
    for (const hooks::HookSpec& hook : c.hooks) hook_names.push_back(hook.name);
    parts->metrics = std::make_unique<metrics::SpokeMetrics>(std::move(hook_names));
  }
  docker::DockerEngine* engine = options.engine;
  if (engine == nullptr) {
    LLMBOX_ASSIGN_OR_RETURN(parts->owned_engine, docker::CurlDockerEngine::Create(c.docker));
    engine = parts->owned_engine.get();
  }
  parts->metered_engine = std::make_unique<metrics::MeteredEngine>(*engine, *parts->metrics, clock);
  parts->engine = parts->metered_engine.get();
  LLMBOX_ASSIGN_OR_RETURN(docker::EngineInfo info, parts->engine->Ping());
  if (parts->in_process()) {
    spdlog::info("local spoke: Docker engine {} (API {}) at {}", info.server_version,
                 info.api_version, info.endpoint);
  } else {
    spdlog::info("spoke {}: Docker engine {} (API {}) at {}", c.name, info.server_version,
                 info.api_version, info.endpoint);
  }
  // A spoke that cannot create (no default image, no claude_bin) serves all the same: the
  // operator fixes it in place, and every health answer tells the hub (box/readiness.h).
  if (auto st = box::CheckCanCreate(*parts->engine, c.boxes, info.endpoint); !st.ok()) {
    spdlog::warn("{}: cannot create boxes until this is fixed: {}",
                 parts->in_process() ? std::string("local spoke") : "spoke " + c.name,
                 common::AsStd(st.message()));
  }

  parts->hooks = std::make_unique<hooks::HookRunner>(
      parts->subprocesses, c.hooks,
      [metrics = parts->metrics.get()](std::string_view hook, std::string_view event,
                                       const absl::Status& status) {
        metrics->RecordHookRun(hook, event, status);
      });
  box::BoxManagerOptions box_options = c.boxes;
  const std::string spoke_name = parts->in_process() ? std::string(kInProcessName) : c.name;
  egress::BoxEgress* box_egress = options.egress;
  if (box_egress == nullptr) {
    box_options.egress.host_addresses = HostAddresses();
    parts->resolver = egress::MakeSystemResolver(c.egress.hosts);
    constexpr int kMaxProxyConnections = 2048;
    RaiseFileLimit(kMaxProxyConnections);
    parts->proxy = std::make_unique<egress::EgressProxy>(
        egress::ProxyOptions{.port = c.egress.proxy_port,
                             .policy = box_options.egress,
                             .resolver = parts->resolver.get(),
                             .max_connections = kMaxProxyConnections,
                             .spoke_name = spoke_name},
        clock);
    parts->firewall =
        egress::MakeNftFirewall({.spoke_name = FirewallOwner(spoke_name, info.endpoint),
                                 .proxy_port = c.egress.proxy_port,
                                 .nft_path = c.egress.nft_path},
                                parts->subprocesses, clock);
    parts->host_egress = std::make_unique<egress::HostEgress>(*parts->proxy, *parts->firewall);
    box_egress = parts->host_egress.get();
  }
  // The one place a spoke's BoxManager is made.
  if (c.boxes.disk.workspace_type == box::WorkspaceType::kLoop) {
    parts->workspace_disks =
        std::make_unique<box::LoopWorkspaceDisks>(c.state_dir + "/workspaces", parts->subprocesses);
  }
  parts->boxes =
      std::make_unique<box::BoxManager>(*parts->engine, clock, box_options, parts->hooks.get(),
                                        box_egress, parts->workspace_disks.get());
  LLMBOX_RETURN_IF_ERROR(parts->boxes->Recover());
  parts->removals = std::make_unique<reaper::RemovalJournal>(
      reaper::RemovalJournalOptions{.path = c.state_dir + "/removals.json"}, clock);
  if (absl::Status st = parts->removals->Load(); !st.ok()) {
    spdlog::warn("spoke {}: {}", spoke_name, common::AsStd(st.message()));
  }
  reaper::ReaperOptions reaper_options = c.reaper;
  reaper_options.journal = parts->removals.get();
  reaper_options.on_sweep = [metrics = parts->metrics.get()](const reaper::Sweep& sweep) {
    metrics->RecordReaperActions(sweep.expired_boxes.size(), sweep.orphan_networks.size(),
                                 sweep.errors.size());
  };
  parts->reaper =
      std::make_unique<reaper::Reaper>(*parts->boxes, *parts->engine, clock, reaper_options);
  // From the manager's memory: a scrape costs no engine call.
  parts->metrics->WatchBoxes([boxes = parts->boxes.get()] {
    std::map<std::string, int> by_phase;
    for (const auto& [phase, count] : boxes->CountByPhase()) {
      by_phase[std::string(box::PhaseName(phase))] = count;
    }
    return by_phase;
  });
  parts->service = std::make_unique<service::BoxServiceImpl>(
      *parts->boxes, *parts->engine,
      service::BoxServiceOptions{
          .spoke_name = parts->in_process() ? std::string(kInProcessName) : c.name,
          .allowed_peer = parts->in_process() ? std::string() : c.hub_identity,
          .check_peer_certificate =
              parts->in_process()
                  ? nullptr
                  : std::function<absl::Status(std::string_view)>(
                        [pins = &parts->hub_pins, name = c.name](std::string_view cert_pem) {
                          absl::Status pinned = pins->Check(cert_pem);
                          if (!pinned.ok()) {
                            spdlog::warn("spoke {}: refused a call from the hub: {}", name,
                                         common::AsStd(pinned.message()));
                          }
                          return pinned;
                        }),
          .set_hub_keys = parts->in_process()
                              ? nullptr
                              : std::function<absl::Status(const std::vector<std::string>&)>(
                                    [pins = &parts->hub_pins,
                                     name = c.name](const std::vector<std::string>& keys) {
                                      absl::Status replaced = pins->Replace(keys);
                                      if (replaced.ok()) {
                                        spdlog::info(
                                            "spoke {}: the hub set the hub keys it accepts ({})",
                                            name, keys.size());
                                      }
                                      return replaced;
                                    }),
          .boxes = c.boxes,
          .auth_ttl = c.reaper.auth_ttl,
          .removals = parts->removals.get()});

  if (parts->in_process()) {
    grpc::ServerBuilder builder;
    builder.RegisterService(parts->service.get());
    builder.SetMaxReceiveMessageSize(4 << 20);
    parts->server = builder.BuildAndStart();
    if (parts->server == nullptr) return absl::InternalError("the in-process spoke did not start");
  } else {
    // Watched, so `llmbox-spoke renew` takes effect without a restart.
    LLMBOX_ASSIGN_OR_RETURN(
        common::RunningGrpcServer server,
        common::StartGrpcServer({.address = c.listen},
                                common::WatchedMutualTlsServerCredentials(c.tls),
                                parts->service.get()));
    parts->server = std::move(server.server);
    parts->port = server.port;
  }

  parts->reaper->Start();
  if (parts->host_egress != nullptr) {
    parts->refusal_log = std::make_unique<common::PeriodicTask>(
        clock, std::chrono::seconds(10),
        [egress = parts->host_egress.get(), spoke_name] { egress->LogNewRefusals(spoke_name); });
    parts->refusal_log->Start();
  }
  if (!parts->in_process() && !c.metrics_listen.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(
        parts->metrics_server,
        common::MetricsServer::Start(
            c.metrics_listen, [metrics = parts->metrics.get()] { return metrics->Render(); },
            c.metrics_bearer_token));
    spdlog::info("spoke {}: metrics at http://{}/metrics (port {}{})", c.name, c.metrics_listen,
                 parts->metrics_server->port(),
                 c.metrics_bearer_token.empty() ? "" : "; a bearer token is required");
  }
  if (!parts->in_process()) {
    parts->renewer = std::make_unique<enroll::CertificateRenewer>(c, clock, &parts->hub_pins);
    parts->renewer->Start();
    const std::size_t pinned = parts->hub_pins.Get().size();
    spdlog::info("spoke {}: serving on port {} (mutual TLS; only {} may call, {})", c.name,
                 parts->port, c.hub_identity,
                 pinned == 0 ? std::string("with any key: no hub keys pinned")
                             : "with one of " + std::to_string(pinned) + " pinned key(s)");
  }
  return std::unique_ptr<SpokeNode>(new SpokeNode(std::move(parts)));
}

SpokeNode::SpokeNode(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

SpokeNode::~SpokeNode() { Stop(); }

int SpokeNode::port() const { return parts_->port; }

int SpokeNode::metrics_port() const {
  return parts_->metrics_server == nullptr ? 0 : parts_->metrics_server->port();
}

std::string SpokeNode::MetricsText() const { return parts_->metrics->Render(); }

box::BoxManager& SpokeNode::boxes() { return *parts_->boxes; }

std::shared_ptr<grpc::Channel> SpokeNode::InProcessChannel() {
  if (!parts_->in_process()) return nullptr;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  return parts_->server->InProcessChannel(args);
}

void SpokeNode::Stop() {
  if (parts_->stopped) return;
  parts_->stopped = true;
  if (parts_->metrics_server != nullptr) parts_->metrics_server->Stop();
  if (parts_->renewer != nullptr) parts_->renewer->Stop();
  if (parts_->refusal_log != nullptr) parts_->refusal_log->Stop();
  parts_->reaper->Stop();
  // gRPC deadlines are on the system clock, not ours.
  const auto grace = parts_->in_process() ? std::chrono::seconds(5) : std::chrono::seconds(10);
  parts_->server->Shutdown(std::chrono::system_clock::now() + grace);
  // Boxes keep their host rules (they hold even while no spoke runs); only the proxy stops.
  // With no box left, nothing of the spoke stays on the host.
  if (parts_->proxy != nullptr) parts_->proxy->Stop();
  if (parts_->host_egress != nullptr) parts_->host_egress->DropRulesIfEmpty();
}

}  // namespace llmbox::spoke::node
