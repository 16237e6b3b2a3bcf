#include "tests/fakes/faulty_docker_engine.h"

#include "absl/strings/str_cat.h"

namespace llmbox::testing {

using namespace spoke::docker;

void FaultyDockerEngine::FailAt(std::string method, absl::Status error) {
  std::lock_guard lock(mu_);
  if (error.ok()) error = absl::UnavailableError(absl::StrCat("injected fault in ", method));
  fail_at_ = std::move(method);
  error_ = std::move(error);
}

bool FaultyDockerEngine::Armed() {
  std::lock_guard lock(mu_);
  return !fail_at_.empty();
}

absl::Status FaultyDockerEngine::Trip(const char* method) {
  std::lock_guard lock(mu_);
  if (fail_at_ != method) return absl::OkStatus();
  fail_at_.clear();
  return error_;
}

absl::StatusOr<EngineInfo> FaultyDockerEngine::Ping() {
  if (auto st = Trip("Ping"); !st.ok()) return st;
  return DockerEngineWrapper::Ping();
}

absl::StatusOr<ImageInfo> FaultyDockerEngine::InspectImage(const std::string& ref) {
  if (auto st = Trip("InspectImage"); !st.ok()) return st;
  return DockerEngineWrapper::InspectImage(ref);
}

absl::Status FaultyDockerEngine::PullImage(const std::string& ref) {
  if (auto st = Trip("PullImage"); !st.ok()) return st;
  return DockerEngineWrapper::PullImage(ref);
}

absl::StatusOr<std::string> FaultyDockerEngine::CreateContainer(const ContainerSpec& spec) {
  if (auto st = Trip("CreateContainer"); !st.ok()) return st;
  return DockerEngineWrapper::CreateContainer(spec);
}

absl::Status FaultyDockerEngine::StartContainer(const std::string& id) {
  if (auto st = Trip("StartContainer"); !st.ok()) return st;
  return DockerEngineWrapper::StartContainer(id);
}

absl::StatusOr<int64_t> FaultyDockerEngine::WaitContainer(const std::string& id,
                                                          std::chrono::milliseconds timeout) {
  if (auto st = Trip("WaitContainer"); !st.ok()) return st;
  return DockerEngineWrapper::WaitContainer(id, timeout);
}

absl::Status FaultyDockerEngine::StopContainer(const std::string& id, std::chrono::seconds grace) {
  if (auto st = Trip("StopContainer"); !st.ok()) return st;
  return DockerEngineWrapper::StopContainer(id, grace);
}

absl::Status FaultyDockerEngine::KillContainer(const std::string& id, std::string_view signal) {
  if (auto st = Trip("KillContainer"); !st.ok()) return st;
  return DockerEngineWrapper::KillContainer(id, signal);
}

absl::Status FaultyDockerEngine::RemoveContainer(const std::string& id, bool force) {
  if (auto st = Trip("RemoveContainer"); !st.ok()) return st;
  return DockerEngineWrapper::RemoveContainer(id, force);
}

absl::StatusOr<ContainerInfo> FaultyDockerEngine::InspectContainer(const std::string& id) {
  if (auto st = Trip("InspectContainer"); !st.ok()) return st;
  return DockerEngineWrapper::InspectContainer(id);
}

absl::StatusOr<std::vector<ContainerInfo>> FaultyDockerEngine::ListContainers(
    const Labels& labels) {
  if (auto st = Trip("ListContainers"); !st.ok()) return st;
  return DockerEngineWrapper::ListContainers(labels);
}

absl::Status FaultyDockerEngine::RenameContainer(const std::string& id,
                                                 const std::string& new_name) {
  if (auto st = Trip("RenameContainer"); !st.ok()) return st;
  return DockerEngineWrapper::RenameContainer(id, new_name);
}

absl::Status FaultyDockerEngine::ResizeTty(const std::string& id, int rows, int cols) {
  if (auto st = Trip("ResizeTty"); !st.ok()) return st;
  return DockerEngineWrapper::ResizeTty(id, rows, cols);
}

absl::StatusOr<std::unique_ptr<AttachStream>> FaultyDockerEngine::Attach(const std::string& id,
                                                                         bool with_stdin,
                                                                         bool tty) {
  if (auto st = Trip("Attach"); !st.ok()) return st;
  return DockerEngineWrapper::Attach(id, with_stdin, tty);
}

absl::StatusOr<LogsResult> FaultyDockerEngine::Logs(const std::string& id,
                                                    const LogsRequest& request) {
  if (auto st = Trip("Logs"); !st.ok()) return st;
  return DockerEngineWrapper::Logs(id, request);
}

absl::StatusOr<ExecResult> FaultyDockerEngine::Exec(const std::string& id, const ExecSpec& spec) {
  if (auto st = Trip("Exec"); !st.ok()) return st;
  return DockerEngineWrapper::Exec(id, spec);
}

absl::Status FaultyDockerEngine::PutArchive(const std::string& id, const std::string& path,
                                            std::string_view tar) {
  if (auto st = Trip("PutArchive"); !st.ok()) return st;
  return DockerEngineWrapper::PutArchive(id, path, tar);
}

absl::StatusOr<std::string> FaultyDockerEngine::CreateNetwork(const NetworkSpec& spec) {
  if (auto st = Trip("CreateNetwork"); !st.ok()) return st;
  return DockerEngineWrapper::CreateNetwork(spec);
}

absl::Status FaultyDockerEngine::ConnectNetwork(const std::string& network,
                                                const std::string& container,
                                                const std::vector<std::string>& aliases) {
  if (auto st = Trip("ConnectNetwork"); !st.ok()) return st;
  return DockerEngineWrapper::ConnectNetwork(network, container, aliases);
}

absl::Status FaultyDockerEngine::DisconnectNetwork(const std::string& network,
                                                   const std::string& container, bool force) {
  if (auto st = Trip("DisconnectNetwork"); !st.ok()) return st;
  return DockerEngineWrapper::DisconnectNetwork(network, container, force);
}

absl::Status FaultyDockerEngine::RemoveNetwork(const std::string& network) {
  if (auto st = Trip("RemoveNetwork"); !st.ok()) return st;
  return DockerEngineWrapper::RemoveNetwork(network);
}

absl::StatusOr<spoke::docker::NetworkDetails> FaultyDockerEngine::InspectNetwork(
    const std::string& name_or_id) {
  if (auto st = Trip("InspectNetwork"); !st.ok()) return st;
  return DockerEngineWrapper::InspectNetwork(name_or_id);
}

absl::StatusOr<std::vector<NetworkInfo>> FaultyDockerEngine::ListNetworks(const Labels& labels) {
  if (auto st = Trip("ListNetworks"); !st.ok()) return st;
  return DockerEngineWrapper::ListNetworks(labels);
}

}  // namespace llmbox::testing
