// tests/fakes/fake_subprocess_runner.h
//
// A SubprocessRunner that runs nothing: each program (argv[0]) answers as the test scripted
// it, and every run is recorded. For HookRunner in unit tests.
//
//   FakeSubprocessRunner runner;
//   runner.Answer("create", R"({"version":1,"state":"s-1"})");        // exit 0, this stdout
//   runner.Answer("destroy", "", /*exit_code=*/2);                      // a failing hook
//   hooks::HookRunner hooks(runner, {{.name = "make", .event = "box.create",
//                                     .command = {"create"}}, ...});
//   runner.StdinOf("destroy");   // the requests the destroy hook was given
//
// A program with no answer is NotFound, as a missing executable is. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/subprocess.h"

namespace llmbox::testing {

class FakeSubprocessRunner final : public common::SubprocessRunner {
 public:
  using Handler =
      std::function<absl::StatusOr<common::SubprocessResult>(const common::SubprocessRequest&)>;

  // Runs of `program` exit with `exit_code` after printing `stdout_data`.
  void Answer(const std::string& program, std::string stdout_data, int exit_code = 0);
  // Runs of `program` call `handler` (on the caller's thread).
  void Handle(const std::string& program, Handler handler);

  // The stdin of every run of `program`, in order.
  std::vector<std::string> StdinOf(const std::string& program);

  [[nodiscard]] absl::StatusOr<common::SubprocessResult> Run(
      const common::SubprocessRequest& request) override;

 private:
  std::mutex mu_;
  std::map<std::string, Handler> handlers_;
  std::map<std::string, std::vector<std::string>> stdin_;
};

}  // namespace llmbox::testing
