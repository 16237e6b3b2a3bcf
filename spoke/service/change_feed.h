// spoke/service/change_feed.h
//
// Which of this spoke's boxes changed, and when, so that the hub can keep what the spoke last
// said of a box (hub/boxes/live_views.h) until the box changes, instead of asking again on a
// timer (issue 17: get_llmbox in under 5 ms with 500 spokes and 20,000 boxes).
//
// The feed holds, per box, a fingerprint of what get_llmbox shows of it that can change by
// itself (its phase, session URL, last error, activation attempts and a mark that moves with
// each refused connection: BoxView::refusal_mark) and the sequence number at which that
// fingerprint last changed. Every answer that shows a box (GetBox, CreateBox, SetBoxNetwork)
// observes it, and every Health observes all of them; a box whose fingerprint differs from the
// last one observed, a box seen for the first time and a box no longer listed take the next
// sequence number. The answers carry the position (epoch, sequence) at which they were taken,
// and Health returns the boxes changed after the position the hub names: a view taken at
// position p is current while no change of its box after p was reported.
//
//   ChangeFeed feed(RandomEpoch());
//   uint64_t at = feed.Observe(view);               // in a GetBox answer, with feed.epoch()
//   feed.ObserveAll(views);                         // in Health, when the engine listed them
//   ChangeFeed::Changes changes = feed.Since(hub_epoch, hub_seq, /*limit=*/4096);
//
// Epoch: chosen at random when the spoke starts, so that a restarted spoke (whose sequence
// starts again, and whose memory of fingerprints is gone) is told apart: a position of another
// epoch gets `all` (every view of this spoke may be stale). So does a position older than the
// oldest removal the feed still remembers (at most max_removed, the oldest dropped first), and
// an answer that would list more than `limit` boxes.
//
// Bounded: one entry per box the spoke holds plus at most max_removed removals; fingerprints
// are short (the session URL and error are capped by the box manager). Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "spoke/box/manager.h"

namespace llmbox::spoke::service {

class ChangeFeed {
 public:
  // `epoch` must not be 0 (0 means "no feed" on the wire).
  explicit ChangeFeed(std::uint64_t epoch, std::size_t max_removed = 4096);

  // A random non-zero epoch.
  static std::uint64_t RandomEpoch();

  std::uint64_t epoch() const { return epoch_; }

  // Notes what `box` looks like now; returns the position of this observation (the feed's
  // newest sequence number after it). A box in kCreating is not noted (its create's answer
  // notes it once made), and the current position is returned.
  std::uint64_t Observe(const box::BoxView& box);

  // Notes every box the spoke lists now (a complete list: boxes not in it were removed).
  // Boxes in kCreating are neither noted nor counted as removed.
  void ObserveAll(const std::vector<box::BoxView>& boxes);

  struct Changes {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;  // the newest sequence number
    bool all = false;       // the position cannot be answered: every box may have changed
    // Boxes (canonical ids) changed after the position, each with its latest change's number.
    std::vector<std::pair<std::string, std::uint64_t>> boxes;
  };
  // The changes after (epoch, seq); `all` for another epoch, a position older than the
  // removals kept, a position from the future, or more than `limit` boxes changed.
  Changes Since(std::uint64_t epoch, std::uint64_t seq, std::size_t limit) const;

 private:
  struct Entry {
    std::string fingerprint;
    std::uint64_t seq = 0;
  };
  static std::string Fingerprint(const box::BoxView& box);
  void NoteLocked(const std::string& id, std::string fingerprint);

  const std::uint64_t epoch_;
  const std::size_t max_removed_;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;                         // the newest sequence number given
  std::map<std::string, Entry> boxes_;            // by canonical id: the boxes held now
  std::map<std::uint64_t, std::string> removed_;  // removal seq -> canonical id, oldest first
  std::uint64_t removed_floor_ = 0;               // positions below this lost removals: `all`
};

}  // namespace llmbox::spoke::service
