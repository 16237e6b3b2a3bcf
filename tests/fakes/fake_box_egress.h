// tests/fakes/fake_box_egress.h
//
// A BoxEgress that records what the box manager asked of the host (attach, detach, policies,
// restores) and answers refusals a test set, for unit tests on the fake engine.
//
//   FakeBoxEgress egress;
//   BoxManager boxes(engine, clock, options, nullptr, &egress);
//   ... boxes.Create({.box_id = "b1"}) ...
//   CHECK(egress.Attached().count("b1") == 1);
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "spoke/egress/egress.h"

namespace llmbox::testing {

class FakeBoxEgress final : public spoke::egress::BoxEgress {
 public:
  std::string ProxyUrl(const spoke::egress::BoxNetwork& network) const override {
    return "http://" + network.gateway + ":3128";
  }
  absl::Status Restore(
      const std::vector<std::pair<spoke::egress::BoxNetwork, spoke::egress::BoxPolicy>>& boxes)
      override {
    std::lock_guard lock(mu_);
    ++restores_;
    attached_.clear();
    for (const auto& [network, policy] : boxes) attached_[network.box_id] = {network, policy};
    return absl::OkStatus();
  }
  absl::Status Attach(const spoke::egress::BoxNetwork& network,
                      const spoke::egress::BoxPolicy& policy) override {
    std::lock_guard lock(mu_);
    if (!fail_attach_.ok()) return fail_attach_;
    attached_[network.box_id] = {network, policy};
    return absl::OkStatus();
  }
  absl::Status SetPolicy(const std::string& box_id,
                         const spoke::egress::BoxPolicy& policy) override {
    std::lock_guard lock(mu_);
    auto it = attached_.find(box_id);
    if (it == attached_.end()) return absl::NotFoundError("no such box in the proxy: " + box_id);
    it->second.second = policy;
    return absl::OkStatus();
  }
  absl::Status Detach(const std::string& box_id) override {
    std::lock_guard lock(mu_);
    attached_.erase(box_id);
    detached_.push_back(box_id);
    return absl::OkStatus();
  }
  std::vector<spoke::egress::Refusal> Refusals(const std::string& box_id, size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<spoke::egress::Refusal> out = refusals_[box_id];
    if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<ptrdiff_t>(limit));
    return out;
  }
  std::uint64_t RefusalMark(const std::string& box_id) override {
    std::lock_guard lock(mu_);
    auto it = refusals_.find(box_id);
    return it == refusals_.end() ? 0 : it->second.size();
  }

  // What is attached now: box id -> (network, policy).
  std::map<std::string, std::pair<spoke::egress::BoxNetwork, spoke::egress::BoxPolicy>> Attached() {
    std::lock_guard lock(mu_);
    return attached_;
  }
  std::vector<std::string> Detached() {
    std::lock_guard lock(mu_);
    return detached_;
  }
  int Restores() {
    std::lock_guard lock(mu_);
    return restores_;
  }
  void AddRefusal(const std::string& box_id, spoke::egress::Refusal refusal) {
    std::lock_guard lock(mu_);
    refusals_[box_id].push_back(std::move(refusal));
  }
  void FailAttach(absl::Status status) {
    std::lock_guard lock(mu_);
    fail_attach_ = std::move(status);
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<spoke::egress::BoxNetwork, spoke::egress::BoxPolicy>> attached_;
  std::vector<std::string> detached_;
  std::map<std::string, std::vector<spoke::egress::Refusal>> refusals_;
  absl::Status fail_attach_;
  int restores_ = 0;
};

}  // namespace llmbox::testing
