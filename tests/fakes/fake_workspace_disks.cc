#include "tests/fakes/fake_workspace_disks.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace llmbox::testing {

absl::Status FakeWorkspaceDisks::FaultLocked(const std::string& method) {
  if (fail_method_ != method) return absl::OkStatus();
  fail_method_.clear();
  return fail_error_;
}

void FakeWorkspaceDisks::FailAt(std::string method, absl::Status error) {
  std::lock_guard lock(mu_);
  fail_method_ = std::move(method);
  fail_error_ = std::move(error);
}

absl::Status FakeWorkspaceDisks::Check() {
  std::lock_guard lock(mu_);
  calls_.push_back("Check");
  return FaultLocked("Check");
}

absl::StatusOr<std::string> FakeWorkspaceDisks::Make(const std::string& box_id, int64_t bytes) {
  std::lock_guard lock(mu_);
  calls_.push_back("Make " + box_id);
  if (absl::Status st = FaultLocked("Make"); !st.ok()) return st;
  if (disks_.count(box_id) != 0) return absl::AlreadyExistsError(box_id + ".img exists");
  Disk& disk = disks_[box_id];
  disk.device = absl::StrCat("/dev/loop", next_device_++);
  disk.bytes = bytes;
  return disk.device;
}

absl::Status FakeWorkspaceDisks::Remove(const std::string& box_id) {
  std::lock_guard lock(mu_);
  calls_.push_back("Remove " + box_id);
  if (absl::Status st = FaultLocked("Remove"); !st.ok()) return st;
  disks_.erase(box_id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakeWorkspaceDisks::List() {
  std::lock_guard lock(mu_);
  calls_.push_back("List");
  if (absl::Status st = FaultLocked("List"); !st.ok()) return st;
  std::vector<std::string> ids;
  for (const auto& [id, disk] : disks_) ids.push_back(id);
  return ids;
}

std::map<std::string, FakeWorkspaceDisks::Disk> FakeWorkspaceDisks::Disks() {
  std::lock_guard lock(mu_);
  return disks_;
}

std::vector<std::string> FakeWorkspaceDisks::Calls() {
  std::lock_guard lock(mu_);
  return calls_;
}

}  // namespace llmbox::testing
