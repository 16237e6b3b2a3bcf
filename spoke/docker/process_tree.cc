#include "spoke/docker/process_tree.h"

#include <signal.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

namespace llmbox::spoke::docker {
namespace {

// The children /proc lists for each thread of `pid`.
void ChildrenOf(pid_t pid, std::vector<pid_t>* out) {
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream children(task.path() / "children");
    std::string word;
    while (children >> word) {
      pid_t child = 0;
      if (std::from_chars(word.data(), word.data() + word.size(), child).ec == std::errc() &&
          child > 1) {
        out->push_back(child);
      }
    }
  }
}

}  // namespace

std::vector<pid_t> ProcessTree(pid_t root, std::size_t max_processes) {
  std::vector<pid_t> tree;
  if (root <= 1 || !std::filesystem::exists("/proc/" + std::to_string(root))) return tree;
  std::set<pid_t> seen = {root};
  tree.push_back(root);
  for (std::size_t next = 0; next < tree.size() && tree.size() < max_processes; ++next) {
    std::vector<pid_t> children;
    ChildrenOf(tree[next], &children);
    for (pid_t child : children) {
      if (tree.size() >= max_processes) break;
      if (seen.insert(child).second) tree.push_back(child);
    }
  }
  return tree;
}

std::size_t KillProcessTree(pid_t root) {
  std::set<pid_t> stopped;
  for (int round = 0; round < kMaxTreeRounds; ++round) {
    bool grew = false;
    for (pid_t pid : ProcessTree(root)) {
      if (stopped.size() >= kMaxTreeProcesses) break;
      if (stopped.insert(pid).second) {
        ::kill(pid, SIGSTOP);
        grew = true;
      }
    }
    if (!grew) break;
  }
  for (pid_t pid : stopped) ::kill(pid, SIGKILL);
  return stopped.size();
}

}  // namespace llmbox::spoke::docker
