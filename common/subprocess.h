// common/subprocess.h
//
// Runs a program to completion with bounds: argv (never a shell string), exactly the
// environment given, stdin bytes, stdout and stderr captured up to a cap, and a timeout that
// kills the whole process group (SIGTERM, then SIGKILL after a grace period). Hooks run on it.
//
//   PosixSubprocessRunner runner;
//   LLMBOX_ASSIGN_OR_RETURN(SubprocessResult r, runner.Run({
//       .argv = {"/etc/llmbox/hooks/create", "--json"},
//       .env = EnvFromAllowlist({"PATH", "LANG"}),
//       .stdin_data = request_json,
//       .timeout = std::chrono::seconds(30)}));
//   if (r.timed_out || r.exit_code != 0) ...
//
// When it returns, nothing of the process group is left running (everything the program
// started is killed). Errors (as Status) are only for what prevents running at all: an empty argv,
// a program that cannot be executed (NotFound / PermissionDenied naming it). A program that runs
// and fails is a result. Thread-safe: concurrent Run() calls are fine.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace llmbox::common {

struct SubprocessRequest {
  // argv[0] is the program: a path, or a name looked up in the PATH of `env`.
  std::vector<std::string> argv;
  // The child's whole environment.
  std::map<std::string, std::string> env;
  std::string working_dir;            // empty: ours
  std::string stdin_data;             // written, then stdin is closed
  size_t max_output_bytes = 1 << 20;  // per stream; the rest is read and dropped
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds kill_grace{2'000};  // between SIGTERM and SIGKILL
};

struct SubprocessResult {
  std::optional<int> exit_code;    // when it exited
  std::optional<int> term_signal;  // when a signal ended it
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  bool timed_out = false;
  std::chrono::milliseconds elapsed{0};
};

class SubprocessRunner {
 public:
  virtual ~SubprocessRunner() = default;
  [[nodiscard]] virtual absl::StatusOr<SubprocessResult> Run(const SubprocessRequest& request) = 0;
};

class PosixSubprocessRunner final : public SubprocessRunner {
 public:
  [[nodiscard]] absl::StatusOr<SubprocessResult> Run(const SubprocessRequest& request) override;
};

// The variables of our own environment whose names are in `names` (absent ones are skipped).
std::map<std::string, std::string> EnvFromAllowlist(const std::vector<std::string>& names);

}  // namespace llmbox::common
