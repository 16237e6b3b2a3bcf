#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "tests/support/scratch_dir.h"

namespace llmbox::testing {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> NamesIn(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Sets the process umask for one scope: the file's mode must not depend on it.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST_CASE("an atomically written file has exactly the mode asked for, whatever the umask",
          "[files]") {
  ScratchDir dir("files");
  const std::string key = (dir.path() / "key.pem").string();
  const std::string cert = (dir.path() / "cert.pem").string();
  {
    Umask mask(077);
    REQUIRE(common::WriteFileAtomic(cert, "certificate", 0644).ok());
  }
  {
    Umask mask(0);
    REQUIRE(common::WriteFileAtomic(key, "secret", 0600).ok());
  }
  CHECK(ModeOf(cert) == 0644);
  CHECK(ModeOf(key) == 0600);
  CHECK(dir.Read("cert.pem") == "certificate");
  CHECK(dir.Read("key.pem") == "secret");
  CHECK(NamesIn(dir.path()) == std::vector<std::string>{"cert.pem", "key.pem"});
}

TEST_CASE("writing over a file replaces it whole and takes the new mode", "[files]") {
  ScratchDir dir("files");
  const std::string path = dir.Write("state.json", "old content");
  ::chmod(path.c_str(), 0644);
  // A reader holding the old file keeps seeing the old content: the file is replaced by a
  // rename, never truncated and rewritten in place.
  const int reader = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(reader >= 0);
  REQUIRE(common::WriteFileAtomic(path, "new", 0600).ok());
  char buffer[64] = {};
  const ssize_t n = ::read(reader, buffer, sizeof buffer);
  ::close(reader);
  CHECK(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "old content");
  CHECK(dir.Read("state.json") == "new");
  CHECK(ModeOf(path) == 0600);
  CHECK(NamesIn(dir.path()) == std::vector<std::string>{"state.json"});
}

TEST_CASE("missing parent folders are created private (0700), existing ones are left alone",
          "[files]") {
  ScratchDir dir("files");
  ::chmod(dir.path().c_str(), 0755);
  Umask mask(022);
  const fs::path file = dir.path() / "a" / "b" / "c" / "spoke.key";
  REQUIRE(common::WriteFileAtomic(file.string(), "k", 0600).ok());
  CHECK(ModeOf(dir.path()) == 0755);
  CHECK(ModeOf(dir.path() / "a") == 0700);
  CHECK(ModeOf(dir.path() / "a" / "b") == 0700);
  CHECK(ModeOf(dir.path() / "a" / "b" / "c") == 0700);
  CHECK(ModeOf(file) == 0600);
}

TEST_CASE("a failed atomic write leaves no temp file behind and names the path", "[files]") {
  ScratchDir dir("files");
  // A folder where the file should go: the rename fails after the temp file was written.
  fs::create_directory(dir.path() / "target");
  const std::string target = (dir.path() / "target").string();
  const absl::Status st = common::WriteFileAtomic(target, "content", 0600);
  CHECK(absl::IsFailedPrecondition(st));
  CHECK(std::string(st.message()).find(target) != std::string::npos);
  CHECK(NamesIn(dir.path()) == std::vector<std::string>{"target"});
  CHECK(fs::is_directory(target));
}

TEST_CASE("an atomic write never writes through a planted temp file or symlink", "[files]") {
  ScratchDir dir("files");
  const std::string victim = dir.Write("victim", "untouched");
  const std::string path = (dir.path() / "out").string();
  fs::create_symlink(victim, path + ".tmp");
  REQUIRE(common::WriteFileAtomic(path, "written", 0600).ok());
  CHECK(dir.Read("victim") == "untouched");
  CHECK(dir.Read("out") == "written");
}

TEST_CASE("a file is read whole up to its bound, and refused one byte past it", "[files]") {
  ScratchDir dir("files");
  const std::string exact = dir.Write("exact", std::string(10000, 'x'));
  const std::string over = dir.Write("over", std::string(10001, 'x'));
  const std::string empty = dir.Write("empty", "");
  auto read = common::ReadSmallFile(exact, 10000);
  REQUIRE(read.ok());
  CHECK(read->size() == 10000);
  auto refused = common::ReadSmallFile(over, 10000);
  CHECK(absl::IsFailedPrecondition(refused.status()));
  CHECK(std::string(refused.status().message()) == over + " is larger than 10000 bytes");
  CHECK(common::ReadSmallFile(empty).value() == "");
}

TEST_CASE("a missing file or a folder cannot be read, and the error names the path", "[files]") {
  ScratchDir dir("files");
  const std::string missing = (dir.path() / "missing").string();
  auto gone = common::ReadSmallFile(missing);
  CHECK(absl::IsNotFound(gone.status()));
  CHECK(std::string(gone.status().message()) ==
        "cannot read " + missing + ": No such file or directory");
  auto folder = common::ReadSmallFile(dir.path().string());
  CHECK(absl::IsNotFound(folder.status()));
}

}  // namespace
}  // namespace llmbox::testing
