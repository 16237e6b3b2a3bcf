#include "tests/fakes/fake_clock.h"

#include <vector>

namespace llmbox::testing {

struct FakeClock::TimerState {
  std::function<void()> callback;
  bool cancelled = false;
};

class FakeClock::FakeTimer final : public common::Timer {
 public:
  FakeTimer(FakeClock& clock, std::shared_ptr<TimerState> state)
      : clock_(clock), state_(std::move(state)) {}
  ~FakeTimer() override { Cancel(); }
  void Cancel() override {
    std::lock_guard lock(clock_.mu_);
    state_->cancelled = true;
  }

 private:
  FakeClock& clock_;
  std::shared_ptr<TimerState> state_;
};

FakeClock::FakeClock()
    : wall_start_(std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 56))),
      steady_start_(std::chrono::steady_clock::time_point(std::chrono::hours(1))) {}

common::Clock::WallTime FakeClock::Now() {
  std::lock_guard lock(mu_);
  return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(elapsed_);
}

common::Clock::SteadyTime FakeClock::SteadyNow() {
  std::lock_guard lock(mu_);
  return steady_start_ + elapsed_;
}

void FakeClock::SleepFor(std::chrono::nanoseconds duration) {
  std::unique_lock lock(mu_);
  const SteadyTime until = steady_start_ + elapsed_ + duration;
  auto slot = sleepers_.insert(until);
  changed_.notify_all();
  changed_.wait(lock, [&] { return steady_start_ + elapsed_ >= until; });
  sleepers_.erase(slot);
  changed_.notify_all();
}

bool FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          SteadyTime deadline, const std::function<bool()>& pred) {
  Waiter waiter{deadline, lock.mutex(), &cv};
  {
    std::lock_guard clock_lock(mu_);
    waiters_.insert(&waiter);
  }
  changed_.notify_all();
  bool result;
  for (;;) {
    if (pred()) {
      result = true;
      break;
    }
    if (SteadyNow() >= deadline) {
      result = pred();
      break;
    }
    // Advance() takes the waiter's mutex before notifying, so this wait cannot miss it.
    cv.wait(lock);
  }
  // An Advance() may be about to notify this waiter: let it finish before the waiter goes.
  lock.unlock();
  {
    std::unique_lock clock_lock(mu_);
    waiters_.erase(&waiter);
    changed_.wait(clock_lock, [&] { return waiter.notifying == 0; });
  }
  changed_.notify_all();
  lock.lock();
  return result;
}

std::unique_ptr<common::Timer> FakeClock::RunAfter(std::chrono::nanoseconds delay,
                                                   std::function<void()> callback) {
  auto state = std::make_shared<TimerState>();
  state->callback = std::move(callback);
  std::lock_guard lock(mu_);
  timers_.emplace(steady_start_ + elapsed_ + delay, state);
  return std::make_unique<FakeTimer>(*this, state);
}

void FakeClock::Advance(std::chrono::nanoseconds duration) {
  std::unique_lock lock(mu_);
  const SteadyTime target = steady_start_ + elapsed_ + duration;
  for (;;) {
    auto first = timers_.begin();
    if (first == timers_.end() || first->first > target) break;
    auto [when, state] = *first;
    timers_.erase(first);
    if (when > steady_start_ + elapsed_) elapsed_ = when - steady_start_;
    if (state->cancelled) continue;
    state->cancelled = true;  // fires once
    lock.unlock();
    state->callback();
    lock.lock();
  }
  elapsed_ = target - steady_start_;
  std::vector<Waiter*> due;
  for (Waiter* waiter : waiters_) {
    if (waiter->deadline <= target) {
      ++waiter->notifying;
      due.push_back(waiter);
    }
  }
  changed_.notify_all();
  lock.unlock();
  for (Waiter* waiter : due) {
    std::lock_guard waiter_lock(*waiter->mu);
    waiter->cv->notify_all();
  }
  lock.lock();
  for (Waiter* waiter : due) --waiter->notifying;
  changed_.notify_all();
}

bool FakeClock::WaitForWaiters(int count) {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] {
    const SteadyTime now = steady_start_ + elapsed_;
    int waiting = 0;
    for (const SteadyTime until : sleepers_) waiting += until > now ? 1 : 0;
    for (const Waiter* waiter : waiters_) waiting += waiter->deadline > now ? 1 : 0;
    return waiting >= count;
  });
}

int FakeClock::PendingTimers() {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [when, state] : timers_) n += state->cancelled ? 0 : 1;
  return n;
}

}  // namespace llmbox::testing
