// spoke/docker/engine_wrapper.h
//
// A DockerEngine that forwards every call to another one. Derive from it and override only
// what you need: fault injection in tests, call counting, tracing.
//
//   class FailOnStart : public DockerEngineWrapper {
//    public:
//     using DockerEngineWrapper::DockerEngineWrapper;
//     absl::Status StartContainer(const std::string&) override {
//       return absl::UnavailableError("injected");
//     }
//   };
//
// Does not own the target; the target must outlive the wrapper. Thread-safe as the target is.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "spoke/docker/engine.h"

namespace llmbox::spoke::docker {

class DockerEngineWrapper : public DockerEngine {
 public:
  explicit DockerEngineWrapper(DockerEngine& target) : target_(target) {}

  [[nodiscard]] absl::StatusOr<EngineInfo> Ping() override { return target_.Ping(); }
  [[nodiscard]] absl::StatusOr<ImageInfo> InspectImage(const std::string& ref) override {
    return target_.InspectImage(ref);
  }
  [[nodiscard]] absl::Status PullImage(const std::string& ref) override {
    return target_.PullImage(ref);
  }
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> LoadImage(
      ImageArchive& source, const std::function<void(uint64_t sent)>& progress) override {
    return target_.LoadImage(source, progress);
  }
  [[nodiscard]] absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec) override {
    return target_.CreateContainer(spec);
  }
  [[nodiscard]] absl::Status StartContainer(const std::string& id) override {
    return target_.StartContainer(id);
  }
  [[nodiscard]] absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                                      std::chrono::milliseconds timeout) override {
    return target_.WaitContainer(id, timeout);
  }
  [[nodiscard]] absl::Status StopContainer(const std::string& id,
                                           std::chrono::seconds grace) override {
    return target_.StopContainer(id, grace);
  }
  [[nodiscard]] absl::Status KillContainer(const std::string& id,
                                           std::string_view signal) override {
    return target_.KillContainer(id, signal);
  }
  [[nodiscard]] absl::Status RemoveContainer(const std::string& id, bool force) override {
    return target_.RemoveContainer(id, force);
  }
  [[nodiscard]] absl::StatusOr<ContainerInfo> InspectContainer(const std::string& id) override {
    return target_.InspectContainer(id);
  }
  [[nodiscard]] absl::StatusOr<std::vector<ContainerInfo>> ListContainers(
      const Labels& labels) override {
    return target_.ListContainers(labels);
  }
  [[nodiscard]] absl::Status RenameContainer(const std::string& id,
                                             const std::string& new_name) override {
    return target_.RenameContainer(id, new_name);
  }
  [[nodiscard]] absl::Status ResizeTty(const std::string& id, int rows, int cols) override {
    return target_.ResizeTty(id, rows, cols);
  }
  [[nodiscard]] absl::StatusOr<std::unique_ptr<AttachStream>> Attach(const std::string& id,
                                                                     bool with_stdin,
                                                                     bool tty) override {
    return target_.Attach(id, with_stdin, tty);
  }
  [[nodiscard]] absl::StatusOr<LogsResult> Logs(const std::string& id,
                                                const LogsRequest& request) override {
    return target_.Logs(id, request);
  }
  [[nodiscard]] absl::StatusOr<ExecResult> Exec(const std::string& id,
                                                const ExecSpec& spec) override {
    return target_.Exec(id, spec);
  }
  [[nodiscard]] absl::Status PutArchive(const std::string& id, const std::string& path,
                                        std::string_view tar) override {
    return target_.PutArchive(id, path, tar);
  }
  [[nodiscard]] absl::StatusOr<std::string> CreateNetwork(const NetworkSpec& spec) override {
    return target_.CreateNetwork(spec);
  }
  [[nodiscard]] absl::Status ConnectNetwork(const std::string& network,
                                            const std::string& container,
                                            const std::vector<std::string>& aliases) override {
    return target_.ConnectNetwork(network, container, aliases);
  }
  [[nodiscard]] absl::Status DisconnectNetwork(const std::string& network,
                                               const std::string& container, bool force) override {
    return target_.DisconnectNetwork(network, container, force);
  }
  [[nodiscard]] absl::Status RemoveNetwork(const std::string& network) override {
    return target_.RemoveNetwork(network);
  }
  [[nodiscard]] absl::StatusOr<std::vector<NetworkInfo>> ListNetworks(
      const Labels& labels) override {
    return target_.ListNetworks(labels);
  }
  [[nodiscard]] absl::StatusOr<NetworkDetails> InspectNetwork(
      const std::string& name_or_id) override {
    return target_.InspectNetwork(name_or_id);
  }

 protected:
  DockerEngine& target() { return target_; }

 private:
  DockerEngine& target_;
};

}  // namespace llmbox::spoke::docker
