// hub/activation/rate_limit.h
//
// Counts attempts per key (an activation token, a client address) in fixed windows, so the
// activation page can refuse a burst of code submissions before they reach a box.
//
//   RateLimiter per_address(clock, {.limit = 30, .window = std::chrono::minutes(15)});
//   if (auto wait = per_address.Take(http::AddressKey(request.client_address))) {
//     return TooMany(*wait);
//   }
//
// Memory is bounded by Options::max_keys: expired windows are dropped first, then the oldest.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace llmbox::hub::activation {

class RateLimiter {
 public:
  struct Options {
    int limit = 10;  // attempts per window and key
    std::chrono::seconds window{900};
    std::size_t max_keys = 100'000;
  };

  RateLimiter(common::Clock& clock, Options options) : clock_(clock), options_(options) {}

  // Counts one attempt for `key`. nullopt when it is within the limit; otherwise the time
  // until the key's window ends (the attempt is not counted).
  std::optional<std::chrono::seconds> Take(std::string_view key);

  // Undoes one Take of `key` that succeeded in the current window, for an attempt another
  // limit then refused (so a refusal costs nothing anywhere). No-op when the window has
  // ended or the key is unknown.
  void GiveBack(std::string_view key);

 private:
  struct Window {
    common::Clock::SteadyTime start;
    int count = 0;
  };
  void MakeRoom(common::Clock::SteadyTime now);

  common::Clock& clock_;
  const Options options_;
  std::mutex mu_;
  std::map<std::string, Window, std::less<>> windows_;
};

}  // namespace llmbox::hub::activation
