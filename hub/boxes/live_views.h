// hub/boxes/live_views.h
//
// What the spokes last said of each box's network, so that get_llmbox answers from the hub
// instead of asking the box's spoke on every call (issue 17: a get with 500 spokes and 20,000
// boxes in under 5 ms). An entry belongs to one record: it carries the record's token hash,
// and a box id taken again by a new box never sees the old box's entry.
//
//   LiveViews views(clock, {.max_age = 60s});
//   views.Put(record.box_id, record.token_hash, box.network);
//   if (auto network = views.Fresh(record.box_id, record.token_hash)) { ... no spoke call ... }
//   views.Forget(record.box_id);   // an exec, a code, a destroy: the next get asks the spoke
//
// Filled by the spokes' answers that carry the box's latest refusals (create, which has none
// yet, get and set_llmbox_network). An entry older than max_age is not Fresh: the next get asks
// the spoke again. So what get_llmbox shows of a box's network (its refusals: connections the
// box made by itself) is at most max_age old, and live after anything the hub did to the box
// (an exec, a code, a network change: they Forget its entry).
//
// Bounded: at most max_entries; when full, the entries least recently written go first.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "hub/cluster/spoke_client.h"

namespace llmbox::hub::boxes {

struct LiveViewOptions {
  // How long an entry answers get_llmbox without a spoke call; 0: never (every get asks).
  std::chrono::milliseconds max_age{60'000};
  std::size_t max_entries = 200'000;
};

class LiveViews {
 public:
  // `clock` must outlive the cache.
  LiveViews(common::Clock& clock, LiveViewOptions options);

  // The box's network, its latest refusals included, as its spoke answered it now.
  void Put(std::string_view box_id, std::string_view token_hash, cluster::BoxNetwork network);
  // The network of the record with this token hash, when its entry is younger than max_age.
  std::optional<cluster::BoxNetwork> Fresh(std::string_view box_id, std::string_view token_hash);
  // Drops the box's entry (nothing when none).
  void Forget(std::string_view box_id);

  std::size_t size() const;

 private:
  struct Entry {
    std::string token_hash;
    cluster::BoxNetwork network;
    common::Clock::SteadyTime at;
    std::list<std::string>::iterator order;  // its place in order_
  };

  common::Clock& clock_;
  const LiveViewOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // by canonical box id
  std::list<std::string> order_;  // canonical ids, least recently written first
};

}  // namespace llmbox::hub::boxes
