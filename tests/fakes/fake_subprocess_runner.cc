#include "tests/fakes/fake_subprocess_runner.h"

#include <utility>

namespace llmbox::testing {

void FakeSubprocessRunner::Answer(const std::string& program, std::string stdout_data,
                                  int exit_code) {
  Handle(program,
         [stdout_data = std::move(stdout_data), exit_code](const common::SubprocessRequest&) {
           common::SubprocessResult result;
           result.exit_code = exit_code;
           result.stdout_data = stdout_data;
           return result;
         });
}

void FakeSubprocessRunner::Handle(const std::string& program, Handler handler) {
  std::lock_guard lock(mu_);
  handlers_[program] = std::move(handler);
}

std::vector<std::string> FakeSubprocessRunner::StdinOf(const std::string& program) {
  std::lock_guard lock(mu_);
  auto it = stdin_.find(program);
  return it == stdin_.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<common::SubprocessResult> FakeSubprocessRunner::Run(
    const common::SubprocessRequest& request) {
  if (request.argv.empty()) return absl::InvalidArgumentError("empty argv");
  Handler handler;
  {
    std::lock_guard lock(mu_);
    stdin_[request.argv[0]].push_back(request.stdin_data);
    auto it = handlers_.find(request.argv[0]);
    if (it == handlers_.end()) {
      return absl::NotFoundError("cannot execute " + request.argv[0] + ": no such file");
    }
    handler = it->second;
  }
  return handler(request);
}

}  // namespace llmbox::testing
