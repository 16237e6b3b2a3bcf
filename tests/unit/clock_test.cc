#include "common/clock.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/fakes/fake_clock.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;

TEST_CASE("fake timers fire in deadline order when advanced, and not before", "[clock]") {
  FakeClock clock;
  std::vector<int> fired;
  auto late = clock.RunAfter(30s, [&] { fired.push_back(30); });
  auto early = clock.RunAfter(10s, [&] { fired.push_back(10); });
  auto never = clock.RunAfter(60s, [&] { fired.push_back(60); });
  clock.Advance(9s);
  CHECK(fired.empty());
  clock.Advance(25s);
  CHECK(fired == std::vector<int>{10, 30});
  CHECK(clock.PendingTimers() == 1);
  clock.Advance(1s);
  CHECK(fired == std::vector<int>{10, 30});
}

TEST_CASE("a timer sees the time it was due at while it fires", "[clock]") {
  FakeClock clock;
  const auto start = clock.SteadyNow();
  common::Clock::SteadyTime seen;
  auto timer = clock.RunAfter(5s, [&] { seen = clock.SteadyNow(); });
  clock.Advance(1min);
  CHECK(seen - start == 5s);
  CHECK(clock.SteadyNow() - start == 1min);
}

TEST_CASE("a cancelled or destroyed fake timer never fires", "[clock]") {
  FakeClock clock;
  int fired = 0;
  auto cancelled = clock.RunAfter(1s, [&] { ++fired; });
  cancelled->Cancel();
  {
    auto dropped = clock.RunAfter(1s, [&] { ++fired; });
  }
  clock.Advance(2s);
  CHECK(fired == 0);
}

TEST_CASE("a deadline wait wakes with false when the fake clock passes the deadline", "[clock]") {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    result = clock.WaitUntil(lock, cv, clock.SteadyNow() + 30s, [] { return false; }) ? 1 : 0;
  });
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(29s);
  CHECK(result == -1);
  clock.Advance(1s);
  waiter.join();
  CHECK(result == 0);
}

TEST_CASE("a deadline wait returns true when notified with its condition met", "[clock]") {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    result = clock.WaitUntil(lock, cv, clock.SteadyNow() + 30s, [&] { return ready; }) ? 1 : 0;
  });
  REQUIRE(clock.WaitForWaiters(1));
  {
    std::lock_guard lock(mu);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  CHECK(result == 1);
}

TEST_CASE("a fake sleep returns only once another thread advances past it", "[clock]") {
  FakeClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(10s);
    woke = true;
  });
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(5s);
  CHECK_FALSE(woke);
  clock.Advance(5s);
  sleeper.join();
  CHECK(woke);
}

TEST_CASE("system clock timers fire, and cancelled ones do not", "[clock]") {
  common::SystemClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  int cancelled_fired = 0;
  auto cancelled = clock.RunAfter(1ms, [&] { ++cancelled_fired; });
  cancelled->Cancel();
  auto timer = clock.RunAfter(1ms, [&] {
    std::lock_guard lock(mu);
    fired = true;
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  // An upper bound on a real wait, not an assertion about how long it took.
  CHECK(clock.WaitUntil(lock, cv, clock.SteadyNow() + 10s, [&] { return fired; }));
  CHECK(cancelled_fired == 0);
}

TEST_CASE("a system timer may cancel itself from its own callback", "[clock]") {
  common::SystemClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::unique_ptr<common::Timer> timer;
  {
    std::lock_guard lock(mu);
    timer = clock.RunAfter(1ms, [&] {
      std::lock_guard inner(mu);
      timer->Cancel();  // must not deadlock
      done = true;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  CHECK(clock.WaitUntil(lock, cv, clock.SteadyNow() + 10s, [&] { return done; }));
}

TEST_CASE("a wall time becomes Unix milliseconds and back, rounded toward the past", "[clock]") {
  using common::FromUnixMillis;
  using common::ToUnixMillis;
  using WallTime = common::Clock::WallTime;
  CHECK(ToUnixMillis(WallTime{}) == 0);
  CHECK(FromUnixMillis(0) == WallTime{});
  // 2026-11-30T17:00:00.123Z
  const std::int64_t ms = 1796058000123;
  CHECK(ToUnixMillis(FromUnixMillis(ms)) == ms);
  CHECK(FromUnixMillis(ms) == WallTime{} + std::chrono::milliseconds(ms));
  CHECK(ToUnixMillis(FromUnixMillis(ms) + 999us) == ms);
  CHECK(ToUnixMillis(WallTime{} - 1us) == -1);
  CHECK(FromUnixMillis(-1500) == WallTime{} - 1500ms);
  FakeClock clock;
  const WallTime now = clock.Now();
  clock.Advance(2s);
  CHECK(ToUnixMillis(clock.Now()) - ToUnixMillis(now) == 2000);
}

TEST_CASE("Unix milliseconds beyond what a wall time holds saturate instead of wrapping",
          "[clock]") {
  using WallTime = common::Clock::WallTime;
  CHECK(common::FromUnixMillis(std::numeric_limits<std::int64_t>::max()) == WallTime::max());
  CHECK(common::FromUnixMillis(std::numeric_limits<std::int64_t>::min()) == WallTime::min());
  CHECK(common::FromUnixMillis(std::int64_t{1} << 62) == WallTime::max());
  // The largest representable milliseconds still convert exactly.
  const std::int64_t edge = common::ToUnixMillis(WallTime::max());
  CHECK(common::ToUnixMillis(common::FromUnixMillis(edge)) == edge);
}

}  // namespace
}  // namespace llmbox::testing
