// hub/boxes/live_views.h
//
// What the spokes last said of each box's network, so that get_llmbox answers from the hub
// instead of asking the box's spoke on every call (issue 17: a get with 500 spokes and 20,000
// boxes in under 5 ms). An entry belongs to one record: it carries the record's token hash,
// and a box id taken again by a new box never sees the old box's entry.
//
//   LiveViews views(clock, {.max_age = 60s});
//   LiveViews::Ticket ticket = views.Begin(record.spoke);        // before asking the spoke
//   views.Put(record.box_id, record.token_hash, record.spoke, box.at, box.network, ticket);
//   if (auto network = views.Fresh(record.box_id, record.token_hash)) { ... no spoke call ... }
//   views.Forget(record.box_id, record.spoke);   // an exec, a code, a destroy: ask next time
//   views.ApplyFeed(spoke, health.changes_at, health.changes_all, health.changes);  // a round
//
// Filled by the spokes' answers that carry the box's latest refusals (create, which has none
// yet, get and set_llmbox_network).
//
// How long an entry answers. A spoke with a change feed (spoke/service/change_feed.h) stamps
// each answer with its feed position and lists, in every health answer, the boxes changed after
// the position the hub last applied (Position). An entry of such a spoke ("tracked") answers
// until its box's change is applied (ApplyFeed), at most max_age_tracked, and only while the
// spoke's feed was heard within max_age (a spoke that stops answering its health checks stops
// vouching for its entries). Other entries (a spoke without a feed, an answer older than what
// was applied already) answer for max_age. Anything the hub does to a box (an exec, a code, a
// network change) Forgets its entry. So what get_llmbox shows of a box's network is at most a
// health round behind its spoke (max_age without a feed), and live after anything the hub did.
//
// Races: an answer that was in flight while its box was forgotten (a Forget, an applied change
// of the box, whether it had an entry or not) or all of its spoke's were (a new epoch, `all`)
// is not kept (its Ticket predates that), so a change applied while a get was asking the spoke
// is never covered up by the get's older answer. Other boxes' forgets do not hold it back.
//
// Bounded: at most max_entries; when full, the entries least recently written go first.
// Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "hub/cluster/spoke_client.h"

namespace llmbox::hub::boxes {

struct LiveViewOptions {
  // How long an untracked entry answers get_llmbox without a spoke call, and how recently a
  // tracked entry's spoke must have been heard; 0: never (every get asks).
  std::chrono::milliseconds max_age{60'000};
  // How long a tracked entry answers at most, even when its spoke reports no change.
  std::chrono::milliseconds max_age_tracked{600'000};
  std::size_t max_entries = 200'000;
};

class LiveViews {
 public:
  // Taken before asking a spoke; a Put shows it.
  using Ticket = std::uint64_t;

  // `clock` must outlive the cache.
  LiveViews(common::Clock& clock, LiveViewOptions options);

  // Before a call to `spoke` whose answer will be Put.
  Ticket Begin(std::string_view spoke);
  // The box's network, its latest refusals included, as its spoke answered it at feed position
  // `at`; not kept when an entry of the spoke was forgotten since `ticket` was taken.
  void Put(std::string_view box_id, std::string_view token_hash, std::string_view spoke,
           const cluster::FeedPosition& at, cluster::BoxNetwork network, Ticket ticket);
  // The network of the record with this token hash, while its entry answers (see above).
  std::optional<cluster::BoxNetwork> Fresh(std::string_view box_id, std::string_view token_hash);
  // Drops the box's entry (nothing when none); an answer from `spoke` in flight is not kept.
  void Forget(std::string_view box_id, std::string_view spoke);

  // A health answer of `spoke`: its feed position now, whether every box may have changed, and
  // the boxes (canonical ids) changed after Position(spoke) with their latest change's number.
  // Drops the entries those changes make stale (all of the spoke's with `all` or another epoch)
  // and notes the position. A position with epoch 0 (a spoke without a feed) leaves its entries
  // untracked.
  void ApplyFeed(std::string_view spoke, const cluster::FeedPosition& at, bool all,
                 const std::vector<std::pair<std::string, std::uint64_t>>& changes);
  // The position the spoke's next health call names ({0, 0} before the first).
  cluster::FeedPosition Position(std::string_view spoke) const;

  std::size_t size() const;

 private:
  struct Entry {
    std::string token_hash;
    std::string spoke;
    cluster::FeedPosition at;  // {0, 0}: untracked
    cluster::BoxNetwork network;
    common::Clock::SteadyTime put_at;
    std::list<std::string>::iterator order;  // its place in order_
  };
  struct Feed {
    cluster::FeedPosition applied;
    common::Clock::SteadyTime heard_at{};
    Ticket forgotten_at = 0;      // counter_ when all its entries were last forgotten
    std::set<std::string> boxes;  // canonical ids of its entries
  };
  // Which of forgotten_ a box id counts in.
  static std::size_t Slot(std::string_view canonical_id);
  // Drops an entry (mu_ held) and marks its box forgotten.
  void EraseLocked(std::map<std::string, Entry, std::less<>>::iterator it);

  common::Clock& clock_;
  const LiveViewOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // by canonical box id
  std::list<std::string> order_;                    // canonical ids, least recently written first
  std::map<std::string, Feed, std::less<>> feeds_;  // by spoke name
  // Forgetting, per box: counter_ moves at each forget, and forgotten_ holds, per slot of box
  // ids (hashed: a collision only drops an answer more), the counter at its last forget.
  static constexpr std::size_t kSlots = 4096;
  Ticket counter_ = 0;
  std::array<Ticket, kSlots> forgotten_{};
};

}  // namespace llmbox::hub::boxes
