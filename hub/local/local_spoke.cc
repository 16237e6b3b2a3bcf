#include "hub/local/local_spoke.h"

#include <chrono>
#include <optional>
#include <utility>

#include "spdlog/spdlog.h"

#include "common/clock.h"
#include "common/config.h"
#include "common/status.h"
#include "hub/server/state_dir.h"
#include "spoke/docker/curl_engine.h"

namespace llmbox::hub::local {

absl::StatusOr<spoke::config::SpokeConfig> ReadLocalSpokeConfig(const config::HubConfig& config) {
  spoke::config::SpokeConfig spoke;
  spoke.docker.unix_socket = "/var/run/docker.sock";
  // The same text the hub's own keys came from, so key paths and lines are the file's.
  LLMBOX_ASSIGN_OR_RETURN(common::ConfigDocument doc,
                          common::ParseConfigText(config.source.text, config.source.name));
  common::ConfigMap root = doc.Root();
  LLMBOX_ASSIGN_OR_RETURN(std::optional<common::ConfigMap> section, root.Map("local_spoke"));
  if (section) {
    bool enabled = true;  // the hub's key (HubConfig::local_spoke); read so Finish knows it
    LLMBOX_RETURN_IF_ERROR(section->Bool("enabled", &enabled));
    LLMBOX_RETURN_IF_ERROR(
        spoke::config::ReadBoxHostSections(*section, config.source.base_dir, &spoke));
    LLMBOX_RETURN_IF_ERROR(section->Finish());
  }
  spoke.name = "local";
  spoke.state_dir = config.state_dir + "/local-spoke";
  spoke.boxes.spoke_name = "local";
  spoke.boxes.state_dir = spoke.state_dir;
  return spoke;
}

InProcessSpoke::~InProcessSpoke() {
  if (reaper_) reaper_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

absl::StatusOr<std::unique_ptr<InProcessSpoke>> StartLocalSpoke(
    const spoke::config::SpokeConfig& config) {
  std::unique_ptr<InProcessSpoke> local(new InProcessSpoke());
  LLMBOX_RETURN_IF_ERROR(server::EnsureStateDir(config.state_dir));
  LLMBOX_ASSIGN_OR_RETURN(local->engine_, spoke::docker::CurlDockerEngine::Create(config.docker));
  LLMBOX_ASSIGN_OR_RETURN(auto info, local->engine_->Ping());
  spdlog::info("local spoke: Docker engine {} (API {}) at {}", info.server_version,
               info.api_version, info.endpoint);
  local->subprocesses_ = std::make_unique<common::PosixSubprocessRunner>();
  local->hooks_ = std::make_unique<spoke::hooks::HookRunner>(*local->subprocesses_, config.hooks);
  local->boxes_ =
      std::make_unique<spoke::box::BoxManager>(*local->engine_, config.boxes, local->hooks_.get());
  LLMBOX_RETURN_IF_ERROR(local->boxes_->Recover());
  local->reaper_ = std::make_unique<spoke::reaper::Reaper>(
      *local->boxes_, *local->engine_, common::SystemClock::Get(), config.reaper);
  local->service_ = std::make_unique<spoke::service::BoxServiceImpl>(
      *local->boxes_, *local->engine_,
      spoke::service::BoxServiceOptions{.spoke_name = "local",
                                        .allowed_peer = "",
                                        .boxes = config.boxes,
                                        .auth_ttl = config.reaper.auth_ttl});
  grpc::ServerBuilder builder;
  builder.RegisterService(local->service_.get());
  builder.SetMaxReceiveMessageSize(4 << 20);
  local->server_ = builder.BuildAndStart();
  if (local->server_ == nullptr) return absl::InternalError("the in-process spoke did not start");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  local->channel_ = local->server_->InProcessChannel(args);
  local->reaper_->Start();
  return local;
}

server::LocalSpokeFactory LocalSpokeFactory(spoke::config::SpokeConfig config) {
  return [config = std::move(config)]() -> absl::StatusOr<std::unique_ptr<server::LocalSpoke>> {
    LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<InProcessSpoke> spoke, StartLocalSpoke(config));
    return spoke;
  };
}

}  // namespace llmbox::hub::local
