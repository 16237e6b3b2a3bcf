#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"
#include <sys/stat.h>

#include "common/status.h"

namespace llmbox::common {
namespace {

std::string Reason() { return std::strerror(errno); }

// Creates each missing folder of `dir` with mode 0700 (chmod after mkdir, which the umask
// narrows). Folders that already exist keep their mode.
[[nodiscard]] absl::Status MakeFolders(const std::filesystem::path& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
  std::filesystem::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      if (::chmod(prefix.c_str(), 0700) != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot make the folder ", prefix.string(), " private: ", Reason()));
      }
    } else if (errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create the folder ", prefix.string(), ": ", Reason()));
    }
  }
  return absl::OkStatus();
}

// Makes a rename in `dir` durable. Filesystems that cannot sync a folder (EINVAL) are fine.
bool SyncFolder(const std::filesystem::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0 || errno == EINVAL;
  ::close(fd);
  return ok;
}

// Writes all of `content` to `fd`.
bool WriteAll(int fd, std::string_view content) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) {
      errno = EIO;
      return false;
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

[[nodiscard]] absl::Status WriteFileAtomic(const std::string& path, std::string_view content,
                                           mode_t mode) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    if (auto st = MakeFolders(parent); !st.ok()) return st;
  }
  // A name no other writer (thread or process) uses, created exclusively: a stale or planted
  // temp file (or a symlink in its place) is never written through.
  static std::atomic<unsigned> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
    temp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", temp, ": ", Reason()));
  }
  auto fail = [&](const std::string& what) {
    const std::string reason = Reason();
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", what, ": ", reason));
  };
  // open() narrows the mode by the umask; the mode asked for is the mode wanted (0644 for a
  // certificate), and the file is never wider than that, even for a moment.
  if (::fchmod(fd, mode) != 0 || !WriteAll(fd, content) || ::fsync(fd) != 0) return fail(temp);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0 || ::rename(temp.c_str(), path.c_str()) != 0) return fail(path);
  // The file is in place and whole; a folder that cannot be synced only makes the rename less
  // durable across a power cut. Failing here would make callers that write several files
  // (a key, then its certificate) stop halfway with the first one already replaced.
  if (!SyncFolder(parent)) {
    spdlog::warn("wrote {} but cannot sync its folder: {}", path, Reason());
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status EnsureStateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError("cannot create the state directory " + dir + ": " +
                                         ec.message());
  }
  ::chmod(dir.c_str(), 0700);
  return absl::OkStatus();
}

namespace {

// Reads `fd` (and closes it) without holding more than `max_bytes` plus one buffer.
absl::StatusOr<std::string> ReadAndClose(int fd, const std::string& path, std::size_t max_bytes) {
  std::string content;
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = Reason();
      ::close(fd);
      return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", reason));
    }
    if (n == 0) break;
    // Held only up to the bound: one buffer past it at most.
    if (content.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
    content.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return content;
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                                        std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", Reason()));
  return ReadAndClose(fd, path, max_bytes);
}

[[nodiscard]] absl::StatusOr<std::string> ReadPrivateFile(const std::string& path,
                                                          std::size_t max_bytes) {
  // O_NONBLOCK: a FIFO put in the secret's place must not hang the reader before the check.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", Reason()));
  // The mode of the file opened, not of whatever the path names a moment later.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  const mode_t too_open = st.st_mode & (S_IRWXO | S_IWGRP);
  if (too_open != 0) {
    ::close(fd);
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s has mode %04o: a secret must not be readable or writable by others or writable by "
        "its group; chmod 0600 %s",
        path, st.st_mode & 07777, path));
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string content, ReadAndClose(fd, path, max_bytes));
  if (!content.empty() && content.back() == '\n') content.pop_back();
  if (!content.empty() && content.back() == '\r') content.pop_back();
  return content;
}

}  // namespace llmbox::common
