// tests/fakes/faulty_docker_engine.h
//
// Wraps a real DockerEngine and fails one chosen step, to prove that a failure at that step
// leaves nothing behind.
//
//   FaultyDockerEngine faulty(real);
//   faulty.FailAt("StartContainer");           // its next call returns Unavailable
//   auto created = manager_over(faulty).Create(...);   // fails at "starting it"
#pragma once

#include <mutex>
#include <string>

#include "spoke/docker/engine_wrapper.h"

namespace llmbox::testing {

class FaultyDockerEngine : public spoke::docker::DockerEngineWrapper {
 public:
  using DockerEngineWrapper::DockerEngineWrapper;

  // The next call of `method` (its name in DockerEngine) fails with Unavailable
  // "injected fault in <method>".
  void FailAt(std::string method);

  absl::StatusOr<std::string> CreateNetwork(const spoke::docker::NetworkSpec& spec) override;
  absl::StatusOr<std::string> CreateContainer(const spoke::docker::ContainerSpec& spec) override;
  absl::Status ConnectNetwork(const std::string& network, const std::string& container,
                              const std::vector<std::string>& aliases) override;
  absl::Status PutArchive(const std::string& id, const std::string& path,
                          std::string_view tar) override;
  absl::StatusOr<std::unique_ptr<spoke::docker::AttachStream>> Attach(const std::string& id,
                                                                      bool with_stdin,
                                                                      bool tty) override;
  absl::Status StartContainer(const std::string& id) override;
  absl::StatusOr<spoke::docker::ContainerInfo> InspectContainer(const std::string& id) override;

 private:
  // True (once) when `method` is the one to fail.
  bool Trip(const char* method);
  absl::Status Fault(const char* method) const;

  std::mutex mu_;
  std::string fail_at_;
};

}  // namespace llmbox::testing
