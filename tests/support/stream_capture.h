#pragma once

// What a command printed: runs a function with stdout or stderr going to a file, for tests of
// the CLI commands (hub/admin), which print to the process's streams.
//
//   const std::string said = Capture(stderr, dir / "cordon.err", [&] { CHECK(Command() == 0); });

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::testing {

// Runs `fn` with `stream` (stdout or stderr) going to `file`; returns what it printed. Not
// for tests that print from other threads meanwhile.
template <typename Fn>
std::string Capture(std::FILE* stream, const std::filesystem::path& file, Fn fn) {
  const int target = ::fileno(stream);
  std::fflush(stream);
  const int saved = ::dup(target);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  ::dup2(fd, target);
  ::close(fd);
  fn();
  std::fflush(stream);
  ::dup2(saved, target);
  ::close(saved);
  std::FILE* in = std::fopen(file.c_str(), "r");
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, in)) out.append(buffer, n);
  std::fclose(in);
  return out;
}

template <typename Fn>
std::string CaptureStdout(const std::filesystem::path& file, Fn fn) {
  return Capture(stdout, file, fn);
}

}  // namespace llmbox::testing
