#include "tests/fakes/fake_docker_engine.h"

#include "absl/strings/str_cat.h"

namespace llmbox::testing {

using namespace spoke::docker;

namespace {

absl::Status NotFaked(const char* what) {
  return absl::UnimplementedError(
      absl::StrCat("FakeDockerEngine does not do ", what, "; use the rig's engine"));
}

bool Matches(const Labels& have, const Labels& want) {
  for (const auto& [key, value] : want) {
    auto it = have.find(key);
    if (it == have.end() || (!value.empty() && it->second != value)) return false;
  }
  return true;
}

}  // namespace

void FakeDockerEngine::AddContainer(ContainerInfo info) {
  std::lock_guard lock(mu_);
  containers_[info.id] = std::move(info);
}

void FakeDockerEngine::AddNetwork(NetworkInfo info) {
  std::lock_guard lock(mu_);
  networks_[info.name] = std::move(info);
}

std::vector<std::string> FakeDockerEngine::ContainerIds() {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, info] : containers_) ids.push_back(id);
  return ids;
}

std::vector<std::string> FakeDockerEngine::NetworkNames() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, info] : networks_) names.push_back(name);
  return names;
}

absl::StatusOr<EngineInfo> FakeDockerEngine::Ping() { return EngineInfo{"1.41", "fake", "fake"}; }
absl::StatusOr<ImageInfo> FakeDockerEngine::InspectImage(const std::string&) {
  return NotFaked("images");
}
absl::Status FakeDockerEngine::PullImage(const std::string&) { return NotFaked("pulls"); }
absl::StatusOr<std::string> FakeDockerEngine::CreateContainer(const ContainerSpec&) {
  return NotFaked("container creation");
}
absl::Status FakeDockerEngine::StartContainer(const std::string&) { return NotFaked("start"); }
absl::StatusOr<int64_t> FakeDockerEngine::WaitContainer(const std::string&,
                                                        std::chrono::milliseconds) {
  return NotFaked("wait");
}

absl::Status FakeDockerEngine::StopContainer(const std::string& id, std::chrono::seconds) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError("No such container: " + id);
  it->second.running = false;
  it->second.state = "exited";
  return absl::OkStatus();
}

absl::Status FakeDockerEngine::KillContainer(const std::string& id, std::string_view) {
  return StopContainer(id, std::chrono::seconds(0));
}

absl::Status FakeDockerEngine::RemoveContainer(const std::string& id, bool) {
  std::lock_guard lock(mu_);
  if (containers_.erase(id) == 0) return absl::NotFoundError("No such container: " + id);
  return absl::OkStatus();
}

absl::StatusOr<ContainerInfo> FakeDockerEngine::InspectContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError("No such container: " + id);
  return it->second;
}

absl::StatusOr<std::vector<ContainerInfo>> FakeDockerEngine::ListContainers(const Labels& labels) {
  std::lock_guard lock(mu_);
  std::vector<ContainerInfo> out;
  for (const auto& [id, info] : containers_) {
    if (Matches(info.labels, labels)) out.push_back(info);
  }
  return out;
}

absl::Status FakeDockerEngine::RenameContainer(const std::string& id, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return absl::NotFoundError("No such container: " + id);
  it->second.name = name;
  return absl::OkStatus();
}

absl::Status FakeDockerEngine::ResizeTty(const std::string&, int, int) {
  return NotFaked("resize");
}
absl::StatusOr<std::unique_ptr<AttachStream>> FakeDockerEngine::Attach(const std::string&, bool,
                                                                       bool) {
  return NotFaked("attach");
}
absl::StatusOr<LogsResult> FakeDockerEngine::Logs(const std::string&, const LogsRequest&) {
  return LogsResult{};
}
absl::StatusOr<ExecResult> FakeDockerEngine::Exec(const std::string&, const ExecSpec&) {
  return NotFaked("exec");
}
absl::Status FakeDockerEngine::PutArchive(const std::string&, const std::string&,
                                          std::string_view) {
  return NotFaked("archives");
}

absl::StatusOr<std::string> FakeDockerEngine::CreateNetwork(const NetworkSpec& spec) {
  AddNetwork({spec.name, spec.name, spec.labels, {}});
  return spec.name;
}
absl::Status FakeDockerEngine::ConnectNetwork(const std::string&, const std::string&,
                                              const std::vector<std::string>&) {
  return NotFaked("network connect");
}
absl::Status FakeDockerEngine::DisconnectNetwork(const std::string&, const std::string&, bool) {
  return NotFaked("network disconnect");
}

absl::Status FakeDockerEngine::RemoveNetwork(const std::string& network) {
  std::lock_guard lock(mu_);
  for (auto it = networks_.begin(); it != networks_.end(); ++it) {
    if (it->first == network || it->second.id == network) {
      networks_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError("network " + network + " not found");
}

absl::StatusOr<std::vector<NetworkInfo>> FakeDockerEngine::ListNetworks(const Labels& labels) {
  std::lock_guard lock(mu_);
  std::vector<NetworkInfo> out;
  for (const auto& [name, info] : networks_) {
    if (Matches(info.labels, labels)) out.push_back(info);
  }
  return out;
}

}  // namespace llmbox::testing
