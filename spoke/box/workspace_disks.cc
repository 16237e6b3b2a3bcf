#include "spoke/box/workspace_disks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include <linux/loop.h>
#include <sys/ioctl.h>

#include "common/absl_compat.h"

namespace llmbox::spoke::box {
namespace {

constexpr std::string_view kSuffix = ".img";
constexpr const char* kLoopControl = "/dev/loop-control";

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string Errno(std::string_view what, int err) {
  return absl::StrCat(common::AsAbsl(what), ": ", std::strerror(err));
}

// The loop devices attached to `image`, as /dev/loopN (from sysfs: the kernel records the
// backing file's path).
std::vector<std::string> AttachedTo(const std::string& image) {
  std::vector<std::string> devices;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/block", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, "loop")) continue;
    std::ifstream backing(entry.path() / "loop" / "backing_file");
    std::string path;
    if (!std::getline(backing, path)) continue;
    // An image deleted while attached reads "<path> (deleted)".
    absl::string_view shown = path;
    absl::ConsumeSuffix(&shown, " (deleted)");
    if (shown == image) devices.push_back("/dev/" + name);
  }
  return devices;
}

}  // namespace

LoopWorkspaceDisks::LoopWorkspaceDisks(std::string dir, common::SubprocessRunner& runner)
    : dir_(std::move(dir)), runner_(runner) {}

std::string LoopWorkspaceDisks::ImagePath(const std::string& box_id) const {
  return dir_ + "/" + box_id + std::string(kSuffix);
}

absl::Status LoopWorkspaceDisks::Check() {
  auto refuse = [](std::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("boxes.disk.workspace_type loop: ", common::AsAbsl(why),
                     "; run the spoke as root beside its engine, or use workspace_type: tmpfs"));
  };
  if (::geteuid() != 0) return refuse("the spoke does not run as root");
  if (::access(kLoopControl, R_OK | W_OK) != 0) {
    return refuse(Errno(kLoopControl, errno));
  }
  auto version = runner_.Run({.argv = {"mkfs.ext4", "-V"},
                              .env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}},
                              .timeout = std::chrono::seconds(10)});
  if (!version.ok() || version->exit_code != 0) {
    return refuse("mkfs.ext4 does not run (install e2fsprogs)");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return refuse(absl::StrCat("cannot make ", dir_, ": ", ec.message()));
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
  return absl::OkStatus();
}

absl::StatusOr<std::string> LoopWorkspaceDisks::Make(const std::string& box_id, int64_t bytes) {
  const std::string image = ImagePath(box_id);
  auto failed = [&](absl::Status st) {
    (void)Remove(box_id);
    return absl::Status(st.code(), absl::StrCat("workspace disk ", image, ": ", st.message()));
  };
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  {
    Fd file(::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (file.get() < 0) {
      const int err = errno;
      if (err == EEXIST) return absl::AlreadyExistsError(absl::StrCat(image, " exists"));
      return absl::InternalError(Errno(image, err));
    }
    // Sparse: blocks are taken as the box writes, up to `bytes`.
    if (::ftruncate(file.get(), bytes) != 0) {
      return failed(absl::InternalError(Errno("setting its size", errno)));
    }
  }
  auto formatted = runner_.Run({.argv = {"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
                                         "-E", "nodiscard,root_owner=0:0", image},
                                .env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}},
                                .timeout = std::chrono::seconds(60)});
  if (!formatted.ok()) return failed(formatted.status());
  if (formatted->exit_code != 0) {
    return failed(absl::InternalError(
        absl::StrCat("mkfs.ext4 failed: ", formatted->stderr_data.substr(0, 500))));
  }

  Fd control(::open(kLoopControl, O_RDWR | O_CLOEXEC));
  if (control.get() < 0) return failed(absl::FailedPreconditionError(Errno(kLoopControl, errno)));
  Fd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (backing.get() < 0) return failed(absl::InternalError(Errno(image, errno)));
  // Another process may take the free device between our asking and attaching: ask again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int number = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (number < 0) {
      return failed(absl::ResourceExhaustedError(Errno("no free loop device", errno)));
    }
    const std::string device = absl::StrCat("/dev/loop", number);
    Fd loop(::open(device.c_str(), O_RDWR | O_CLOEXEC));
    if (loop.get() < 0) return failed(absl::InternalError(Errno(device, errno)));
    if (::ioctl(loop.get(), LOOP_SET_FD, backing.get()) != 0) {
      if (errno == EBUSY) continue;
      return failed(absl::InternalError(Errno(device, errno)));
    }
    loop_info64 info{};
    std::strncpy(reinterpret_cast<char*>(info.lo_file_name), image.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_SET_STATUS64, &info) != 0) {
      return failed(absl::InternalError(Errno(device, errno)));
    }
    return device;
  }
  return failed(absl::UnavailableError("every free loop device was taken by another process"));
}

absl::Status LoopWorkspaceDisks::Remove(const std::string& box_id) {
  const std::string image = ImagePath(box_id);
  std::error_code ec;
  // The kernel shows the backing file's resolved path.
  const std::string resolved = std::filesystem::weakly_canonical(image, ec).string();
  for (const std::string& device : AttachedTo(ec ? image : resolved)) {
    Fd loop(::open(device.c_str(), O_RDWR | O_CLOEXEC));
    // Detached already (between the listing and now) is fine; so is a busy device: the
    // kernel then detaches it when its last user closes it.
    if (loop.get() < 0) continue;
    if (::ioctl(loop.get(), LOOP_CLR_FD) != 0 && errno != ENXIO) {
      return absl::InternalError(
          absl::StrCat("workspace disk ", image, ": detaching ", Errno(device, errno)));
    }
  }
  std::filesystem::remove(image, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("workspace disk ", image, ": deleting it: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> LoopWorkspaceDisks::List() {
  std::vector<std::string> boxes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string file = entry.path().filename().string();
    absl::string_view name = file;
    if (absl::ConsumeSuffix(&name, common::AsAbsl(kSuffix))) boxes.emplace_back(name);
  }
  return boxes;
}

}  // namespace llmbox::spoke::box
