#include "tests/support/child_process.h"

#include <signal.h>

#include <filesystem>
#include <regex>
#include <string>
#include <system_error>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/wait.h>

namespace llmbox::testing {

namespace {

// What the kernel says a process and its threads are doing (state and wait channel), for a
// test that gave up waiting on it: "S (sleeping) in ep_poll", per thread.
std::string KernelState(pid_t pid) {
  std::string out;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    const std::string comm = ReadFileOrEmpty(task.path() / "comm");
    const std::string stat = ReadFileOrEmpty(task.path() / "stat");
    const std::string wchan = ReadFileOrEmpty(task.path() / "wchan");
    // stat: "<tid> (<comm>) <state> ..."; comm may hold spaces, so the state follows the last ')'.
    const auto close = stat.rfind(')');
    const std::string state =
        close != std::string::npos && close + 2 < stat.size() ? stat.substr(close + 2, 1) : "?";
    out += "  thread " + task.path().filename().string() + " " + comm.substr(0, comm.find('\n')) +
           ": state " + state + " in " + (wchan.empty() ? "?" : wchan) + "\n";
  }
  return out.empty() ? "  (no /proc entry)\n" : out;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log)
    : log_(log) {
  auto pid = SpawnLogged(argv, log);
  INFO(pid.status().ToString());
  REQUIRE(pid.ok());
  pid_ = *pid;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string ChildProcess::Log() const { return ReadFileOrEmpty(log_); }

std::string ChildProcess::WaitForLog(const std::string& pattern, std::chrono::seconds limit) {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string log = Log();
    if (std::regex_search(log, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
    int status;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("the process exited before its log matched /" << pattern << "/:\n" << log);
    }
    // A real process starting: poll its log, bounded by `limit`.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("the log did not match /" << pattern << "/ within " << limit.count() << " s:\n"
                                 << Log() << "\nthe process (pid " << pid_ << ") now:\n"
                                 << KernelState(pid_));
  return "";
}

int ChildProcess::Wait(std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

int ChildProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return Wait(std::chrono::seconds(20));
}

}  // namespace llmbox::testing
