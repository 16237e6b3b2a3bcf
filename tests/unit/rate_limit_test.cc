// The activation page's fixed-window rate limiter (hub/activation/rate_limit.h) on a fake
// clock.
#include "hub/activation/rate_limit.h"

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "tests/fakes/fake_clock.h"

namespace llmbox::hub::activation {
namespace {

using namespace std::chrono_literals;

TEST_CASE("a key gets its limit per window and a refusal says when the window ends",
          "[rate-limit]") {
  testing::FakeClock clock;
  RateLimiter limiter(clock, {.limit = 2, .window = 600s});
  CHECK_FALSE(limiter.Take("a").has_value());
  clock.Advance(100s);
  CHECK_FALSE(limiter.Take("a").has_value());
  CHECK(limiter.Take("a") == std::chrono::seconds(500));
  CHECK_FALSE(limiter.Take("b").has_value());  // keys are independent
  clock.Advance(500s);
  CHECK_FALSE(limiter.Take("a").has_value());
}

TEST_CASE("an attempt given back is available again, and no more than was taken comes back",
          "[rate-limit]") {
  testing::FakeClock clock;
  RateLimiter limiter(clock, {.limit = 1, .window = 600s});
  CHECK_FALSE(limiter.Take("a").has_value());
  limiter.GiveBack("a");
  CHECK_FALSE(limiter.Take("a").has_value());
  CHECK(limiter.Take("a").has_value());
  // Giving back more than was taken, or a key never seen, changes nothing.
  limiter.GiveBack("a");
  limiter.GiveBack("a");
  limiter.GiveBack("never");
  CHECK_FALSE(limiter.Take("a").has_value());
  CHECK(limiter.Take("a").has_value());
}

TEST_CASE("a flood of fresh keys keeps the limiter's memory bounded", "[rate-limit]") {
  testing::FakeClock clock;
  RateLimiter limiter(clock, {.limit = 1, .window = 600s, .max_keys = 100});
  for (int i = 0; i < 10'000; ++i) CHECK_FALSE(limiter.Take(std::to_string(i)).has_value());
  // The newest keys are still counted.
  CHECK(limiter.Take("9999").has_value());
}

}  // namespace
}  // namespace llmbox::hub::activation
