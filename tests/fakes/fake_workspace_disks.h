// tests/fakes/fake_workspace_disks.h
//
// WorkspaceDisks in memory: Make hands out "/dev/loop<N>" names, Remove forgets them, and a
// chosen call can fail once. Records every call. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "spoke/box/workspace_disks.h"

namespace llmbox::testing {

class FakeWorkspaceDisks final : public spoke::box::WorkspaceDisks {
 public:
  [[nodiscard]] absl::Status Check() override;
  [[nodiscard]] absl::StatusOr<std::string> Make(const std::string& box_id, int64_t bytes) override;
  [[nodiscard]] absl::Status Remove(const std::string& box_id) override;
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List() override;

  // The next call of `method` ("Check", "Make", "Remove", "List") fails with `error`.
  void FailAt(std::string method, absl::Status error);
  // Box id -> {device, bytes} of the disks that exist.
  struct Disk {
    std::string device;
    int64_t bytes = 0;
  };
  std::map<std::string, Disk> Disks();
  // "Make b1", "Remove b1", ... in order.
  std::vector<std::string> Calls();

 private:
  absl::Status FaultLocked(const std::string& method);

  std::mutex mu_;
  std::map<std::string, Disk> disks_;
  std::vector<std::string> calls_;
  std::string fail_method_;
  absl::Status fail_error_;
  int next_device_ = 0;
};

}  // namespace llmbox::testing
