// hub/boxes/live_views.cc
#include "hub/boxes/live_views.h"

#include <utility>

#include "common/validate.h"

namespace llmbox::hub::boxes {

LiveViews::LiveViews(common::Clock& clock, LiveViewOptions options)
    : clock_(clock), options_(options) {}

LiveViews::Ticket LiveViews::Begin(std::string_view /*spoke*/) {
  std::lock_guard lock(mu_);
  return counter_;
}

std::size_t LiveViews::Slot(std::string_view canonical_id) {
  return std::hash<std::string_view>{}(canonical_id) % kSlots;
}

void LiveViews::EraseLocked(std::map<std::string, Entry, std::less<>>::iterator it) {
  if (auto feed = feeds_.find(it->second.spoke); feed != feeds_.end()) {
    feed->second.boxes.erase(it->first);
  }
  forgotten_[Slot(it->first)] = ++counter_;
  order_.erase(it->second.order);
  entries_.erase(it);
}

void LiveViews::Put(std::string_view box_id, std::string_view token_hash, std::string_view spoke,
                    const cluster::FeedPosition& at, cluster::BoxNetwork network, Ticket ticket) {
  if (options_.max_age.count() <= 0 || options_.max_entries == 0) return;
  std::string key = common::CanonicalBoxId(box_id);
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  Feed& feed = feeds_.try_emplace(std::string(spoke)).first->second;
  // The box (or every box of the spoke) was forgotten while the answer was on its way: the
  // answer may predate what made it forgotten.
  if (feed.forgotten_at > ticket || forgotten_[Slot(key)] > ticket) return;
  // Tracked only when its position is at or after what was applied of the same feed (an older
  // one may miss a change applied already; it answers for max_age like any untracked one).
  cluster::FeedPosition position = at;
  if (at.epoch == 0 || at.epoch != feed.applied.epoch || at.seq < feed.applied.seq) {
    position = {};
  }
  auto it = entries_.find(key);
  if (it != entries_.end() && (it->second.token_hash != token_hash || it->second.spoke != spoke)) {
    // Another record under the same id: nothing of the old box carries over.
    EraseLocked(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    while (entries_.size() >= options_.max_entries) EraseLocked(entries_.find(order_.front()));
    order_.push_back(key);
    feed.boxes.insert(key);
    it = entries_
             .emplace(std::move(key),
                      Entry{.token_hash = std::string(token_hash), .spoke = std::string(spoke)})
             .first;
    it->second.order = std::prev(order_.end());
  } else {
    order_.splice(order_.end(), order_, it->second.order);
  }
  it->second.at = position;
  it->second.network = std::move(network);
  it->second.put_at = now;
}

std::optional<cluster::BoxNetwork> LiveViews::Fresh(std::string_view box_id,
                                                    std::string_view token_hash) {
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  auto it = entries_.find(common::CanonicalBoxId(box_id));
  if (it == entries_.end() || it->second.token_hash != token_hash) return std::nullopt;
  const Entry& entry = it->second;
  const auto age = now - entry.put_at;
  bool tracked = false;
  if (entry.at.epoch != 0) {
    auto feed = feeds_.find(entry.spoke);
    tracked = feed != feeds_.end() && feed->second.applied.epoch == entry.at.epoch &&
              now - feed->second.heard_at < options_.max_age;
  }
  if (age >= (tracked ? options_.max_age_tracked : options_.max_age)) return std::nullopt;
  return entry.network;
}

void LiveViews::Forget(std::string_view box_id, std::string_view /*spoke*/) {
  const std::string key = common::CanonicalBoxId(box_id);
  std::lock_guard lock(mu_);
  // An answer about the box in flight now may predate what made the caller forget.
  forgotten_[Slot(key)] = ++counter_;
  auto it = entries_.find(key);
  if (it != entries_.end()) EraseLocked(it);
}

void LiveViews::ApplyFeed(std::string_view spoke, const cluster::FeedPosition& at, bool all,
                          const std::vector<std::pair<std::string, std::uint64_t>>& changes) {
  const auto now = clock_.SteadyNow();
  std::lock_guard lock(mu_);
  Feed& feed = feeds_.try_emplace(std::string(spoke)).first->second;
  const bool restarted = at.epoch != feed.applied.epoch;
  if (at.epoch != 0 && (all || restarted)) {
    // Every entry of the spoke may be stale, and every answer of it in flight.
    feed.forgotten_at = ++counter_;
    const std::set<std::string> boxes = feed.boxes;
    for (const std::string& id : boxes) {
      if (auto it = entries_.find(id); it != entries_.end()) EraseLocked(it);
    }
  } else if (at.epoch != 0) {
    for (const auto& [id, seq] : changes) {
      auto it = entries_.find(id);
      if (it == entries_.end()) {
        forgotten_[Slot(id)] = ++counter_;  // a get of it in flight may predate the change
        continue;
      }
      if (it->second.spoke != spoke) continue;
      // An entry taken after the change shows it already (a position past the spoke's own,
      // which only a lying spoke gives, shows nothing).
      if (it->second.at.epoch == at.epoch && it->second.at.seq >= seq &&
          it->second.at.seq <= at.seq) {
        continue;
      }
      EraseLocked(it);
    }
  }
  feed.applied = at;
  feed.heard_at = now;
}

cluster::FeedPosition LiveViews::Position(std::string_view spoke) const {
  std::lock_guard lock(mu_);
  auto it = feeds_.find(spoke);
  return it == feeds_.end() ? cluster::FeedPosition{} : it->second.applied;
}

std::size_t LiveViews::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace llmbox::hub::boxes
