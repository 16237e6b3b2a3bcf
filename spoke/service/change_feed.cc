// spoke/service/change_feed.cc
#include "spoke/service/change_feed.h"

#include <random>
#include <set>

#include "common/validate.h"

namespace llmbox::spoke::service {

ChangeFeed::ChangeFeed(std::uint64_t epoch, std::size_t max_removed)
    : epoch_(epoch == 0 ? 1 : epoch), max_removed_(max_removed) {}

std::uint64_t ChangeFeed::RandomEpoch() {
  std::random_device random;
  std::uint64_t epoch = 0;
  while (epoch == 0) {
    epoch = (static_cast<std::uint64_t>(random()) << 32) ^ static_cast<std::uint64_t>(random());
  }
  return epoch;
}

std::string ChangeFeed::Fingerprint(const box::BoxView& box) {
  // What get_llmbox shows of the box that can change: its phase, session URL, error, attempts,
  // refusals (their mark), and its network policy (which changes through SetBoxNetwork, whose
  // answer the hub keeps, but a hub that missed that answer must hear of it too). List fills
  // the policy once the spoke has read it (a Get reads it), so a box's first Get may count as
  // a change: one more call, never a stale view.
  std::string out(box::PhaseName(box.phase));
  for (const std::string* part : {&box.session_url, &box.last_error}) out += "\n" + *part;
  out += "\n" + std::to_string(box.activation_attempts) + "\n" + std::to_string(box.refusal_mark);
  out += "\n" + std::string(egress::ModeName(box.network.mode));
  for (const std::string& entry : box.network.allow) out += "\n+" + entry;
  return out;
}

void ChangeFeed::NoteLocked(const std::string& id, std::string fingerprint) {
  auto [it, added] = boxes_.try_emplace(id);
  if (!added && it->second.fingerprint == fingerprint) return;
  it->second.fingerprint = std::move(fingerprint);
  it->second.seq = ++seq_;
}

std::uint64_t ChangeFeed::Observe(const box::BoxView& box) {
  std::string id = common::CanonicalBoxId(box.box_id);
  std::string fingerprint = Fingerprint(box);
  std::lock_guard lock(mu_);
  if (box.phase != box::BoxPhase::kCreating) NoteLocked(id, std::move(fingerprint));
  return seq_;
}

void ChangeFeed::ObserveAll(const std::vector<box::BoxView>& boxes) {
  std::set<std::string> listed;
  std::vector<std::pair<std::string, std::string>> noted;
  for (const box::BoxView& box : boxes) {
    std::string id = common::CanonicalBoxId(box.box_id);
    listed.insert(id);
    if (box.phase != box::BoxPhase::kCreating) noted.emplace_back(std::move(id), Fingerprint(box));
  }
  std::lock_guard lock(mu_);
  for (auto& [id, fingerprint] : noted) NoteLocked(id, std::move(fingerprint));
  for (auto it = boxes_.begin(); it != boxes_.end();) {
    if (listed.count(it->first) != 0) {
      ++it;
      continue;
    }
    removed_.emplace(++seq_, it->first);
    it = boxes_.erase(it);
  }
  while (removed_.size() > max_removed_) {
    removed_floor_ = removed_.begin()->first;
    removed_.erase(removed_.begin());
  }
}

ChangeFeed::Changes ChangeFeed::Since(std::uint64_t epoch, std::uint64_t seq,
                                      std::size_t limit) const {
  std::lock_guard lock(mu_);
  Changes changes{.epoch = epoch_, .seq = seq_};
  if (epoch != epoch_ || seq < removed_floor_ || seq > seq_) {
    changes.all = true;
    return changes;
  }
  for (const auto& [id, entry] : boxes_) {
    if (entry.seq > seq) changes.boxes.emplace_back(id, entry.seq);
  }
  for (auto it = removed_.upper_bound(seq); it != removed_.end(); ++it) {
    changes.boxes.emplace_back(it->second, it->first);
  }
  if (changes.boxes.size() > limit) {
    changes.boxes.clear();
    changes.all = true;
  }
  return changes;
}

}  // namespace llmbox::spoke::service
