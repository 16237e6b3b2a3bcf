// common/periodic.h
//
// Runs a task every `interval` on its own thread, with waits through a Clock, so that a
// FakeClock advanced in a test fires it deterministically. The one periodic loop of llmbox:
// the hub's reconcile, the spoke's reaper and its certificate renewer use it.
//
//   common::PeriodicTask reconcile(clock, std::chrono::seconds(30), [&] { registry.Reconcile(); });
//   reconcile.Start();   // first run one interval from now
//   ...
//   reconcile.Stop();    // or the destructor; waits for a run in progress to end
//
// Thread-safe: Start, Stop and RunNow may be called from any thread but the task's own.
// The task never runs twice at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "common/clock.h"

namespace llmbox::common {

class PeriodicTask {
 public:
  // `clock` must outlive the task. `interval` must be positive.
  PeriodicTask(Clock& clock, std::chrono::nanoseconds interval, std::function<void()> task);
  ~PeriodicTask();  // Stop()

  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // Starts the thread; the first run comes one interval from now. A second Start does nothing.
  void Start();
  // Ends the thread after the run in progress, if any. Idempotent; the task cannot restart.
  void Stop();
  // Runs the task now on its own thread instead of waiting for the interval (the next one
  // counts from then). Nothing when not started.
  void RunNow();
  // How many runs have finished (for tests that wait on a FakeClock-driven task).
  int runs() const;
  // Waits (through the clock) until at least `count` runs have finished or `deadline` passes;
  // true when they have.
  bool WaitForRuns(int count, Clock::SteadyTime deadline);

 private:
  void Loop();

  Clock& clock_;
  const std::chrono::nanoseconds interval_;
  const std::function<void()> task_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the loop: stop or run now
  std::condition_variable done_cv_;  // a run finished
  bool stop_ = false;
  bool run_now_ = false;
  int runs_ = 0;
  std::thread thread_;
};

}  // namespace llmbox::common
