// hub/http/client_address.h
//
// The address of the client a request comes from, when the hub may sit behind reverse proxies
// (hub.trusted_proxies). A forwarding header is believed only when the TCP peer is a trusted
// proxy; otherwise anybody could name any address and dodge, or spend, another's rate limits.
//
//   LLMBOX_ASSIGN_OR_RETURN(TrustedProxies trusted, TrustedProxies::Parse({"10.0.0.0/8"}));
//   request.client_address = ClientAddress(request.remote_address, request.headers, trusted);
//   limiter.Take(AddressKey(request.client_address));
//
// The rule (the same for X-Forwarded-For and RFC 7239 Forwarded's for=): walk the chain from
// the right, starting at the TCP peer; while the hop is a trusted proxy, believe what it says
// about the hop before it. The first hop that is not trusted is the client. Details:
//   - several header lines of one name are one list, in arrival order;
//   - when both headers are present they must name the same client, else neither is believed
//     (one of them came from the client, and we cannot tell which): the client is the peer;
//   - an entry that is not an IP address ("unknown", "_hidden", garbage) ends the walk: the
//     client is the last trusted hop that wrote it, never the garbage;
//   - when every hop is trusted the left-most one is the client;
//   - ports (1.2.3.4:80, [v6]:80), quotes and brackets are accepted and dropped; IPv6 zone ids
//     are not addresses. Addresses come out canonical (inet_ntop; IPv4-mapped IPv6 as IPv4).
// Parsing is one linear pass over the headers, bounded: at most kMaxHops hops are believed.
//
// Thread-safe: TrustedProxies is immutable after Parse.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace llmbox::hub::http {

// An IPv4 or IPv6 address, IPv4 kept as IPv4-mapped IPv6 so one comparison serves both.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  // A literal without port or brackets ("192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7");
  // nullopt for anything else.
  static std::optional<IpAddress> Parse(std::string_view text);
  // Canonical text: dotted quad for IPv4 (and IPv4-mapped), RFC 5952 for IPv6.
  std::string ToString() const;
  bool operator==(const IpAddress&) const = default;
};

class TrustedProxies {
 public:
  // At most this many CIDRs (a longer list is a mistake, and each hop is checked against all).
  static constexpr std::size_t kMaxCidrs = 256;

  TrustedProxies() = default;  // trusts no one: the TCP peer is always the client
  // Each entry "a.b.c.d/n" (n 0..32), "v6/n" (n 0..128) or a bare address (/32, /128).
  // InvalidArgument naming the entry's index and text and the rule it broke.
  [[nodiscard]] static absl::StatusOr<TrustedProxies> Parse(const std::vector<std::string>& cidrs);

  bool empty() const { return cidrs_.empty(); }
  bool Contains(const IpAddress& address) const;

 private:
  struct Cidr {
    IpAddress base;  // host bits cleared
    int prefix = 0;  // over the 128-bit (mapped) form
  };
  std::vector<Cidr> cidrs_;
};

// Hops believed from forwarding headers, beyond which the walk stops (a chain of more
// trusted proxies than this is not a deployment, it is an attack on our time).
inline constexpr int kMaxHops = 32;

// The client's address for a request from TCP peer `peer` (as the server saw it, no port)
// with `headers` (names lowercase). Returns `peer` unchanged when it is not in `trusted`.
std::string ClientAddress(std::string_view peer,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const TrustedProxies& trusted);

// The key under which limits count an address: the address itself for IPv4, its /64 for
// IPv6 (one subscriber commonly holds a whole /64, so per-address limits per /128 would be per
// nothing). Text that is not an address comes back unchanged.
std::string AddressKey(std::string_view address);

}  // namespace llmbox::hub::http
