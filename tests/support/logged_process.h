// tests/support/logged_process.h
//
// A child process whose output goes to a log file, without Catch2 (benchmarks link this):
// argv[0] (a path, or a name looked up in PATH) with stdin from /dev/null and stdout and
// stderr appended to `log`. ChildProcess (child_process.h) is the same for Catch2 tests, built
// on this.
//
//   LLMBOX_ASSIGN_OR_RETURN(pid_t hub, SpawnLogged({LLMBOX_HUB_BIN, "serve", ...}, log));
//   LLMBOX_ASSIGN_OR_RETURN(std::string port,
//       WaitForLogText(log, hub, "enrollment service on port ", "0123456789"));
//   ::kill(hub, SIGTERM);
//   int code = WaitExit(hub);
//
// Thread-compatible. The caller owns the process (kills and reaps it).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include <sys/types.h>

namespace llmbox::testing {

// The whole file, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::filesystem::path& path);

// Starts `argv` as a child process (signals unblocked in it, so it sees SIGTERM even when the
// caller blocks them). Internal when fork fails; a program that cannot be run exits 127.
[[nodiscard]] absl::StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                                                const std::filesystem::path& log);

// Waits for `pid` to end: its exit code, 128+signal when a signal ended it, -1 when `pid` is
// not a child of this process.
int WaitExit(pid_t pid);

// Waits (up to `limit`) until `log` holds `prefix` followed by at least one character of
// `chars` and one character that is not, and returns that run of `chars` (a port, a key).
// FailedPrecondition with the log when `pid` exits first (it is then reaped);
// DeadlineExceeded naming `prefix` when time runs out.
[[nodiscard]] absl::StatusOr<std::string> WaitForLogText(
    const std::filesystem::path& log, pid_t pid, std::string_view prefix, std::string_view chars,
    std::chrono::seconds limit = std::chrono::seconds(60));

}  // namespace llmbox::testing
