// spoke/box/image_import.cc
#include "spoke/box/image_import.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <sys/stat.h>

#include "common/status.h"
#include "common/validate.h"

namespace llmbox::spoke::box {
namespace {

// A file read as it is sent; owns its descriptor.
class FileArchive final : public docker::ImageArchive {
 public:
  FileArchive(int fd, uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~FileArchive() override { ::close(fd_); }
  FileArchive(const FileArchive&) = delete;
  FileArchive& operator=(const FileArchive&) = delete;

  std::optional<uint64_t> Size() const override { return size_; }

  absl::StatusOr<size_t> Read(char* buffer, size_t capacity) override {
    while (true) {
      const ssize_t n = ::read(fd_, buffer, std::min<size_t>(capacity, 64u << 10));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) {
        return absl::DataLossError(absl::StrCat("cannot read ", common::QuoteForMessage(path_, 200),
                                                ": ", std::strerror(errno)));
      }
    }
  }

 private:
  const int fd_;
  const uint64_t size_;
  const std::string path_;
};

}  // namespace

absl::StatusOr<ImportReport> ImportBoxImage(
    docker::DockerEngine& engine, const std::string& archive_path, const std::string& default_image,
    const std::function<void(uint64_t sent, uint64_t total)>& progress) {
  const int fd = ::open(archive_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open ", common::QuoteForMessage(archive_path, 200), ": ", std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(common::QuoteForMessage(archive_path, 200),
                                                   " is not a file (docker save writes one)"));
  }
  FileArchive archive(fd, static_cast<uint64_t>(st.st_size), archive_path);
  ImportReport report;
  report.bytes = static_cast<uint64_t>(st.st_size);
  const uint64_t step = std::max<uint64_t>(report.bytes / 100, 1);
  uint64_t next_report = 0;
  auto sent = [&](uint64_t bytes) {
    if (!progress || (bytes < next_report && bytes < report.bytes)) return;
    progress(bytes, report.bytes);
    next_report = bytes + step;
  };
  LLMBOX_ASSIGN_OR_RETURN(report.loaded, engine.LoadImage(archive, sent));
  absl::StatusOr<docker::ImageInfo> image = engine.InspectImage(default_image);
  if (absl::IsNotFound(image.status())) {
    return absl::InvalidArgumentError(absl::StrCat(
        common::QuoteForMessage(archive_path, 200), " was loaded (it held ",
        report.loaded.empty() ? std::string("no named image") : absl::StrJoin(report.loaded, ", "),
        ") but boxes.default_image ", common::QuoteForMessage(default_image, 200),
        " is still not on the engine: save the image under that name (docker save ", default_image,
        ") or set boxes.default_image to the name it has"));
  }
  if (!image.ok()) return image.status();
  report.default_image_id = image->id;
  return report;
}

}  // namespace llmbox::spoke::box
