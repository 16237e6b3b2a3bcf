#include "tests/support/child_process.h"

#include <signal.h>

#include <regex>
#include <thread>

#include <catch2/catch.hpp>
#include <sys/wait.h>

namespace llmbox::testing {

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
  FAIL("the log did not match /" << pattern << "/ within " << limit.count() << " s:\n" << Log());
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
