// tests/support/scratch_dir.h
//
// A fresh folder under the system temp dir for one test, removed when it goes out of scope,
// with helpers to write scripts and files into it and read them back.
//
//   ScratchDir dir("hooks");
//   const std::string hook = dir.Script("create", "echo '{\"version\":1}'\n");
//   ... dir.Read("create.in") ...
#pragma once

#include <filesystem>
#include <string>

namespace llmbox::testing {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& what);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `#!/bin/sh` + `body` to `name`, executable by its owner; returns its path.
  std::string Script(const std::string& name, const std::string& body) const;
  // Writes `content` to `name`; returns its path.
  std::string Write(const std::string& name, const std::string& content) const;
  // The content of `name`, or "" when it does not exist.
  std::string Read(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

}  // namespace llmbox::testing
