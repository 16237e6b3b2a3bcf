// spoke/egress/policy.h
//
// What a box may reach (docs/network.md, docs/decisions/007-egress-proxy.md). Pure values and
// decisions: no sockets, no clock. The proxy asks Decide* for every connection it is asked for;
// the box manager validates a box's policy against the spoke's with CheckBoxPolicy.
//
//   LLMBOX_ASSIGN_OR_RETURN(Entry e, ParseEntry("*.pypi.org:443"));
//   BoxPolicy box{.mode = Mode::kAllowlist, .allow = {e}};
//   LLMBOX_RETURN_IF_ERROR(CheckBoxPolicy(spoke_policy, box));
//   Decision d = DecideName(spoke_policy, box, "files.pypi.org", 443);        // by name
//   Decision a = DecideAddress(spoke_policy, box, *ParseIp("10.0.0.5"), 443, d);  // then each
//   address
//
// Entries: a domain ("example.com", exact), a wildcard ("*.example.com": any name below it, not
// the name itself; at least two labels after "*."), or an address range ("10.1.0.0/16",
// "192.0.2.7", "2001:db8::/32"; host bits clear), each with an optional ":port" 1..65535
// ("example.com:443", "10.1.0.0/16:5432", "[2001:db8::1]:443"). Names are labels of [a-z0-9-]
// (1..63 bytes, no '-' at either end), at most 253 bytes, compared in lower case without a
// trailing dot; international names in their xn-- form. A name whose last label is a number
// ("127.1", "0x7f.1") is refused: the system resolver would read it as an address. A bare "*"
// is not an entry (open mode is).
//
// Names and addresses are decided apart: a host asked for by name must match a domain or
// wildcard entry (then every address it resolves to must pass DecideAddress); an IP literal
// must fall in a range entry (or the box be in open mode), never matched against names.
//
// Always denied, in every mode and whatever an allowlist says (unless the operator lifted a
// range with SpokePolicy::allow_ranges): loopback, "this network" (0/8), link-local
// (169.254/16: the cloud metadata service), the private ranges (10/8, 172.16/12, 192.168/16),
// CGNAT (100.64/10), multicast and reserved (224/4, 240/4, broadcast); IPv6: ::, ::1,
// fe80::/10, fec0::/10 (site-local), fc00::/7, ff00::/8, and the v4-mapped (::ffff:0:0/96),
// v4-compatible (::/96) and NAT64 (64:ff9b::/96) forms of a denied v4 address (a v4-mapped
// address is decided as the v4 address it is, range entries included). The spoke host's own
// addresses are added by the spoke (SpokePolicy::host_addresses). Public ranges, the benchmark
// range 198.18/15 included (the rig's stand-in for "the internet"), are not in the set.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace llmbox::spoke::egress {

enum class Mode {
  kNone,       // no connection at all
  kAllowlist,  // only the spoke's base list and the box's own entries
  kOpen,       // anything but the always-denied set
};
std::string_view ModeName(Mode mode);  // "none", "allowlist", "open"
// InvalidArgument naming the three modes for anything else.
[[nodiscard]] absl::StatusOr<Mode> ParseMode(std::string_view text);

// An IPv4 or IPv6 address in network byte order (v4 in the first 4 bytes).
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  std::string ToString() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};
// Dotted v4 or RFC 4291 v6 text (no zone, no brackets); nullopt otherwise.
std::optional<IpAddress> ParseIp(std::string_view text);

struct Cidr {
  IpAddress base;  // with the host bits cleared
  int prefix = 0;  // 0..32 or 0..128
  bool Contains(const IpAddress& address) const;
  std::string ToString() const;
};
// "a.b.c.d/n", "a.b.c.d" (/32), "v6/n", "v6" (/128). InvalidArgument naming the text otherwise.
[[nodiscard]] absl::StatusOr<Cidr> ParseCidr(std::string_view text);

struct Entry {
  enum class Kind { kDomain, kWildcard, kRange };
  Kind kind = Kind::kDomain;
  std::string name;  // kDomain: the name; kWildcard: the suffix without "*." (lower case)
  Cidr range;        // kRange
  int port = 0;      // 0: any port
  std::string ToString() const;  // canonical text, parses back to the same entry
  friend bool operator==(const Entry& a, const Entry& b) { return a.ToString() == b.ToString(); }
};
// InvalidArgument naming the entry and what is wrong with it.
[[nodiscard]] absl::StatusOr<Entry> ParseEntry(std::string_view text);

// The spoke's side (its config, egress: section).
struct SpokePolicy {
  Mode default_mode = Mode::kAllowlist;
  std::vector<Mode> modes = {Mode::kNone, Mode::kAllowlist, Mode::kOpen};  // a create may ask
  // What every allowlist box may reach (what Claude Code itself needs).
  std::vector<Entry> base_allowlist;
  // What a box's own entries must fall within: an entry is permitted when one of these covers
  // it (a domain by an equal domain or a wildcard above it, a range by a range containing it,
  // the port by an equal port or any). "*" in config means any public name or range.
  std::vector<Entry> box_may_allow;
  bool box_may_allow_anything = false;
  int max_box_entries = 64;
  // Ranges lifted from the always-denied set by the operator (an internal registry, say).
  std::vector<Cidr> allow_ranges;
  // The spoke host's own addresses, always denied (the proxy's own port on a box's gateway
  // is reached directly, never through the proxy).
  std::vector<IpAddress> host_addresses;
};

// The box's side: its mode and its own entries (besides the base list).
struct BoxPolicy {
  Mode mode = Mode::kAllowlist;
  std::vector<Entry> allow;
};

// OK, or PermissionDenied that names the first entry or mode refused and says what the spoke's
// policy allows (its modes; "any public name or range", or its box_may_allow list), or
// InvalidArgument when there are more than max_box_entries entries. A range entry that meets
// the always-denied set (or a host address, or the v4-mapped/compatible/NAT64 blocks) is
// refused unless an operator range (allow_ranges) covers it whole, whatever box_may_allow says.
[[nodiscard]] absl::Status CheckBoxPolicy(const SpokePolicy& spoke, const BoxPolicy& box);

struct Decision {
  bool allowed = false;
  // Why, for the record: "mode none", "not in the allowlist", "allowlist: *.pypi.org:443",
  // "open", "always denied: link-local 169.254.0.0/16", "operator range 10.1.0.0/16", ...
  std::string rule;
};

// May the box connect to `host` (a name or an IP literal) on `port`, before resolving?
Decision DecideName(const SpokePolicy& spoke, const BoxPolicy& box, std::string_view host,
                    int port);
// May it connect to `address` (one the proxy resolved for a name DecideName allowed as
// `by_name`, or the literal itself)? Refuses every always-denied address; for an IP literal the
// address must be allowed on its own (a range entry, or open mode).
Decision DecideAddress(const SpokePolicy& spoke, const BoxPolicy& box, const IpAddress& address,
                       int port, const Decision& by_name);

}  // namespace llmbox::spoke::egress
