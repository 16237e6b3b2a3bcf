#include "spoke/egress/egress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/status.h"

namespace llmbox::spoke::egress {

std::string HostEgress::ProxyUrl(const BoxNetwork& network) const {
  return absl::StrCat("http://", network.gateway, ":", proxy_.port());
}

absl::Status HostEgress::Restore(const std::vector<std::pair<BoxNetwork, BoxPolicy>>& boxes) {
  std::vector<BoxNetwork> networks;
  networks.reserve(boxes.size());
  for (const auto& [network, policy] : boxes) networks.push_back(network);
  // The rules first: until the proxy listens, a box reaches nothing at all.
  if (absl::Status st = firewall_.Reset(networks); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("restoring the host's box rules: ", st.message()));
  }
  {
    std::lock_guard lock(mu_);
    logged_.clear();
    for (const auto& [network, policy] : boxes) logged_[network.box_id] = {};
  }
  for (const auto& [network, policy] : boxes) {
    absl::Status st = proxy_.AddBox(network.box_id, network.gateway, policy, network.subnet);
    if (!st.ok()) {
      // The box stays fenced by its rules, without a way out; the others go on.
      spdlog::warn(
          "box {}: its egress proxy did not start again (it reaches nothing until "
          "it is created again): {}",
          network.box_id, common::AsStd(st.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status HostEgress::Attach(const BoxNetwork& network, const BoxPolicy& policy) {
  LLMBOX_RETURN_IF_ERROR(firewall_.Add(network));
  if (absl::Status st = proxy_.AddBox(network.box_id, network.gateway, policy, network.subnet);
      !st.ok()) {
    (void)firewall_.Remove(network.box_id);
    return st;
  }
  std::lock_guard lock(mu_);
  logged_[network.box_id] = {};
  return absl::OkStatus();
}

absl::Status HostEgress::SetPolicy(const std::string& box_id, const BoxPolicy& policy) {
  return proxy_.SetPolicy(box_id, policy);
}

absl::Status HostEgress::Detach(const std::string& box_id) {
  proxy_.RemoveBox(box_id);
  {
    std::lock_guard lock(mu_);
    logged_.erase(box_id);
  }
  return firewall_.Remove(box_id);
}

std::vector<Refusal> HostEgress::Refusals(const std::string& box_id, size_t limit) {
  std::vector<Refusal> all = proxy_.Refusals(box_id);
  if (auto dropped = firewall_.Refusals(box_id); dropped.ok()) {
    all.insert(all.end(), dropped->begin(), dropped->end());
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Refusal& a, const Refusal& b) { return a.time < b.time; });
  if (all.size() > limit) all.erase(all.begin(), all.end() - static_cast<ptrdiff_t>(limit));
  return all;
}

std::uint64_t HostEgress::RefusalMark(const std::string& box_id) {
  std::uint64_t mark = proxy_.RefusalCount(box_id);
  std::lock_guard lock(mu_);
  if (auto it = logged_.find(box_id); it != logged_.end()) {
    // The newest rule refusal logged, mixed in so that either kind moves the mark.
    mark ^= static_cast<std::uint64_t>(it->second.time_since_epoch().count()) * 0x9E3779B97F4A7C15;
  }
  return mark;
}

void HostEgress::DropRulesIfEmpty() {
  {
    std::lock_guard lock(mu_);
    if (!logged_.empty()) return;
  }
  if (absl::Status st = firewall_.Drop(); !st.ok()) {
    spdlog::warn("egress: the host's rules were not removed: {}", common::AsStd(st.message()));
  }
}

void HostEgress::LogNewRefusals(const std::string& spoke_name) {
  std::map<std::string, std::chrono::system_clock::time_point> boxes;
  {
    std::lock_guard lock(mu_);
    boxes = logged_;
  }
  for (const auto& [box_id, since] : boxes) {
    auto refused = firewall_.Refusals(box_id);
    if (!refused.ok()) continue;
    auto newest = since;
    for (const Refusal& r : *refused) {
      if (r.time <= since) continue;
      spdlog::warn("spoke {}: box {}: egress refused {} {}:{} ({})", spoke_name, box_id, r.protocol,
                   r.destination, r.port, r.rule);
      newest = std::max(newest, r.time);
    }
    std::lock_guard lock(mu_);
    if (auto it = logged_.find(box_id); it != logged_.end()) it->second = newest;
  }
}

}  // namespace llmbox::spoke::egress
