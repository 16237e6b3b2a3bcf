// spoke/egress/egress.h
//
// What the box manager asks of the host to enforce a box's network policy, in one seam:
// BoxEgress. HostEgress is the real one (the spoke's EgressProxy listening on the box's
// gateway, plus the spoke's Firewall rules for its bridge); unit tests use a recording double
// under tests/fakes. The manager calls Attach before a box's container starts (so the box's
// first connection already finds its proxy), Detach when it goes, and Restore once at start
// with every live box (a spoke killed with -9 leaves rules and no listeners; Restore makes the
// host hold exactly what the live boxes need).
//
//   HostEgress egress(proxy, *firewall);
//   LLMBOX_RETURN_IF_ERROR(egress.Attach(network, policy));
//   ... egress.SetPolicy(box_id, wider);
//   std::vector<Refusal> refused = egress.Refusals(box_id);   // proxy and rules, oldest first
//   (void)egress.Detach(box_id);
//
// Thread-safe: calls for different boxes may run at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "spoke/egress/firewall.h"
#include "spoke/egress/policy.h"
#include "spoke/egress/proxy.h"
#include "spoke/egress/refusal.h"

namespace llmbox::spoke::egress {

class BoxEgress {
 public:
  virtual ~BoxEgress() = default;
  // The proxy address a box on `network` uses ("http://<gateway>:<port>").
  virtual std::string ProxyUrl(const BoxNetwork& network) const = 0;
  [[nodiscard]] virtual absl::Status Restore(
      const std::vector<std::pair<BoxNetwork, BoxPolicy>>& boxes) = 0;
  [[nodiscard]] virtual absl::Status Attach(const BoxNetwork& network, const BoxPolicy& policy) = 0;
  [[nodiscard]] virtual absl::Status SetPolicy(const std::string& box_id,
                                               const BoxPolicy& policy) = 0;
  [[nodiscard]] virtual absl::Status Detach(const std::string& box_id) = 0;
  // At most `limit`, the newest, oldest first.
  virtual std::vector<Refusal> Refusals(const std::string& box_id, size_t limit) = 0;
  // A number that changes when a refusal is recorded for the box (cheap: no host rules are
  // read; the rules' refusals move it when the periodic refusal log has read them).
  virtual std::uint64_t RefusalMark(const std::string& box_id) = 0;
};

// `proxy` and `firewall` must outlive it.
class HostEgress final : public BoxEgress {
 public:
  HostEgress(EgressProxy& proxy, Firewall& firewall) : proxy_(proxy), firewall_(firewall) {}
  std::string ProxyUrl(const BoxNetwork& network) const override;
  [[nodiscard]] absl::Status Restore(
      const std::vector<std::pair<BoxNetwork, BoxPolicy>>& boxes) override;
  [[nodiscard]] absl::Status Attach(const BoxNetwork& network, const BoxPolicy& policy) override;
  [[nodiscard]] absl::Status SetPolicy(const std::string& box_id, const BoxPolicy& policy) override;
  [[nodiscard]] absl::Status Detach(const std::string& box_id) override;
  std::vector<Refusal> Refusals(const std::string& box_id, size_t limit) override;
  std::uint64_t RefusalMark(const std::string& box_id) override;

  // Drops the spoke's host rules when no box is attached (a spoke stopping with no box left
  // leaves nothing on the host); otherwise keeps them, so boxes stay fenced while it is down.
  void DropRulesIfEmpty();

  // Logs the host rules' refusals newer than the last ones it logged, one line per box and
  // destination (the proxy logs its own as they happen). The spoke calls it periodically.
  void LogNewRefusals(const std::string& spoke_name);

 private:
  EgressProxy& proxy_;
  Firewall& firewall_;
  std::mutex mu_;
  // Attached boxes -> the time of the newest rules' refusal logged for each.
  std::map<std::string, std::chrono::system_clock::time_point> logged_;
};

}  // namespace llmbox::spoke::egress
