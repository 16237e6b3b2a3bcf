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
// timeout). Packets forwarded into a box's bridge from anywhere else are dropped too (unless
// they belong to a connection already established). Broadcast and multicast to the host are
// dropped without a record (they are chatter, not connections). Per-box chains are added and
// removed in one nft transaction each; Reset replaces the whole table at once (a restarted
// spoke, kill -9 safe: what no live box needs is gone, recorded refusals included).
//
//   auto fw = MakeNftFirewall({.spoke_name = "local", .proxy_port = 3128}, runner, clock);
//   LLMBOX_RETURN_IF_ERROR(fw->Reset(live_boxes));
//   LLMBOX_RETURN_IF_ERROR(fw->Add({.box_id = "b1", .bridge = "br-0a1b2c3d4e5f",
//                                   .gateway = "10.213.5.1", .subnet = "10.213.5.0/24"}));
//   LLMBOX_RETURN_IF_ERROR(fw->Remove("b1"));
//
// The table (docs/network.md, "Host rules"): base chains `input` and `forward` at priority
// filter - 10 (before Docker's own iptables-nft rules; a drop here is final) dispatch by
// interface name through the maps `in_from`, `fwd_from` and `fwd_to` to the box's chains
// `box_<id>_in`, `box_<id>_fwd`, `box_<id>_to` (hyphens of the id as '_'); the box's refused
// packets go through `box_<id>_refuse`, which records them in the sets `box_<id>_v4` and
// `box_<id>_v6` (at most 64 destinations each, kept an hour after the last packet) and drops.
// Add and Remove read the maps first (`nft -j list maps inet`), so they need no memory of
// earlier calls: whatever the table holds for the box (another bridge, a stale entry for the
// same bridge) is replaced or removed in the same transaction.
//
// Every value that goes into a script is checked first: box ids as common::ValidateBoxId
// (after lower-casing), bridges [A-Za-z0-9_.-]{1,15}, the gateway a dotted IPv4 address, the
// subnet an IPv4 CIDR that contains it; anything else is InvalidArgument and nothing is run.
//
// Needs the nft program (Debian's nftables) and CAP_NET_ADMIN. Errors name the nft command's
// own message: FailedPrecondition when nft cannot be run, PermissionDenied without
// CAP_NET_ADMIN, Internal when nft refuses a script or answers what we cannot read. Thread-
// safe: calls are serialized.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
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
  // Removes the spoke's table altogether (a spoke stopping with no box left); OK when absent.
  [[nodiscard]] virtual absl::Status Drop() = 0;
  // Removes one box's rules; OK when it had none.
  [[nodiscard]] virtual absl::Status Remove(const std::string& box_id) = 0;
  // Packets of the box's that were dropped, newest last (at most kMaxRefusals; each
  // destination once, at the time of its last packet). NotFound when the table has no rules
  // for the box.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Refusal>> Refusals(
      const std::string& box_id) = 0;
};

inline constexpr int kMaxRefusals = 32;

struct NftOptions {
  std::string spoke_name = "local";
  int proxy_port = 3128;
  std::string nft_path = "nft";
};

// `runner` and `clock` must outlive the firewall. The clock turns a recorded packet's
// remaining timeout into its time; without one, the system clock.
std::unique_ptr<Firewall> MakeNftFirewall(NftOptions options, common::SubprocessRunner& runner,
                                          common::Clock& clock);
std::unique_ptr<Firewall> MakeNftFirewall(NftOptions options, common::SubprocessRunner& runner);

// The table's name for a spoke: "llmbox_" + the name in lower case with anything but
// [a-z0-9_] as '_' (cut to 64 characters in all).
std::string NftTableName(const std::string& spoke_name);

}  // namespace llmbox::spoke::egress
