// hub/boxes/live_views.cc
#include "hub/boxes/live_views.h"

#include <utility>

#include "common/validate.h"

namespace llmbox::hub::boxes {

LiveViews::LiveViews(common::Clock& clock, LiveViewOptions options)
    : clock_(clock), options_(options) {}

void LiveViews::Put(std::string_view box_id, std::string_view token_hash,
                    cluster::BoxNetwork network) {
  if (options_.max_age.count() <= 0 || options_.max_entries == 0) return;
  std::string key = common::CanonicalBoxId(box_id);
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.token_hash != token_hash) {
    // Another record under the same id: nothing of the old box carries over.
    order_.erase(it->second.order);
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    while (entries_.size() >= options_.max_entries) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    it = entries_.emplace(std::move(key), Entry{.token_hash = std::string(token_hash)}).first;
    it->second.order = std::prev(order_.end());
  } else {
    order_.splice(order_.end(), order_, it->second.order);
  }
  it->second.network = std::move(network);
  it->second.at = now;
}

std::optional<cluster::BoxNetwork> LiveViews::Fresh(std::string_view box_id,
                                                    std::string_view token_hash) {
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  auto it = entries_.find(common::CanonicalBoxId(box_id));
  if (it == entries_.end() || it->second.token_hash != token_hash ||
      now - it->second.at >= options_.max_age) {
    return std::nullopt;
  }
  return it->second.network;
}

void LiveViews::Forget(std::string_view box_id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(common::CanonicalBoxId(box_id));
  if (it == entries_.end()) return;
  order_.erase(it->second.order);
  entries_.erase(it);
}

std::size_t LiveViews::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace llmbox::hub::boxes
