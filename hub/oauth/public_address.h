// hub/oauth/public_address.h
//
// Which IP addresses the hub may fetch a client ID metadata document from: public unicast
// only, so a CIMD URL cannot make the hub reach its own network (SSRF). A small classifier of
// the hub's own; the spoke's egress policy (spoke/egress/policy.h) keeps its own, richer one
// (operator ranges, per-box entries), which the hub may not include.
//
//   if (auto why = NonPublicAddressReason(address, /*allow_loopback=*/false)) refuse(*why);
//
// Thread-safe (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <netinet/in.h>

namespace llmbox::hub::oauth {

// An IPv4 or IPv6 address, as getaddrinfo or inet_pton gives it.
struct IpAddress {
  bool v6 = false;
  in_addr v4_address{};
  in6_addr v6_address{};

  static std::optional<IpAddress> Parse(std::string_view text);  // dotted v4 or v6, no zone
  static std::optional<IpAddress> FromSockaddr(const sockaddr* address);
  std::string ToString() const;
  bool operator==(const IpAddress& other) const;
};

// nullopt for a public unicast address; otherwise what it is ("loopback", "private",
// "link-local", "CGNAT", "multicast", "reserved", "unique local", "v4-mapped", ...).
// Refused besides the obvious: 0/8, 192.0.0/24, the documentation and benchmark ranges,
// 240/4 and broadcast; every IPv6 address outside 2000::/3 (so ::, ::1, fe80::/10, fc00::/7,
// ff00::/8, v4-mapped and v4-compatible ::/96 and NAT64 64:ff9b::/96), 2001::/32 (Teredo),
// 2001:db8::/32, and 6to4 (2002::/16) of a refused v4 address. With `allow_loopback` (tests),
// 127/8 and ::1 pass too.
std::optional<std::string_view> NonPublicAddressReason(const IpAddress& address,
                                                       bool allow_loopback);

}  // namespace llmbox::hub::oauth
