// tests/fakes/fake_clock.h
//
// A Clock that moves only when a test advances it. Advance() fires due timers in deadline
// order (on the advancing thread, outside the clock's lock) and wakes sleeps and deadline
// waits that are due. WaitForWaiters() lets a test wait until other threads are blocked in
// the clock, so that "advance past the deadline" happens after "start waiting" without any
// sleep.
//
//   FakeClock clock;
//   std::thread t([&] { clock.SleepFor(std::chrono::seconds(30)); done = true; });
//   REQUIRE(clock.WaitForWaiters(1));
//   clock.Advance(std::chrono::seconds(30));   // t wakes
//
// Do not call Advance() while holding a mutex that a WaitUntil() caller waits with.
#pragma once

#include <map>
#include <memory>
#include <set>

#include "common/clock.h"

namespace llmbox::testing {

class FakeClock final : public common::Clock {
 public:
  FakeClock();

  WallTime Now() override;
  SteadyTime SteadyNow() override;
  void SleepFor(std::chrono::nanoseconds duration) override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& pred) override;
  std::unique_ptr<common::Timer> RunAfter(std::chrono::nanoseconds delay,
                                          std::function<void()> callback) override;

  // Moves time forward by `duration`, firing what falls due on the way.
  void Advance(std::chrono::nanoseconds duration);

  // Blocks until at least `count` threads sleep or wait in this clock for a time still in
  // the future (a thread whose deadline has passed is on its way out and does not count);
  // false if that does not happen within 10 s of real time (a broken test fails instead of
  // hanging).
  bool WaitForWaiters(int count);

  // Timers scheduled and not yet fired or cancelled.
  int PendingTimers();

 private:
  struct TimerState;
  struct Waiter {
    SteadyTime deadline;
    std::mutex* mu;  // the waiter's own mutex (nullptr for SleepFor)
    std::condition_variable* cv;
    int notifying = 0;  // Advance() calls about to notify it (guarded by mu_)
  };
  class FakeTimer;

  std::mutex mu_;
  std::condition_variable changed_;  // time moved, or waiters changed
  std::chrono::nanoseconds elapsed_{0};
  const WallTime wall_start_;
  const SteadyTime steady_start_;
  std::multimap<SteadyTime, std::shared_ptr<TimerState>> timers_;
  std::set<Waiter*> waiters_;
  std::multiset<SteadyTime> sleepers_;  // when each sleeping thread wakes
};

}  // namespace llmbox::testing
