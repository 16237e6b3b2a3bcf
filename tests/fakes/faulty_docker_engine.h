// tests/fakes/faulty_docker_engine.h
//
// Wraps a DockerEngine (the rig's real one, or a FakeDockerEngine) and fails one chosen step,
// to prove that a failure at that step leaves nothing behind.
//
//   FaultyDockerEngine faulty(engine);
//   faulty.FailAt("StartContainer");           // its next call returns Unavailable
//   auto created = manager_over(faulty).Create(...);   // fails at "starting it"
//   faulty.FailAt("RemoveNetwork", absl::InternalError("boom"));   // a chosen error
//
// Every DockerEngine method can be failed, by its name. Thread-safe.
#pragma once

#include <mutex>
#include <string>

#include "spoke/docker/engine_wrapper.h"

namespace llmbox::testing {

class FaultyDockerEngine : public spoke::docker::DockerEngineWrapper {
 public:
  using DockerEngineWrapper::DockerEngineWrapper;

  // The next call of `method` (its name in DockerEngine) fails with `error`, by default
  // Unavailable "injected fault in <method>". One fault at a time: a later FailAt replaces it.
  void FailAt(std::string method, absl::Status error = absl::OkStatus());
  // True while the fault set by FailAt has not been hit yet.
  bool Armed();

  [[nodiscard]] absl::StatusOr<spoke::docker::EngineInfo> Ping() override;
  [[nodiscard]] absl::StatusOr<spoke::docker::ImageInfo> InspectImage(
      const std::string& ref) override;
  [[nodiscard]] absl::Status PullImage(const std::string& ref) override;
  [[nodiscard]] absl::StatusOr<std::string> CreateContainer(
      const spoke::docker::ContainerSpec& spec) override;
  [[nodiscard]] absl::Status StartContainer(const std::string& id) override;
  [[nodiscard]] absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                                      std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::Status StopContainer(const std::string& id,
                                           std::chrono::seconds grace) override;
  [[nodiscard]] absl::Status KillContainer(const std::string& id, std::string_view signal) override;
  [[nodiscard]] absl::Status RemoveContainer(const std::string& id, bool force) override;
  [[nodiscard]] absl::StatusOr<spoke::docker::ContainerInfo> InspectContainer(
      const std::string& id) override;
  [[nodiscard]] absl::StatusOr<std::vector<spoke::docker::ContainerInfo>> ListContainers(
      const spoke::docker::Labels& labels) override;
  [[nodiscard]] absl::Status RenameContainer(const std::string& id,
                                             const std::string& new_name) override;
  [[nodiscard]] absl::Status ResizeTty(const std::string& id, int rows, int cols) override;
  [[nodiscard]] absl::StatusOr<std::unique_ptr<spoke::docker::AttachStream>> Attach(
      const std::string& id, bool with_stdin, bool tty) override;
  [[nodiscard]] absl::StatusOr<spoke::docker::LogsResult> Logs(
      const std::string& id, const spoke::docker::LogsRequest& request) override;
  [[nodiscard]] absl::StatusOr<spoke::docker::ExecResult> Exec(
      const std::string& id, const spoke::docker::ExecSpec& spec) override;
  [[nodiscard]] absl::Status PutArchive(const std::string& id, const std::string& path,
                                        std::string_view tar) override;
  [[nodiscard]] absl::StatusOr<std::string> CreateNetwork(
      const spoke::docker::NetworkSpec& spec) override;
  [[nodiscard]] absl::Status ConnectNetwork(const std::string& network,
                                            const std::string& container,
                                            const std::vector<std::string>& aliases) override;
  [[nodiscard]] absl::Status DisconnectNetwork(const std::string& network,
                                               const std::string& container, bool force) override;
  [[nodiscard]] absl::Status RemoveNetwork(const std::string& network) override;
  [[nodiscard]] absl::StatusOr<std::vector<spoke::docker::NetworkInfo>> ListNetworks(
      const spoke::docker::Labels& labels) override;
  [[nodiscard]] absl::StatusOr<spoke::docker::NetworkDetails> InspectNetwork(
      const std::string& name_or_id) override;

 private:
  // The error to return (once) when `method` is the one to fail; OK otherwise.
  [[nodiscard]] absl::Status Trip(const char* method);

  std::mutex mu_;
  std::string fail_at_;
  absl::Status error_;
};

}  // namespace llmbox::testing
