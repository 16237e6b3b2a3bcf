#include "common/clock.h"

#include <ctime>
#include <map>
#include <thread>

namespace llmbox::common {

// Shared between a Timer handle and the queue entry.
struct Handle {
  std::mutex mu;
  std::condition_variable done;
  bool cancelled = false;
  bool running = false;
  std::thread::id runner;
};

// One background thread runs every timer of a SystemClock in deadline order.
struct SystemClock::State {
  struct Entry {
    std::function<void()> callback;
    std::shared_ptr<Handle> handle;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::multimap<SteadyTime, Entry> queue;
  bool stopping = false;
  std::thread thread;

  void Run();
};

namespace {

class SystemTimer final : public Timer {
 public:
  explicit SystemTimer(std::shared_ptr<Handle> handle) : handle_(std::move(handle)) {}
  ~SystemTimer() override { Cancel(); }
  void Cancel() override {
    std::unique_lock lock(handle_->mu);
    handle_->cancelled = true;
    if (handle_->running && handle_->runner != std::this_thread::get_id()) {
      handle_->done.wait(lock, [&] { return !handle_->running; });
    }
  }

 private:
  std::shared_ptr<Handle> handle_;
};

}  // namespace

void SystemClock::State::Run() {
  std::unique_lock lock(mu);
  while (!stopping) {
    if (queue.empty()) {
      cv.wait(lock);
      continue;
    }
    auto first = queue.begin();
    if (first->first > std::chrono::steady_clock::now()) {
      cv.wait_until(lock, first->first);
      continue;
    }
    Entry entry = std::move(first->second);
    queue.erase(first);
    {
      std::lock_guard handle_lock(entry.handle->mu);
      if (entry.handle->cancelled) continue;
      entry.handle->running = true;
      entry.handle->runner = std::this_thread::get_id();
    }
    lock.unlock();
    entry.callback();
    {
      std::lock_guard handle_lock(entry.handle->mu);
      entry.handle->running = false;
    }
    entry.handle->done.notify_all();
    lock.lock();
  }
}

SystemClock::SystemClock() : state_(std::make_shared<State>()) {
  state_->thread = std::thread([state = state_] { state->Run(); });
}

SystemClock::~SystemClock() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  state_->thread.join();
}

SystemClock& SystemClock::Get() {
  static SystemClock* clock = new SystemClock();
  return *clock;
}

Clock::WallTime SystemClock::Now() { return std::chrono::system_clock::now(); }

Clock::SteadyTime SystemClock::SteadyNow() { return std::chrono::steady_clock::now(); }

void SystemClock::SleepFor(std::chrono::nanoseconds duration) {
  std::this_thread::sleep_for(duration);
}

bool SystemClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            SteadyTime deadline, const std::function<bool()>& pred) {
  return cv.wait_until(lock, deadline, pred);
}

std::unique_ptr<Timer> SystemClock::RunAfter(std::chrono::nanoseconds delay,
                                             std::function<void()> callback) {
  auto handle = std::make_shared<Handle>();
  {
    std::lock_guard lock(state_->mu);
    state_->queue.emplace(SteadyNow() + delay, State::Entry{std::move(callback), handle});
  }
  state_->cv.notify_all();
  return std::make_unique<SystemTimer>(std::move(handle));
}

std::int64_t ToUnixMillis(Clock::WallTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

Clock::WallTime FromUnixMillis(std::int64_t millis) {
  using Ticks = Clock::WallTime::duration;
  constexpr auto kMax = std::chrono::floor<std::chrono::milliseconds>(Ticks::max()).count();
  constexpr auto kMin = std::chrono::ceil<std::chrono::milliseconds>(Ticks::min()).count();
  if (millis > kMax) return Clock::WallTime::max();
  if (millis < kMin) return Clock::WallTime::min();
  return Clock::WallTime(std::chrono::duration_cast<Ticks>(std::chrono::milliseconds(millis)));
}

std::string FormatUtcSeconds(std::int64_t millis) {
  std::int64_t seconds = millis / 1000;
  if (millis < 0 && millis % 1000 != 0) --seconds;  // down, toward the past
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace llmbox::common
