#include "tests/support/logged_process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include <sys/wait.h>

namespace llmbox::testing {

std::string ReadFileOrEmpty(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::StatusOr<pid_t> SpawnLogged(const std::vector<std::string>& argv,
                                  const std::filesystem::path& log) {
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed starting " + argv.front());
  if (pid == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    // The test runner may block signals; the child must see SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

absl::StatusOr<std::string> WaitForLogText(const std::filesystem::path& log, pid_t pid,
                                           std::string_view prefix, std::string_view chars,
                                           std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = ReadFileOrEmpty(log);
    if (const auto at = text.find(prefix); at != std::string::npos) {
      const auto start = at + prefix.size();
      const auto end = text.find_first_not_of(chars, start);
      if (end != std::string::npos && end > start) return text.substr(start, end - start);
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return absl::FailedPreconditionError("the process exited before its log showed \"" +
                                           std::string(prefix) + "\":\n" + text);
    }
    // A real process starting: poll its log, bounded by `limit`.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("\"" + std::string(prefix) + "\" did not appear in " +
                                     log.string() + " within " + std::to_string(limit.count()) +
                                     " s");
}

}  // namespace llmbox::testing
