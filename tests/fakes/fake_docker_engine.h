// tests/fakes/fake_docker_engine.h
//
// An in-memory DockerEngine for fast unit tests of what sits on top of the engine (the
// reaper, phase bookkeeping). It holds containers and networks a test puts in, answers
// list/inspect/stop/remove for them, and refuses everything else with Unimplemented (use the
// rig's real engine for those).
//
//   FakeDockerEngine engine;
//   engine.AddContainer({.id = "c1", .name = "llmbox-pending-b1", .running = true, ...});
//   BoxManager boxes(engine, options);
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "spoke/docker/engine.h"

namespace llmbox::testing {

class FakeDockerEngine final : public spoke::docker::DockerEngine {
 public:
  void AddContainer(spoke::docker::ContainerInfo info);
  void AddNetwork(spoke::docker::NetworkInfo info);
  std::vector<std::string> ContainerIds();
  std::vector<std::string> NetworkNames();

  absl::StatusOr<spoke::docker::EngineInfo> Ping() override;
  absl::StatusOr<spoke::docker::ImageInfo> InspectImage(const std::string& ref) override;
  absl::Status PullImage(const std::string& ref) override;
  absl::StatusOr<std::string> CreateContainer(const spoke::docker::ContainerSpec& spec) override;
  absl::Status StartContainer(const std::string& id) override;
  absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                        std::chrono::milliseconds timeout) override;
  absl::Status StopContainer(const std::string& id, std::chrono::seconds grace) override;
  absl::Status KillContainer(const std::string& id, std::string_view signal) override;
  absl::Status RemoveContainer(const std::string& id, bool force) override;
  absl::StatusOr<spoke::docker::ContainerInfo> InspectContainer(const std::string& id) override;
  absl::StatusOr<std::vector<spoke::docker::ContainerInfo>> ListContainers(
      const spoke::docker::Labels& labels) override;
  absl::Status RenameContainer(const std::string& id, const std::string& new_name) override;
  absl::Status ResizeTty(const std::string& id, int rows, int cols) override;
  absl::StatusOr<std::unique_ptr<spoke::docker::AttachStream>> Attach(const std::string& id,
                                                                      bool with_stdin,
                                                                      bool tty) override;
  absl::StatusOr<spoke::docker::LogsResult> Logs(
      const std::string& id, const spoke::docker::LogsRequest& request) override;
  absl::StatusOr<spoke::docker::ExecResult> Exec(const std::string& id,
                                                 const spoke::docker::ExecSpec& spec) override;
  absl::Status PutArchive(const std::string& id, const std::string& path,
                          std::string_view tar) override;
  absl::StatusOr<std::string> CreateNetwork(const spoke::docker::NetworkSpec& spec) override;
  absl::Status ConnectNetwork(const std::string& network, const std::string& container,
                              const std::vector<std::string>& aliases) override;
  absl::Status DisconnectNetwork(const std::string& network, const std::string& container,
                                 bool force) override;
  absl::Status RemoveNetwork(const std::string& network) override;
  absl::StatusOr<std::vector<spoke::docker::NetworkInfo>> ListNetworks(
      const spoke::docker::Labels& labels) override;

 private:
  std::mutex mu_;
  std::map<std::string, spoke::docker::ContainerInfo> containers_;  // by id
  std::map<std::string, spoke::docker::NetworkInfo> networks_;      // by name
};

}  // namespace llmbox::testing
