// hub/activation/rate_limit.cc
#include "hub/activation/rate_limit.h"

#include <algorithm>
#include <vector>

namespace llmbox::hub::activation {

std::optional<std::chrono::seconds> RateLimiter::Take(std::string_view key) {
  std::lock_guard lock(mu_);
  const common::Clock::SteadyTime now = clock_.SteadyNow();
  auto it = windows_.find(key);
  if (it != windows_.end() && now - it->second.start >= options_.window) {
    it->second = Window{.start = now, .count = 0};
  }
  if (it == windows_.end()) {
    if (windows_.size() >= options_.max_keys) MakeRoom(now);
    it = windows_.emplace(std::string(key), Window{.start = now, .count = 0}).first;
  }
  if (it->second.count >= options_.limit) {
    const auto left = options_.window - (now - it->second.start);
    // Rounded up, so "retry after" never names a moment still inside the window.
    return std::chrono::ceil<std::chrono::seconds>(left);
  }
  ++it->second.count;
  return std::nullopt;
}

void RateLimiter::GiveBack(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = windows_.find(key);
  if (it == windows_.end() || it->second.count == 0) return;
  if (clock_.SteadyNow() - it->second.start >= options_.window) return;
  --it->second.count;
}

void RateLimiter::MakeRoom(common::Clock::SteadyTime now) {
  std::erase_if(windows_,
                [&](const auto& entry) { return now - entry.second.start >= options_.window; });
  if (windows_.size() < options_.max_keys) return;
  // Still full of live windows: forget the oldest tenth, which a flood of fresh keys would
  // push out anyway.
  std::vector<std::pair<common::Clock::SteadyTime, std::string>> by_age;
  by_age.reserve(windows_.size());
  for (const auto& [key, window] : windows_) by_age.emplace_back(window.start, key);
  const std::size_t drop = std::max<std::size_t>(1, by_age.size() / 10);
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   by_age.end());
  for (std::size_t i = 0; i < drop; ++i) windows_.erase(by_age[i].second);
}

}  // namespace llmbox::hub::activation
