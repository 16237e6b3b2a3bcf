// The process tree of a timed-out exec, with real processes of this test.

#include "spoke/docker/process_tree.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/wait.h>

namespace llmbox::spoke::docker {
namespace {

// A shell that starts `children` sleeps and waits for them: the root of a tree of
// 1 + children processes.
pid_t StartTree(int children) {
  std::string script;
  for (int i = 0; i < children; ++i) script += "sleep 300 & ";
  script += "wait";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// The state letter /proc shows ('Z' for a zombie), or 0 when the process is gone.
char StateOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return 0;
  return text[paren + 2];
}

// Waits (bounded) until the tree shows `size` processes: the shell forks them at its own pace.
std::vector<pid_t> TreeOfSize(pid_t root, std::size_t size) {
  std::vector<pid_t> tree;
  for (int i = 0; i < 500 && tree.size() < size; ++i) {
    tree = ProcessTree(root);
    if (tree.size() < size) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return tree;
}

TEST_CASE("a process tree is its root and every descendant", "[process-tree]") {
  const pid_t root = StartTree(3);
  const std::vector<pid_t> tree = TreeOfSize(root, 4);
  REQUIRE(tree.size() == 4);
  CHECK(tree.front() == root);
  CHECK(KillProcessTree(root) == 4);
  int status = 0;
  REQUIRE(::waitpid(root, &status, 0) == root);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  // The sleeps were killed too (gone, or zombies waiting for their new parent).
  for (pid_t pid : tree) {
    if (pid == root) continue;
    for (int i = 0; i < 500 && StateOf(pid) != 0 && StateOf(pid) != 'Z'; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const char state = StateOf(pid);
    CHECK((state == 0 || state == 'Z'));
  }
}

TEST_CASE("a process that is gone has no tree and nothing is signalled", "[process-tree]") {
  const pid_t root = StartTree(0);
  int status = 0;
  REQUIRE(::waitpid(root, &status, 0) == root);
  CHECK(ProcessTree(root).empty());
  CHECK(KillProcessTree(root) == 0);
  CHECK(ProcessTree(1).empty());  // init is never part of a tree to kill
  CHECK(ProcessTree(0).empty());
}

TEST_CASE("a process tree is cut at its bound", "[process-tree]") {
  const pid_t root = StartTree(5);
  REQUIRE(TreeOfSize(root, 6).size() == 6);
  CHECK(ProcessTree(root, 3).size() == 3);
  CHECK(KillProcessTree(root) == 6);
  int status = 0;
  REQUIRE(::waitpid(root, &status, 0) == root);
}

}  // namespace
}  // namespace llmbox::spoke::docker
