// spoke/metrics/metered_engine.h
//
// A DockerEngine that counts and times every call of the engine it wraps
// (llmbox_spoke_engine_calls_total, llmbox_spoke_engine_call_duration_seconds). The spoke's
// node puts it between its parts and the real engine.
//
//   MeteredEngine engine(curl_engine, metrics, clock);
//   box::BoxManager boxes(engine, ...);
//
// Does not own the target or the metrics, which must outlive it. Thread-safe as the target is.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/clock.h"
#include "spoke/docker/engine_wrapper.h"
#include "spoke/metrics/spoke_metrics.h"

namespace llmbox::spoke::metrics {

class MeteredEngine final : public docker::DockerEngineWrapper {
 public:
  MeteredEngine(docker::DockerEngine& target, SpokeMetrics& metrics, common::Clock& clock)
      : DockerEngineWrapper(target), metrics_(metrics), clock_(clock) {}

  // The operation label's values: each call's name in snake case ("create_container").
  static const std::vector<std::string>& Operations();

  [[nodiscard]] absl::StatusOr<docker::EngineInfo> Ping() override {
    return Timed("ping", [&] { return target().Ping(); });
  }
  [[nodiscard]] absl::StatusOr<docker::ImageInfo> InspectImage(const std::string& ref) override {
    return Timed("inspect_image", [&] { return target().InspectImage(ref); });
  }
  [[nodiscard]] absl::Status PullImage(const std::string& ref) override {
    return Timed("pull_image", [&] { return target().PullImage(ref); });
  }
  [[nodiscard]] absl::StatusOr<std::string> CreateContainer(
      const docker::ContainerSpec& spec) override {
    return Timed("create_container", [&] { return target().CreateContainer(spec); });
  }
  [[nodiscard]] absl::Status StartContainer(const std::string& id) override {
    return Timed("start_container", [&] { return target().StartContainer(id); });
  }
  [[nodiscard]] absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                                      std::chrono::milliseconds timeout) override {
    return Timed("wait_container", [&] { return target().WaitContainer(id, timeout); });
  }
  [[nodiscard]] absl::Status StopContainer(const std::string& id,
                                           std::chrono::seconds grace) override {
    return Timed("stop_container", [&] { return target().StopContainer(id, grace); });
  }
  [[nodiscard]] absl::Status KillContainer(const std::string& id,
                                           std::string_view signal) override {
    return Timed("kill_container", [&] { return target().KillContainer(id, signal); });
  }
  [[nodiscard]] absl::Status RemoveContainer(const std::string& id, bool force) override {
    return Timed("remove_container", [&] { return target().RemoveContainer(id, force); });
  }
  [[nodiscard]] absl::StatusOr<docker::ContainerInfo> InspectContainer(
      const std::string& id) override {
    return Timed("inspect_container", [&] { return target().InspectContainer(id); });
  }
  [[nodiscard]] absl::StatusOr<std::vector<docker::ContainerInfo>> ListContainers(
      const docker::Labels& labels) override {
    return Timed("list_containers", [&] { return target().ListContainers(labels); });
  }
  [[nodiscard]] absl::Status RenameContainer(const std::string& id,
                                             const std::string& new_name) override {
    return Timed("rename_container", [&] { return target().RenameContainer(id, new_name); });
  }
  [[nodiscard]] absl::Status ResizeTty(const std::string& id, int rows, int cols) override {
    return Timed("resize_tty", [&] { return target().ResizeTty(id, rows, cols); });
  }
  [[nodiscard]] absl::StatusOr<std::unique_ptr<docker::AttachStream>> Attach(const std::string& id,
                                                                             bool with_stdin,
                                                                             bool tty) override {
    return Timed("attach", [&] { return target().Attach(id, with_stdin, tty); });
  }
  [[nodiscard]] absl::StatusOr<docker::LogsResult> Logs(
      const std::string& id, const docker::LogsRequest& request) override {
    return Timed("logs", [&] { return target().Logs(id, request); });
  }
  [[nodiscard]] absl::StatusOr<docker::ExecResult> Exec(const std::string& id,
                                                        const docker::ExecSpec& spec) override {
    return Timed("exec", [&] { return target().Exec(id, spec); });
  }
  [[nodiscard]] absl::Status PutArchive(const std::string& id, const std::string& path,
                                        std::string_view tar) override {
    return Timed("put_archive", [&] { return target().PutArchive(id, path, tar); });
  }
  [[nodiscard]] absl::StatusOr<std::string> CreateNetwork(
      const docker::NetworkSpec& spec) override {
    return Timed("create_network", [&] { return target().CreateNetwork(spec); });
  }
  [[nodiscard]] absl::Status ConnectNetwork(const std::string& network,
                                            const std::string& container,
                                            const std::vector<std::string>& aliases) override {
    return Timed("connect_network",
                 [&] { return target().ConnectNetwork(network, container, aliases); });
  }
  [[nodiscard]] absl::Status DisconnectNetwork(const std::string& network,
                                               const std::string& container, bool force) override {
    return Timed("disconnect_network",
                 [&] { return target().DisconnectNetwork(network, container, force); });
  }
  [[nodiscard]] absl::Status RemoveNetwork(const std::string& network) override {
    return Timed("remove_network", [&] { return target().RemoveNetwork(network); });
  }
  [[nodiscard]] absl::StatusOr<std::vector<docker::NetworkInfo>> ListNetworks(
      const docker::Labels& labels) override {
    return Timed("list_networks", [&] { return target().ListNetworks(labels); });
  }
  [[nodiscard]] absl::StatusOr<docker::NetworkDetails> InspectNetwork(
      const std::string& name_or_id) override {
    return Timed("inspect_network", [&] { return target().InspectNetwork(name_or_id); });
  }

 private:
  static const absl::Status& StatusOf(const absl::Status& status) { return status; }
  template <typename T>
  static const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
    return result.status();
  }
  template <typename Call>
  std::invoke_result_t<Call> Timed(std::string_view operation, Call call) {
    const common::Clock::SteadyTime start = clock_.SteadyNow();
    auto result = call();
    metrics_.RecordEngineCall(operation, StatusOf(result), clock_.SteadyNow() - start);
    return result;
  }

  SpokeMetrics& metrics_;
  common::Clock& clock_;
};

}  // namespace llmbox::spoke::metrics
