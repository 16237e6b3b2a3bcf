#pragma once

// One of our binaries (or node) as a child process for e2e tests: its stderr (and stdout)
// go to a log file the test reads; it is killed when the object goes.
//
//   ChildProcess hub({LLMBOX_HUB_BIN, "serve", "--config", config}, dir / "hub.log");
//   std::string port = hub.WaitForLog("listening on [^:]+:([0-9]+)");   // first group
//   REQUIRE(hub.Stop() == 0);                                          // SIGTERM, exit code

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

#include "tests/support/logged_process.h"

namespace llmbox::testing {

class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits (up to `limit`) until the log matches `pattern` and returns its first group (or the
  // whole match). Fails the test with the log when the process exits first or time runs out.
  std::string WaitForLog(const std::string& pattern,
                         std::chrono::seconds limit = std::chrono::seconds(60));
  // SIGTERM, then the exit status (128+signal when killed; -1 when it did not exit in 20 s).
  int Stop();
  // Waits for the process to end on its own (up to `limit`); its exit status, or -1.
  int Wait(std::chrono::seconds limit);
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

}  // namespace llmbox::testing
