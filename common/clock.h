// common/clock.h
//
// Time for everything in llmbox goes through a Clock, so that tests can drive it: a FakeClock
// (tests/fakes/fake_clock.h) moves only when advanced, and then fires timers and wakes
// deadline waits deterministically. SystemClock is the real one.
//
//   class Reaper {
//    public:
//     explicit Reaper(Clock& clock) : clock_(clock) {}
//     void Start() { timer_ = clock_.RunAfter(std::chrono::seconds(30), [this] { Sweep(); }); }
//     bool WaitIdle(std::chrono::seconds limit) {
//       std::unique_lock lock(mu_);
//       return clock_.WaitUntil(lock, cv_, clock_.SteadyNow() + limit, [&] { return idle_; });
//     }
//     ...
//   };
//
// At the seams between modules time is this vocabulary: Clock::WallTime and Clock::SteadyTime,
// and std::chrono durations. Milliseconds since the Unix epoch (int64) live only in the store's
// rows and wire fields, converted here (docs/decisions/003-time-at-the-seams.md):
//
//   record.expires_at_ms = ToUnixMillis(clock.Now() + ttl);
//   if (clock.Now() >= FromUnixMillis(record.expires_at_ms)) ...
//
// Thread-safe. A Timer's callback runs on a clock-owned thread (SystemClock) or on the thread
// that advances a fake clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace llmbox::common {

// A scheduled callback. Destroying the handle cancels it.
class Timer {
 public:
  virtual ~Timer() = default;
  // After Cancel() returns, the callback is not running and will not run, unless Cancel() is
  // called from inside the callback itself (then it returns at once).
  virtual void Cancel() = 0;
};

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;

  // Wall-clock time, for timestamps people read.
  virtual WallTime Now() = 0;
  // Monotonic time, for deadlines and durations.
  virtual SteadyTime SteadyNow() = 0;

  virtual void SleepFor(std::chrono::nanoseconds duration) = 0;

  // With `lock` held on the mutex that guards `pred`'s state, waits on `cv` until `pred()` is
  // true or `deadline` passes; returns `pred()`. Whoever changes that state notifies `cv`.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         SteadyTime deadline, const std::function<bool()>& pred) = 0;

  // Runs `callback` once, `delay` from now.
  virtual std::unique_ptr<Timer> RunAfter(std::chrono::nanoseconds delay,
                                          std::function<void()> callback) = 0;
};

// The real clock.
class SystemClock final : public Clock {
 public:
  SystemClock();
  ~SystemClock() override;

  // A process-wide instance (never destroyed).
  static SystemClock& Get();

  WallTime Now() override;
  SteadyTime SteadyNow() override;
  void SleepFor(std::chrono::nanoseconds duration) override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& pred) override;
  std::unique_ptr<Timer> RunAfter(std::chrono::nanoseconds delay,
                                  std::function<void()> callback) override;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Milliseconds since the Unix epoch for `time`, rounded down (toward the past).
[[nodiscard]] std::int64_t ToUnixMillis(Clock::WallTime time);

// `millis` since the Unix epoch as RFC 3339 UTC to the second, rounded down
// ("2026-11-30T04:20:00Z"), for people and JSON fields.
[[nodiscard]] std::string FormatUtcSeconds(std::int64_t millis);

// The wall time `millis` milliseconds after the Unix epoch (before it when negative). Values
// beyond what WallTime holds (about ±292 years) saturate to WallTime::max() / min().
[[nodiscard]] Clock::WallTime FromUnixMillis(std::int64_t millis);

}  // namespace llmbox::common
