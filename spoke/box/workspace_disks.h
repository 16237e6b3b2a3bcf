// spoke/box/workspace_disks.h
//
// A box's own bounded filesystem for /workspace (boxes.disk.workspace_type: loop): a sparse
// image file of the configured size under the spoke's state dir, formatted ext4 and attached
// to a loop device that the engine mounts as the workspace volume's device. Writes past the
// size get ENOSPC; unlike a tmpfs it holds no memory, and it outlives the containers' stops.
//
//   LoopWorkspaceDisks disks("/var/lib/llmbox-spoke/workspaces", runner);
//   LLMBOX_RETURN_IF_ERROR(disks.Check());                          // at start
//   LLMBOX_ASSIGN_OR_RETURN(std::string device, disks.Make("b1", int64_t{2} << 30));
//   // ... a volume {type: ext4, device: /dev/loop7} at /workspace, then, once no container
//   // uses it any more:
//   LLMBOX_RETURN_IF_ERROR(disks.Remove("b1"));
//
// Needs the engine on this host (it mounts our /dev/loopN) and root (loop devices). The image
// and its attachment are found again from the file name alone, so a restarted spoke can
// remove what an earlier one made.
//
// Thread-safe: calls for different boxes may run at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/subprocess.h"

namespace llmbox::spoke::box {

class WorkspaceDisks {
 public:
  virtual ~WorkspaceDisks() = default;

  // FailedPrecondition saying why this process cannot make workspace disks (no loop control
  // device, not root, no mkfs.ext4), naming the fix.
  [[nodiscard]] virtual absl::Status Check() = 0;
  // Makes box `box_id`'s filesystem of `bytes` and returns the block device to mount.
  // AlreadyExists when the box has one already. A failure leaves nothing behind.
  [[nodiscard]] virtual absl::StatusOr<std::string> Make(const std::string& box_id,
                                                         int64_t bytes) = 0;
  // Detaches and deletes box `box_id`'s filesystem. OK when it has none. Call once no
  // container mounts it (a device still mounted is detached when the engine unmounts it).
  [[nodiscard]] virtual absl::Status Remove(const std::string& box_id) = 0;
  // The box ids that have a filesystem.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> List() = 0;
};

// Image files `<dir>/<box id>.img` (0600; `dir` made 0700), formatted by mkfs.ext4 run
// through `runner`, attached with the kernel's loop ioctls. `runner` must outlive it.
class LoopWorkspaceDisks final : public WorkspaceDisks {
 public:
  LoopWorkspaceDisks(std::string dir, common::SubprocessRunner& runner);

  [[nodiscard]] absl::Status Check() override;
  [[nodiscard]] absl::StatusOr<std::string> Make(const std::string& box_id, int64_t bytes) override;
  [[nodiscard]] absl::Status Remove(const std::string& box_id) override;
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List() override;

 private:
  std::string ImagePath(const std::string& box_id) const;

  const std::string dir_;
  common::SubprocessRunner& runner_;
};

}  // namespace llmbox::spoke::box
