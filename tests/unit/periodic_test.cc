#include "common/periodic.h"

#include <atomic>

#include <catch2/catch.hpp>

#include "tests/fakes/fake_clock.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;

TEST_CASE("a periodic task runs once per interval of the clock, never before", "[periodic]") {
  FakeClock clock;
  std::atomic<int> calls{0};
  common::PeriodicTask task(clock, 30s, [&] { ++calls; });
  task.Start();
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(29s);
  CHECK(task.runs() == 0);
  clock.Advance(1s);
  REQUIRE(task.WaitForRuns(1, clock.SteadyNow() + 1h));
  CHECK(calls == 1);
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(30s);
  REQUIRE(task.WaitForRuns(2, clock.SteadyNow() + 1h));
  CHECK(calls == 2);
  task.Stop();
  CHECK(calls == 2);
}

TEST_CASE("RunNow runs a periodic task without waiting for its interval", "[periodic]") {
  FakeClock clock;
  std::atomic<int> calls{0};
  common::PeriodicTask task(clock, 1h, [&] { ++calls; });
  task.Start();
  task.RunNow();
  REQUIRE(task.WaitForRuns(1, clock.SteadyNow() + 1h));
  CHECK(calls == 1);
}

TEST_CASE("a stopped periodic task does not run again, and Stop is idempotent", "[periodic]") {
  FakeClock clock;
  std::atomic<int> calls{0};
  common::PeriodicTask task(clock, 1s, [&] { ++calls; });
  task.Start();
  task.Stop();
  task.Stop();
  clock.Advance(10s);
  task.Start();  // a stopped task stays stopped
  clock.Advance(10s);
  CHECK(calls == 0);
  CHECK(task.runs() == 0);
}

}  // namespace
}  // namespace llmbox::testing
