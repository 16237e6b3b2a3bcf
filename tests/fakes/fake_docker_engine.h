// tests/fakes/fake_docker_engine.h
//
// An in-memory DockerEngine for unit tests of what sits on top of the engine (BoxManager, the
// reaper). It keeps images, containers and networks, and does what a box's life needs:
// create (recording the spec), start, attach (a ScriptedConsole replaying the real Claude
// binary's recorded output, and answering codes written to stdin), inspect, list by labels,
// rename, stop/kill/remove, logs (the console's history), file injection (archives are
// recorded), exec (a scripted result) and networks. Every call is recorded by name, in
// order. Faults: wrap it in FaultyDockerEngine.
//
//   FakeClock clock;
//   FakeDockerEngine engine(clock);
//   engine.AddImage("llmbox-box:dev");
//   BoxManager boxes(engine, clock, options);
//   auto created = boxes.Create({.box_id = "b1"});   // the recording's authorize URL
//   auto outcome = boxes.SubmitCode("b1", "good-code#state");
//
// Tests may also put containers and networks in directly (AddContainer, AddNetwork); such a
// container's console prints nothing.
//
// Errors are the engine's own words for the same faults: "No such container: <id>",
// "No such image: <ref>", a name conflict (AlreadyExists), removing a running container
// without force (FailedPrecondition).
//
// Thread-safe. Console reads wait on the clock given (a FakeClock in unit tests).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "spoke/docker/engine.h"
#include "tests/fakes/scripted_console.h"

namespace llmbox::testing {

class FakeDockerEngine final : public spoke::docker::DockerEngine {
 public:
  // Consoles wait on the system clock.
  FakeDockerEngine();
  explicit FakeDockerEngine(common::Clock& clock);

  void AddContainer(spoke::docker::ContainerInfo info);
  void AddNetwork(spoke::docker::NetworkInfo info);
  std::vector<std::string> ContainerIds();
  std::vector<std::string> NetworkNames();
  // Whether the network was created `internal` (false for one put in with AddNetwork).
  bool NetworkIsInternal(const std::string& name);

  // An image the engine has.
  void AddImage(const std::string& ref);
  // An image a pull can fetch (a pull of any other fails with NotFound).
  void AddPullableImage(const std::string& ref);
  bool HasImage(const std::string& ref);
  // The console script for containers created from now on.
  void SetConsoleScript(ConsoleScript script);
  // What Exec returns from now on (default: exit code 0, no output).
  void SetExecResult(spoke::docker::ExecResult result);

  // By container id or name; nullopt / nullptr when there is no such container.
  std::optional<spoke::docker::ContainerSpec> SpecOf(const std::string& container);
  std::shared_ptr<ScriptedConsole> ConsoleOf(const std::string& container);
  // The tar archives injected into a container, in order, with the path each went to.
  struct Archive {
    std::string path;
    std::string tar;
  };
  std::vector<Archive> ArchivesOf(const std::string& container);
  std::vector<spoke::docker::ExecSpec> ExecsOf(const std::string& container);
  // Drops the console output so far from what Logs returns, as a rotated log would.
  void RotateLogs(const std::string& container);
  // The DockerEngine methods called so far, by name, in order.
  std::vector<std::string> Calls();

  [[nodiscard]] absl::StatusOr<spoke::docker::EngineInfo> Ping() override;
  [[nodiscard]] absl::StatusOr<spoke::docker::ImageInfo> InspectImage(
      const std::string& ref) override;
  [[nodiscard]] absl::Status PullImage(const std::string& ref) override;
  // Reads the archive to its end and "loads" the images SetLoadResult named (none by default).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> LoadImage(
      spoke::docker::ImageArchive& source,
      const std::function<void(uint64_t sent)>& progress) override;
  // What the next LoadImage loads: these refs become images the engine has.
  void SetLoadResult(std::vector<std::string> refs);
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
  // The network's made-up addresses: 10.250.<n>.1 on 10.250.<n>.0/24 with n from a hash of
  // its id, bridge "br-" + the first 12 characters of its id; never internal.
  [[nodiscard]] absl::StatusOr<spoke::docker::NetworkDetails> InspectNetwork(
      const std::string& name_or_id) override;

 private:
  struct Container {
    spoke::docker::ContainerInfo info;
    std::optional<spoke::docker::ContainerSpec> spec;  // when created through the engine
    std::shared_ptr<ScriptedConsole> console;
    std::vector<Archive> archives;
    std::vector<spoke::docker::ExecSpec> execs;
    size_t logs_from = 0;  // console history before this offset is rotated away
  };
  // With mu_ held: the container with this id or name, or nullptr.
  Container* FindLocked(const std::string& container);
  void RecordLocked(const char* call) { calls_.push_back(call); }
  // Stops it (its console ends).
  void StopLocked(Container& container, int64_t exit_code);

  common::Clock& clock_;
  std::mutex mu_;
  std::condition_variable stopped_;  // a container stopped
  std::set<std::string> images_;
  std::set<std::string> pullable_;
  std::vector<std::string> load_result_;
  ConsoleScript script_;
  spoke::docker::ExecResult exec_result_{.exit_code = 0};
  int next_id_ = 1;
  std::map<std::string, Container> containers_;                 // by id
  std::map<std::string, spoke::docker::NetworkInfo> networks_;  // by name
  std::map<std::string, bool> network_internal_;                // by name
  std::vector<std::string> calls_;
};

}  // namespace llmbox::testing
