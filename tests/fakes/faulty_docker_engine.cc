#include "tests/fakes/faulty_docker_engine.h"

#include "absl/strings/str_cat.h"

namespace llmbox::testing {

using namespace spoke::docker;

void FaultyDockerEngine::FailAt(std::string method) {
  std::lock_guard lock(mu_);
  fail_at_ = std::move(method);
}

bool FaultyDockerEngine::Trip(const char* method) {
  std::lock_guard lock(mu_);
  if (fail_at_ != method) return false;
  fail_at_.clear();
  return true;
}

absl::Status FaultyDockerEngine::Fault(const char* method) const {
  return absl::UnavailableError(absl::StrCat("injected fault in ", method));
}

absl::StatusOr<std::string> FaultyDockerEngine::CreateNetwork(const NetworkSpec& spec) {
  if (Trip("CreateNetwork")) return Fault("CreateNetwork");
  return DockerEngineWrapper::CreateNetwork(spec);
}

absl::StatusOr<std::string> FaultyDockerEngine::CreateContainer(const ContainerSpec& spec) {
  if (Trip("CreateContainer")) return Fault("CreateContainer");
  return DockerEngineWrapper::CreateContainer(spec);
}

absl::Status FaultyDockerEngine::ConnectNetwork(const std::string& network,
                                                const std::string& container,
                                                const std::vector<std::string>& aliases) {
  if (Trip("ConnectNetwork")) return Fault("ConnectNetwork");
  return DockerEngineWrapper::ConnectNetwork(network, container, aliases);
}

absl::Status FaultyDockerEngine::PutArchive(const std::string& id, const std::string& path,
                                            std::string_view tar) {
  if (Trip("PutArchive")) return Fault("PutArchive");
  return DockerEngineWrapper::PutArchive(id, path, tar);
}

absl::StatusOr<std::unique_ptr<AttachStream>> FaultyDockerEngine::Attach(const std::string& id,
                                                                         bool with_stdin,
                                                                         bool tty) {
  if (Trip("Attach")) return Fault("Attach");
  return DockerEngineWrapper::Attach(id, with_stdin, tty);
}

absl::Status FaultyDockerEngine::StartContainer(const std::string& id) {
  if (Trip("StartContainer")) return Fault("StartContainer");
  return DockerEngineWrapper::StartContainer(id);
}

absl::StatusOr<ContainerInfo> FaultyDockerEngine::InspectContainer(const std::string& id) {
  if (Trip("InspectContainer")) return Fault("InspectContainer");
  return DockerEngineWrapper::InspectContainer(id);
}

}  // namespace llmbox::testing
