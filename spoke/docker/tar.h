// spoke/docker/tar.h
//
// Builds a POSIX ustar archive in memory, for PutArchive: hook files and the Claude seed are
// injected into a box this way (never through environment variables or labels).
//
//   TarBuilder tar;
//   LLMBOX_RETURN_IF_ERROR(tar.AddDirectory("root/.claude", 0700, 0, 0));
//   LLMBOX_RETURN_IF_ERROR(tar.AddFile("root/.claude.json", seed, 0600, 0, 0));
//   LLMBOX_RETURN_IF_ERROR(engine.PutArchive(id, "/", tar.Finish()));
//
// Paths are relative (to the extraction directory), use "/" separators, and may not contain
// "..", "." or empty components; they must fit ustar (name 100 bytes, or prefix 155 + name
// 100 split at a "/"). Errors are InvalidArgument naming the path. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace llmbox::spoke::docker {

class TarBuilder {
 public:
  [[nodiscard]] absl::Status AddFile(std::string_view path, std::string_view contents,
                                     uint32_t mode, uint32_t uid, uint32_t gid);
  [[nodiscard]] absl::Status AddDirectory(std::string_view path, uint32_t mode, uint32_t uid,
                                          uint32_t gid);

  // Returns the archive (with its two zero end blocks). The builder is empty afterwards.
  std::string Finish();

 private:
  [[nodiscard]] absl::Status AddEntry(std::string_view path, char type, std::string_view contents,
                                      uint32_t mode, uint32_t uid, uint32_t gid);
  std::string data_;
};

}  // namespace llmbox::spoke::docker
