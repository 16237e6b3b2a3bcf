#include "common/subprocess.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

namespace llmbox::common {
namespace {

using namespace std::chrono_literals;

SubprocessRequest Sh(const std::string& script) {
  return {.argv = {"/bin/sh", "-c", script}, .env = {{"PATH", "/usr/bin:/bin"}}};
}

// True once `pid` no longer runs (a zombie counts as gone: it runs nothing).
bool Gone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (::kill(pid, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    const size_t paren = line.rfind(')');
    if (paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] == 'Z') {
      return true;
    }
    std::this_thread::sleep_for(10ms);  // bounded retry while the kernel finishes the kill
  }
  return false;
}

TEST_CASE("stdout, stderr and the exit code of a program come back", "[subprocess]") {
  PosixSubprocessRunner runner;
  auto r = runner.Run(Sh("echo out; echo err >&2; exit 7"));
  REQUIRE(r.ok());
  CHECK(r->stdout_data == "out\n");
  CHECK(r->stderr_data == "err\n");
  CHECK(r->exit_code == 7);
  CHECK_FALSE(r->term_signal.has_value());
  CHECK_FALSE(r->timed_out);
}

TEST_CASE("argv is never a shell string", "[subprocess]") {
  PosixSubprocessRunner runner;
  auto r = runner.Run(
      {.argv = {"echo", "a; echo injected", "$(id)"}, .env = {{"PATH", "/usr/bin:/bin"}}});
  REQUIRE(r.ok());
  CHECK(r->stdout_data == "a; echo injected $(id)\n");
}

TEST_CASE("stdin bytes reach the program exactly, zeros and a megabyte included", "[subprocess]") {
  PosixSubprocessRunner runner;
  std::string payload(1 << 20, 'x');
  payload[10] = '\0';
  payload[1000] = '\n';
  auto r = runner.Run({.argv = {"/bin/cat"}, .stdin_data = payload, .max_output_bytes = 2 << 20});
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK(r->stdout_data == payload);
}

TEST_CASE("the environment is exactly the one given", "[subprocess]") {
  ::setenv("LLMBOX_TEST_SECRET", "must-not-leak", 1);
  ::setenv("LLMBOX_TEST_ALLOWED", "yes", 1);
  PosixSubprocessRunner runner;
  auto env = EnvFromAllowlist({"LLMBOX_TEST_ALLOWED", "LLMBOX_TEST_ABSENT"});
  CHECK(env == std::map<std::string, std::string>{{"LLMBOX_TEST_ALLOWED", "yes"}});
  env["EXTRA"] = "1";
  auto r = runner.Run({.argv = {"/usr/bin/env"}, .env = env});
  REQUIRE(r.ok());
  CHECK(r->stdout_data == "EXTRA=1\nLLMBOX_TEST_ALLOWED=yes\n");
}

TEST_CASE("output beyond the cap is dropped and flagged while the program finishes",
          "[subprocess]") {
  PosixSubprocessRunner runner;
  auto request = Sh("head -c 300000 /dev/zero; head -c 10 /dev/zero >&2; exit 3");
  request.max_output_bytes = 1000;
  auto r = runner.Run(request);
  REQUIRE(r.ok());
  CHECK(r->stdout_data.size() == 1000);
  CHECK(r->stdout_truncated);
  CHECK(r->stderr_data.size() == 10);
  CHECK_FALSE(r->stderr_truncated);
  CHECK(r->exit_code == 3);
}

TEST_CASE("a timeout kills the whole process group, grandchildren included", "[subprocess]") {
  const auto pid_file = std::filesystem::temp_directory_path() /
                        ("llmbox-subprocess-" + std::to_string(::getpid()) + ".pid");
  PosixSubprocessRunner runner;
  auto request = Sh("sleep 30 & echo $! > " + pid_file.string() + "; sleep 30");
  request.timeout = 200ms;
  request.kill_grace = 200ms;
  auto r = runner.Run(request);
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(r->term_signal == SIGTERM);
  std::ifstream in(pid_file);
  pid_t grandchild = 0;
  in >> grandchild;
  std::filesystem::remove(pid_file);
  REQUIRE(grandchild > 0);
  CHECK(Gone(grandchild));
}

TEST_CASE("a program that ignores SIGTERM is killed after the grace period", "[subprocess]") {
  PosixSubprocessRunner runner;
  auto request = Sh("trap '' TERM; while :; do sleep 0.05; done");
  request.timeout = 200ms;
  request.kill_grace = 200ms;
  auto r = runner.Run(request);
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK(r->term_signal == SIGKILL);
}

TEST_CASE("a program that cannot be run is an error naming it, not exit code 127", "[subprocess]") {
  PosixSubprocessRunner runner;
  auto missing = runner.Run({.argv = {"/no/such/hook"}});
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(missing.status().message() ==
        "subprocess: cannot run \"/no/such/hook\": No such file or directory");
  const auto plain = std::filesystem::temp_directory_path() /
                     ("llmbox-not-executable-" + std::to_string(::getpid()));
  std::ofstream(plain) << "#!/bin/sh\necho hi\n";
  std::filesystem::permissions(
      plain, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto not_exec = runner.Run({.argv = {plain.string()}});
  std::filesystem::remove(plain);
  INFO(not_exec.status());
  CHECK(absl::IsPermissionDenied(not_exec.status()));
  CHECK(absl::IsInvalidArgument(runner.Run({}).status()));
}

TEST_CASE("a program that does not read its stdin neither hangs nor kills us with SIGPIPE",
          "[subprocess]") {
  PosixSubprocessRunner runner;
  auto request = Sh("exit 0");
  request.stdin_data = std::string(4 << 20, 'x');
  request.timeout = 5s;
  auto r = runner.Run(request);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 0);
  CHECK_FALSE(r->timed_out);
}

TEST_CASE("a program killed by a signal reports the signal", "[subprocess]") {
  PosixSubprocessRunner runner;
  auto r = runner.Run(Sh("kill -9 $$"));
  REQUIRE(r.ok());
  CHECK_FALSE(r->exit_code.has_value());
  CHECK(r->term_signal == SIGKILL);
}

}  // namespace
}  // namespace llmbox::common
