#include "tests/support/scratch_dir.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace llmbox::testing {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& what) {
  static std::atomic<int> counter{0};
  path_ = fs::temp_directory_path() /
          ("llmbox-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ScratchDir::Script(const std::string& name, const std::string& body) const {
  const std::string path = Write(name, "#!/bin/sh\n" + body);
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

std::string ScratchDir::Write(const std::string& name, const std::string& content) const {
  const fs::path path = path_ / name;
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

std::string ScratchDir::Read(const std::string& name) const {
  std::ifstream in(path_ / name, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace llmbox::testing
