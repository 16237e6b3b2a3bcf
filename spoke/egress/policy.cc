// spoke/egress/policy.cc
#include "spoke/egress/policy.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include <arpa/inet.h>

#include "common/absl_compat.h"

namespace llmbox::spoke::egress {
namespace {

using common::AsAbsl;
using common::AsStd;

constexpr size_t kMaxNameBytes = 253;
// Longer text cannot be an entry (a name of 253 bytes, "*.", ":65535"); refused before any work.
constexpr size_t kMaxEntryBytes = 300;

// Shows hostile text in a message: printable ASCII only, cut short.
std::string Quote(std::string_view text) {
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (text.size() > 80) out += "...";
  out += "'";
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A decimal number without sign or leading zeros ("0" itself is fine), at most `max`.
std::optional<int> ParseDecimal(std::string_view text, int max) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

std::optional<IpAddress> ParseIpv4(std::string_view text) {
  IpAddress address;
  int part = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '.') continue;
    if (part == 4) return std::nullopt;
    const auto octet = ParseDecimal(text.substr(start, i - start), 255);
    if (!octet || i - start > 3) return std::nullopt;
    address.bytes[part++] = static_cast<uint8_t>(*octet);
    start = i + 1;
  }
  if (part != 4) return std::nullopt;
  return address;
}

std::optional<IpAddress> ParseIpv6(std::string_view text) {
  // The longest RFC 4291 text is 45 bytes; inet_pton checks the rest (its embedded v4 form is
  // as strict as ours: four decimal octets, no leading zeros).
  if (text.empty() || text.size() > 45) return std::nullopt;
  for (char c : text) {
    if (!IsHex(c) && c != ':' && c != '.') return std::nullopt;
  }
  char buffer[46];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress address;
  address.v6 = true;
  if (inet_pton(AF_INET6, buffer, address.bytes.data()) != 1) return std::nullopt;
  return address;
}

// ::ffff:a.b.c.d as a.b.c.d: the same destination, so the same decisions.
IpAddress Unmapped(const IpAddress& address) {
  if (!address.v6) return address;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(address.bytes.data(), kMapped, 12) != 0) return address;
  IpAddress v4;
  std::memcpy(v4.bytes.data(), address.bytes.data() + 12, 4);
  return v4;
}

Cidr MakeCidr(std::string_view text) {
  auto cidr = ParseCidr(text);
  return *cidr;
}

struct DeniedRange {
  Cidr range;
  std::string_view what;
};

const std::vector<DeniedRange>& AlwaysDenied() {
  static const auto* const kRanges = new std::vector<DeniedRange>{
      {MakeCidr("0.0.0.0/8"), "this network"},    {MakeCidr("10.0.0.0/8"), "private"},
      {MakeCidr("100.64.0.0/10"), "CGNAT"},       {MakeCidr("127.0.0.0/8"), "loopback"},
      {MakeCidr("169.254.0.0/16"), "link-local"}, {MakeCidr("172.16.0.0/12"), "private"},
      {MakeCidr("192.168.0.0/16"), "private"},    {MakeCidr("224.0.0.0/4"), "multicast"},
      {MakeCidr("240.0.0.0/4"), "reserved"},  // 255.255.255.255 (broadcast) included
      {MakeCidr("::/128"), "unspecified"},        {MakeCidr("::1/128"), "loopback"},
      {MakeCidr("fe80::/10"), "link-local"},      {MakeCidr("fec0::/10"), "site-local"},
      {MakeCidr("fc00::/7"), "unique local"},     {MakeCidr("ff00::/8"), "multicast"},
  };
  return *kRanges;
}

// The v4 address inside a v4-compatible (::a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address.
std::optional<IpAddress> EmbeddedV4(const IpAddress& address) {
  if (!address.v6) return std::nullopt;
  static constexpr uint8_t kCompat[12] = {};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(address.bytes.data(), kCompat, 12) != 0 &&
      std::memcmp(address.bytes.data(), kNat64, 12) != 0) {
    return std::nullopt;
  }
  IpAddress v4;
  std::memcpy(v4.bytes.data(), address.bytes.data() + 12, 4);
  return v4;
}

bool Lifted(const SpokePolicy& spoke, const IpAddress& address) {
  return std::any_of(spoke.allow_ranges.begin(), spoke.allow_ranges.end(),
                     [&](const Cidr& range) { return range.Contains(address); });
}

// The always-denied range `address` falls in (directly or through an embedded v4 form) and
// that the operator did not lift, as a rule; or nothing.
std::optional<std::string> DeniedBy(const SpokePolicy& spoke, const IpAddress& address) {
  const IpAddress plain = Unmapped(address);
  const std::optional<IpAddress> embedded = EmbeddedV4(plain);
  // The address itself first (:: and ::1 are v4-compatible in form, but v6 in fact).
  for (bool inner : {false, true}) {
    if (inner && !embedded) break;
    const IpAddress& target = inner ? *embedded : plain;
    for (const DeniedRange& denied : AlwaysDenied()) {
      if (!denied.range.Contains(target)) continue;
      if (Lifted(spoke, plain) || Lifted(spoke, target)) continue;
      std::string rule =
          absl::StrCat("always denied: ", AsAbsl(denied.what), " ", denied.range.ToString());
      if (inner) absl::StrAppend(&rule, " (embedded in ", plain.ToString(), ")");
      return rule;
    }
  }
  return std::nullopt;
}

bool PortCovers(int allowed, int port) { return allowed == 0 || allowed == port; }

// A name below `suffix` (not the suffix itself).
bool IsBelow(std::string_view name, std::string_view suffix) {
  return name.size() > suffix.size() + 1 && name.ends_with(suffix) &&
         name[name.size() - suffix.size() - 1] == '.';
}

// Lower-cases and checks a host name: labels of [a-z0-9-] (no hyphen at either end), 1..63
// bytes each, 253 in all, a trailing dot dropped. A name whose last label is a number ("127.1",
// "0x7f.1", "1.0x7f") is refused: the system resolver would read it as an address.
absl::StatusOr<std::string> CanonicalName(std::string_view text) {
  if (text.ends_with('.')) text.remove_suffix(1);
  if (text.empty()) return absl::InvalidArgumentError("an empty name");
  if (text.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a name of ", text.size(), " bytes (at most ", kMaxNameBytes, ")"));
  }
  std::string name(text);
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      char& c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (!IsDigit(c) && !(c >= 'a' && c <= 'z') && c != '-') {
        if (static_cast<unsigned char>(c) >= 0x80) {
          return absl::InvalidArgumentError(
              "a name with non-ASCII letters (write an international name in its xn-- form)");
        }
        return absl::InvalidArgumentError(
            "a name may hold only letters, digits, '-' and '.' (and a leading '*.')");
      }
      continue;
    }
    const size_t length = i - label_start;
    if (length == 0) return absl::InvalidArgumentError("an empty label (two dots in a row)");
    if (length > 63) return absl::InvalidArgumentError("a label longer than 63 bytes");
    if (name[label_start] == '-' || name[i - 1] == '-') {
      return absl::InvalidArgumentError("a label that starts or ends with '-'");
    }
    label_start = i + 1;
  }
  const std::string_view last = std::string_view(name).substr(name.rfind('.') + 1);
  const bool numeric = std::all_of(last.begin(), last.end(), IsDigit);
  const bool hex = last.size() >= 2 && last[0] == '0' && last[1] == 'x' &&
                   std::all_of(last.begin() + 2, last.end(), IsHex);
  if (numeric || hex) {
    return absl::InvalidArgumentError(
        "a name ending in a number (not a dotted quad of four decimal octets: write the "
        "address as a.b.c.d)");
  }
  return name;
}

absl::Status EntryError(std::string_view text, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("network entry ", Quote(text), ": ", AsAbsl(what),
                   " (expected a name like example.com, a wildcard like *.example.com, or an "
                   "address range like 10.1.0.0/16, each with an optional :port)"));
}

bool Covers(const Entry& allowed, const Entry& entry) {
  if (!PortCovers(allowed.port, entry.port)) return false;
  switch (entry.kind) {
    case Entry::Kind::kDomain:
      return (allowed.kind == Entry::Kind::kDomain && allowed.name == entry.name) ||
             (allowed.kind == Entry::Kind::kWildcard && IsBelow(entry.name, allowed.name));
    case Entry::Kind::kWildcard:
      return allowed.kind == Entry::Kind::kWildcard &&
             (allowed.name == entry.name || IsBelow(entry.name, allowed.name));
    case Entry::Kind::kRange:
      return allowed.kind == Entry::Kind::kRange && allowed.range.base.v6 == entry.range.base.v6 &&
             allowed.range.prefix <= entry.range.prefix && allowed.range.Contains(entry.range.base);
  }
  return false;
}

// Whether two ranges share an address.
bool Overlaps(const Cidr& a, const Cidr& b) {
  if (a.base.v6 != b.base.v6) return false;
  return a.prefix <= b.prefix ? a.Contains(b.base) : b.Contains(a.base);
}

// A range entry of only public addresses: it meets no always-denied range, or only where the
// operator lifted it.
bool IsPublicRange(const SpokePolicy& spoke, const Cidr& range) {
  auto lifted = [&](const Cidr& part) {
    return std::any_of(spoke.allow_ranges.begin(), spoke.allow_ranges.end(), [&](const Cidr& a) {
      return a.base.v6 == part.base.v6 && a.prefix <= part.prefix && a.Contains(part.base);
    });
  };
  if (lifted(range)) return true;
  for (const DeniedRange& denied : AlwaysDenied()) {
    if (Overlaps(denied.range, range)) return false;
  }
  // v4-mapped, v4-compatible and NAT64 ranges are refused whole: what they hold is v4.
  if (range.base.v6) {
    static const Cidr kEmbedding[] = {MakeCidr("::ffff:0:0/96"), MakeCidr("::/96"),
                                      MakeCidr("64:ff9b::/96")};
    for (const Cidr& embedding : kEmbedding) {
      if (Overlaps(embedding, range)) return false;
    }
  }
  for (const IpAddress& host : spoke.host_addresses) {
    if (range.Contains(Unmapped(host))) return false;
  }
  return true;
}

std::string ModeList(const std::vector<Mode>& modes) {
  std::vector<std::string> names;
  for (Mode mode : modes) names.emplace_back(ModeName(mode));
  return names.empty() ? "no mode" : absl::StrJoin(names, ", ");
}

std::string WhatBoxesMayAdd(const SpokePolicy& spoke) {
  if (spoke.box_may_allow_anything) return "any public name or range";
  if (spoke.box_may_allow.empty()) return "no entries of its own";
  std::vector<std::string> entries;
  for (const Entry& entry : spoke.box_may_allow) entries.push_back(entry.ToString());
  return absl::StrCat("entries within ", absl::StrJoin(entries, ", "));
}

Decision Allowed(std::string rule) { return {.allowed = true, .rule = std::move(rule)}; }
Decision Denied(std::string rule) { return {.allowed = false, .rule = std::move(rule)}; }

}  // namespace

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kNone:
      return "none";
    case Mode::kAllowlist:
      return "allowlist";
    case Mode::kOpen:
      return "open";
  }
  return "unknown";
}

absl::StatusOr<Mode> ParseMode(std::string_view text) {
  for (Mode mode : {Mode::kNone, Mode::kAllowlist, Mode::kOpen}) {
    if (text == ModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("network mode ", Quote(text), ": must be one of none, allowlist, open"));
}

std::string IpAddress::ToString() const {
  char buffer[INET6_ADDRSTRLEN];
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof(buffer)) == nullptr) {
    return "?";
  }
  return buffer;
}

std::optional<IpAddress> ParseIp(std::string_view text) {
  if (text.find(':') != std::string_view::npos) return ParseIpv6(text);
  return ParseIpv4(text);
}

bool Cidr::Contains(const IpAddress& address) const {
  if (address.v6 != base.v6) return false;
  int bits = prefix;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((address.bytes[i] & mask) != base.bytes[i]) return false;
  }
  return true;
}

std::string Cidr::ToString() const { return absl::StrCat(base.ToString(), "/", prefix); }

absl::StatusOr<Cidr> ParseCidr(std::string_view text) {
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("address range ", Quote(text), ": ", AsAbsl(what)));
  };
  const size_t slash = text.find('/');
  const auto address = ParseIp(text.substr(0, slash));
  if (!address) return error("not an IPv4 (a.b.c.d) or IPv6 address");
  const int max = address->v6 ? 128 : 32;
  Cidr cidr{.base = *address, .prefix = max};
  if (slash != std::string_view::npos) {
    const auto prefix = ParseDecimal(text.substr(slash + 1), max);
    if (!prefix) return error(absl::StrCat("the prefix length must be 0..", max));
    cidr.prefix = *prefix;
  }
  for (int bit = cidr.prefix; bit < max; ++bit) {
    if (cidr.base.bytes[bit / 8] & (0x80 >> (bit % 8))) {
      Cidr cleared = cidr;
      for (int b = cidr.prefix; b < max; ++b) {
        cleared.base.bytes[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
      }
      return error(absl::StrCat("host bits are set (did you mean ", cleared.ToString(), "?)"));
    }
  }
  return cidr;
}

std::string Entry::ToString() const {
  std::string text;
  switch (kind) {
    case Kind::kDomain:
      text = name;
      break;
    case Kind::kWildcard:
      text = absl::StrCat("*.", name);
      break;
    case Kind::kRange:
      text = range.prefix == (range.base.v6 ? 128 : 32) ? range.base.ToString() : range.ToString();
      if (range.base.v6 && port != 0) text = absl::StrCat("[", text, "]");
      break;
  }
  if (port != 0) absl::StrAppend(&text, ":", port);
  return text;
}

absl::StatusOr<Entry> ParseEntry(std::string_view text) {
  if (text.size() > kMaxEntryBytes) {
    return EntryError(text, absl::StrCat(text.size(), " bytes is too long"));
  }
  Entry entry;
  std::string_view host = text;
  std::optional<std::string_view> port_text;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return EntryError(text, "a '[' without ']'");
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return EntryError(text, "only ':port' may follow ']'");
      port_text = rest.substr(1);
    }
    if (host.find(':') == std::string_view::npos) {
      return EntryError(text, "brackets hold only an IPv6 address");
    }
  } else {
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
    }
  }
  if (port_text) {
    const auto port = ParseDecimal(*port_text, 65535);
    if (!port || *port == 0) return EntryError(text, "the port must be 1..65535");
    entry.port = *port;
  }
  if (host.empty()) return EntryError(text, "no name or address");

  // An address or a range: a ':' (IPv6), a '/', or four decimal numbers.
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6 || host.find('/') != std::string_view::npos || ParseIp(host)) {
    auto range = ParseCidr(host);
    if (!range.ok()) return EntryError(text, AsStd(range.status().message()));
    entry.kind = Entry::Kind::kRange;
    entry.range = *range;
    return entry;
  }
  if (host == "*") {
    return EntryError(text, "'*' alone is not an entry (open mode allows any public name)");
  }
  if (host.starts_with("*.")) {
    auto suffix = CanonicalName(host.substr(2));
    if (!suffix.ok()) return EntryError(text, AsStd(suffix.status().message()));
    if (suffix->find('.') == std::string::npos) {
      return EntryError(text, "a wildcard needs at least two labels after '*.'");
    }
    entry.kind = Entry::Kind::kWildcard;
    entry.name = *std::move(suffix);
    return entry;
  }
  if (host.find('*') != std::string_view::npos) {
    return EntryError(text, "'*' may only stand first, as in *.example.com");
  }
  auto name = CanonicalName(host);
  if (!name.ok()) return EntryError(text, AsStd(name.status().message()));
  entry.kind = Entry::Kind::kDomain;
  entry.name = *std::move(name);
  return entry;
}

absl::Status CheckBoxPolicy(const SpokePolicy& spoke, const BoxPolicy& box) {
  if (std::find(spoke.modes.begin(), spoke.modes.end(), box.mode) == spoke.modes.end()) {
    return absl::PermissionDeniedError(
        absl::StrCat("network mode ", AsAbsl(ModeName(box.mode)),
                     " is not allowed on this spoke; it allows: ", ModeList(spoke.modes)));
  }
  if (box.allow.size() > static_cast<size_t>(spoke.max_box_entries)) {
    return absl::InvalidArgumentError(absl::StrCat("a box may have at most ", spoke.max_box_entries,
                                                   " network entries, got ", box.allow.size()));
  }
  for (const Entry& entry : box.allow) {
    // Private, loopback, link-local and the like stay refused whatever a box asks: only the
    // operator lifts them (egress allow_ranges).
    const bool permitted =
        (entry.kind != Entry::Kind::kRange || IsPublicRange(spoke, entry.range)) &&
        (spoke.box_may_allow_anything ||
         std::any_of(spoke.box_may_allow.begin(), spoke.box_may_allow.end(),
                     [&](const Entry& allowed) { return Covers(allowed, entry); }));
    if (!permitted) {
      return absl::PermissionDeniedError(absl::StrCat(
          "network entry ", entry.ToString(),
          " is not allowed by this spoke's policy; a box may add ", WhatBoxesMayAdd(spoke),
          " (private, loopback and link-local ranges only where the operator lifted them)"));
    }
  }
  return absl::OkStatus();
}

Decision DecideName(const SpokePolicy& spoke, const BoxPolicy& box, std::string_view host,
                    int port) {
  if (box.mode == Mode::kNone) return Denied("mode none");
  if (port < 1 || port > 65535) return Denied("invalid port");
  auto matches = [&](auto&& pred) -> const Entry* {
    for (const std::vector<Entry>* list : {&spoke.base_allowlist, &box.allow}) {
      for (const Entry& entry : *list) {
        if (PortCovers(entry.port, port) && pred(entry)) return &entry;
      }
    }
    return nullptr;
  };
  if (const auto literal = ParseIp(host)) {
    if (box.mode == Mode::kOpen) return Allowed("open");
    const IpAddress address = Unmapped(*literal);
    if (const Entry* entry = matches([&](const Entry& e) {
          return e.kind == Entry::Kind::kRange && e.range.Contains(address);
        })) {
      return Allowed(absl::StrCat("allowlist: ", entry->ToString()));
    }
    return Denied("IP address not in the allowlist");
  }
  const auto name = CanonicalName(host);
  if (!name.ok()) return Denied("invalid host name");
  if (box.mode == Mode::kOpen) return Allowed("open");
  if (const Entry* entry = matches([&](const Entry& e) {
        return (e.kind == Entry::Kind::kDomain && e.name == *name) ||
               (e.kind == Entry::Kind::kWildcard && IsBelow(*name, e.name));
      })) {
    return Allowed(absl::StrCat("allowlist: ", entry->ToString()));
  }
  return Denied("not in the allowlist");
}

Decision DecideAddress(const SpokePolicy& spoke, const BoxPolicy& box, const IpAddress& address,
                       int port, const Decision& by_name) {
  if (!by_name.allowed) return by_name;
  if (box.mode == Mode::kNone) return Denied("mode none");
  if (port < 1 || port > 65535) return Denied("invalid port");
  const IpAddress plain = Unmapped(address);
  const std::optional<IpAddress> embedded = EmbeddedV4(plain);
  for (const IpAddress& host : spoke.host_addresses) {
    const IpAddress own = Unmapped(host);
    if (own == plain || (embedded && own == *embedded)) {
      return Denied(absl::StrCat("always denied: the spoke host's address ", own.ToString()));
    }
  }
  if (auto rule = DeniedBy(spoke, plain)) return Denied(*std::move(rule));
  return by_name;
}

}  // namespace llmbox::spoke::egress
