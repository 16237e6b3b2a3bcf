// spoke/docker/process_tree.h
//
// A process and everything it started, on this host, through /proc: to end a timed-out exec
// as a whole (its main process and whatever it forked), not only its first process.
//
//   KillProcessTree(host_pid);   // SIGSTOPs the tree until it stops growing, then SIGKILLs it
//
// Linux only; reads /proc/<pid>/task/<tid>/children. A process that left the tree before the
// walk (a double fork reparented to the container's init) is not found. Bounded: at most
// kMaxTreeProcesses processes and kMaxTreeRounds walks. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <vector>

#include <sys/types.h>

namespace llmbox::spoke::docker {

inline constexpr std::size_t kMaxTreeProcesses = 16384;
inline constexpr int kMaxTreeRounds = 8;

// `root` and its descendants as /proc shows them now, root first; empty when `root` is gone.
std::vector<pid_t> ProcessTree(pid_t root, std::size_t max_processes = kMaxTreeProcesses);

// Stops `root` and every descendant (so none forks any more), walking again until the tree
// stops growing, then kills them all. Returns how many processes were signalled.
std::size_t KillProcessTree(pid_t root);

}  // namespace llmbox::spoke::docker
