// spoke/egress/firewall.h
//
// The host's packet rules for box networks: defence beneath the topology (box networks are
// Docker `internal` networks, without a route out). Each spoke owns one nftables table,
// `inet llmbox_<spoke>` (spoke name sanitized), that no one else writes. For each box, packets
// coming in on its bridge may reach only the proxy's port on its own gateway and the same
// bridge (the box's exec container and peers); everything else to the host (its other
// addresses and listeners, over IPv4 or IPv6) and everything forwarded elsewhere (other
// boxes, the LAN, link-local, the internet, UDP and DNS included) is dropped and recorded in a
// per-box set that Refusals reads (destination, protocol, port; the time from the set's
// timeout). Per-box chains are added and removed in one nft transaction each; Reset replaces
// the whole table at once (a restarted spoke, kill -9 safe: what no live box needs is gone).
//
//   auto fw = MakeNftFirewall({.spoke_name = "local", .proxy_port = 3128}, runner);
//   LLMBOX_RETURN_IF_ERROR(fw->Reset(live_boxes));
//   LLMBOX_RETURN_IF_ERROR(fw->Add({.box_id = "b1", .bridge = "br-0a1b2c3d4e5f",
//                                   .gateway = "10.213.5.1", .subnet = "10.213.5.0/24"}));
//   LLMBOX_RETURN_IF_ERROR(fw->Remove("b1"));
//
// Needs the nft program (Debian's nftables) and CAP_NET_ADMIN. Errors name the nft command's
// own message.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/subprocess.h"
#include "spoke/egress/refusal.h"

namespace llmbox::spoke::egress {

// A box network as the host sees it.
struct BoxNetwork {
  std::string box_id;
  std::string bridge;   // the host's interface for the network, e.g. "br-0a1b2c3d4e5f"
  std::string gateway;  // the host's address on it (where the proxy listens), IPv4
  std::string subnet;   // e.g. "10.213.5.0/24"
};

class Firewall {
 public:
  virtual ~Firewall() = default;
  // Replaces the spoke's table with one that holds exactly `boxes`.
  [[nodiscard]] virtual absl::Status Reset(const std::vector<BoxNetwork>& boxes) = 0;
  // Adds (or replaces) one box's rules.
  [[nodiscard]] virtual absl::Status Add(const BoxNetwork& box) = 0;
  // Removes one box's rules; OK when it had none.
  [[nodiscard]] virtual absl::Status Remove(const std::string& box_id) = 0;
  // Packets of the box's that were dropped, newest last (at most a few dozen).
  [[nodiscard]] virtual absl::StatusOr<std::vector<Refusal>> Refusals(
      const std::string& box_id) = 0;
};

struct NftOptions {
  std::string spoke_name = "local";
  int proxy_port = 3128;
  std::string nft_path = "nft";
};

// `runner` must outlive the firewall.
std::unique_ptr<Firewall> MakeNftFirewall(NftOptions options, common::SubprocessRunner& runner);

// The table's name for a spoke: "llmbox_" + the name with anything but [a-z0-9_] as '_'
// (cut to fit nft's limits).
std::string NftTableName(const std::string& spoke_name);

}  // namespace llmbox::spoke::egress
