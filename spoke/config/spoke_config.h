// spoke/config/spoke_config.h
//
// The spoke's configuration file (strict YAML, see docs/spoke.md) as a plain struct.
//
//   LLMBOX_ASSIGN_OR_RETURN(SpokeConfig config, LoadSpokeConfig("/etc/llmbox/spoke.yaml"));
//
// Every error names the key path and line (`config: boxes.max_boxes (line 12): must be
// 1..1000, got 0`). Relative paths are taken relative to the config file's folder.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/config.h"
#include "common/grpc_tls.h"
#include "common/log.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/egress/policy.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/reaper/reaper.h"

namespace llmbox::spoke::config {

// The egress section besides the policy (which goes to boxes.egress): where the proxy
// listens on each box network's gateway and the names it resolves itself.
struct EgressConfig {
  int proxy_port = 3128;
  // Names the proxy resolves to these addresses before asking DNS (lower case, exact).
  std::map<std::string, std::vector<egress::IpAddress>> hosts;
  std::string nft_path = "nft";
};

// What Claude Code itself needs in allowlist mode (docs/network.md lists them and why).
std::vector<std::string> DefaultBaseAllowlist();

struct SpokeConfig {
  std::string name = "local";
  std::string listen = "0.0.0.0:7443";
  std::string state_dir = "/var/lib/llmbox-spoke";
  common::TlsFiles tls;  // the spoke's own certificate, key, and the cluster CA
  std::string hub_identity = std::string(common::kHubIdentity);
  // How often `serve` checks whether its certificate is due for renewal (tls.renew_check).
  std::chrono::milliseconds renew_check{std::chrono::minutes(10)};
  docker::EngineEndpoint docker;
  box::BoxManagerOptions boxes;
  EgressConfig egress;
  reaper::ReaperOptions reaper;
  std::vector<hooks::HookSpec> hooks;
  common::LogConfig log;
  // metrics.listen: where `serve` answers GET /metrics (host:port, an IP or localhost; empty:
  // off). Whoever can reach it may read it: keep it on loopback or a private address. The
  // hub's local spoke has none (the hub's /metrics serves its metrics).
  std::string metrics_listen;
  // metrics.bearer_token_file, read at load (common::ReadMetricsBearerToken): when set, GET
  // /metrics also wants "Authorization: Bearer <token>". Empty: no token. Never logged.
  std::string metrics_bearer_token;
};

// Reads the sections that describe boxes on this Docker host (docker, boxes, reaper, hooks)
// from `map` into `config`; the hub's local_spoke section has the same keys. The caller
// Finish()es `map`.
[[nodiscard]] absl::Status ReadBoxHostSections(common::ConfigMap& map, const std::string& base_dir,
                                               SpokeConfig* config);

[[nodiscard]] absl::StatusOr<SpokeConfig> LoadSpokeConfig(const std::string& path);
[[nodiscard]] absl::StatusOr<SpokeConfig> ParseSpokeConfig(std::string_view yaml,
                                                           const std::string& source,
                                                           const std::string& base_dir);

}  // namespace llmbox::spoke::config
