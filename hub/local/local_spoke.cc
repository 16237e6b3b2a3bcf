#include "hub/local/local_spoke.h"

#include <optional>
#include <utility>

#include "common/clock.h"
#include "common/config.h"
#include "common/status.h"

namespace llmbox::hub::local {

[[nodiscard]] absl::StatusOr<spoke::config::SpokeConfig> ReadLocalSpokeConfig(
    const config::HubConfig& config) {
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

[[nodiscard]] absl::StatusOr<std::unique_ptr<InProcessSpoke>> StartLocalSpoke(
    const spoke::config::SpokeConfig& config, common::Clock& clock) {
  LLMBOX_ASSIGN_OR_RETURN(
      std::unique_ptr<spoke::node::SpokeNode> node,
      spoke::node::SpokeNode::Start(config, {.transport = spoke::node::SpokeTransport::kInProcess},
                                    clock));
  return std::make_unique<InProcessSpoke>(std::move(node));
}

server::LocalSpokeFactory LocalSpokeFactory(spoke::config::SpokeConfig config,
                                            common::Clock& clock) {
  return [config = std::move(config),
          &clock]() -> absl::StatusOr<std::unique_ptr<server::LocalSpoke>> {
    LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<InProcessSpoke> spoke, StartLocalSpoke(config, clock));
    return spoke;
  };
}

}  // namespace llmbox::hub::local
