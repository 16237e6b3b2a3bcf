// hub/http/client_address.cc
#include "hub/http/client_address.h"

#include <charconv>
#include <cstring>
#include <deque>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include <arpa/inet.h>

#include "common/absl_compat.h"
#include "common/validate.h"

namespace llmbox::hub::http {
namespace {

// INET6_ADDRSTRLEN less its NUL: no address literal is longer.
constexpr std::size_t kMaxLiteral = 45;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// The hops one header names, left to right; only the right-most kMaxHops are kept, as no more
// are ever looked at. An empty string stands for a hop whose address is not given.
using Hops = std::deque<std::string>;

void Push(Hops& hops, std::string hop) {
  hops.push_back(std::move(hop));
  if (hops.size() > static_cast<std::size_t>(kMaxHops)) hops.pop_front();
}

void XForwardedForHops(std::string_view line, Hops& hops) {
  while (true) {
    const std::size_t comma = line.find(',');
    const std::string_view entry = Trim(line.substr(0, comma));
    // RFC 9110 §5.6.1: empty list elements do not count.
    if (!entry.empty()) Push(hops, std::string(entry));
    if (comma == std::string_view::npos) return;
    line.remove_prefix(comma + 1);
  }
}

// RFC 7239 §4: Forwarded = 1#forwarded-element, each element `pair *( ";" pair )`, a pair
// `token "=" ( token / quoted-string )`. One pass: quoted strings may hold ',' and ';'.
void ForwardedHops(std::string_view line, Hops& hops) {
  std::optional<std::string> for_value;
  bool element = false;    // the current element has a pair
  bool ambiguous = false;  // it has two for= pairs
  auto end_element = [&] {
    if (element) Push(hops, ambiguous ? std::string() : for_value.value_or(""));
    for_value.reset();
    element = false;
    ambiguous = false;
  };
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (i < n) {
    const char c = line[i];
    if (IsSpace(c) || c == ';') {
      ++i;
      continue;
    }
    if (c == ',') {
      end_element();
      ++i;
      continue;
    }
    const std::size_t name_start = i;
    while (i < n && line[i] != '=' && line[i] != ';' && line[i] != ',') ++i;
    const std::string_view name = Trim(line.substr(name_start, i - name_start));
    std::string value;
    if (i < n && line[i] == '=') {
      ++i;
      while (i < n && IsSpace(line[i])) ++i;
      if (i < n && line[i] == '"') {
        ++i;
        while (i < n && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < n) ++i;
          value.push_back(line[i]);
          ++i;
        }
        if (i < n) ++i;                                         // the closing quote
        while (i < n && line[i] != ';' && line[i] != ',') ++i;  // junk after it
      } else {
        const std::size_t value_start = i;
        while (i < n && line[i] != ';' && line[i] != ',') ++i;
        value = std::string(Trim(line.substr(value_start, i - value_start)));
      }
    }
    element = true;
    if (absl::EqualsIgnoreCase(common::AsAbsl(name), "for")) {
      if (for_value.has_value()) ambiguous = true;
      for_value = std::move(value);
    }
  }
  end_element();
}

// An entry of either header: an address with an optional port, brackets and quotes.
std::optional<IpAddress> HopAddress(std::string_view entry) {
  if (entry.size() >= 2 && entry.front() == '"' && entry.back() == '"') {
    entry = entry.substr(1, entry.size() - 2);
  }
  if (!entry.empty() && entry.front() == '[') {
    const std::size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view rest = entry.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
    auto address = IpAddress::Parse(entry.substr(1, close - 1));
    // A bracketed address is IPv6 by definition.
    if (!address || address->v4) return std::nullopt;
    return address;
  }
  const std::size_t colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    // One colon: IPv4 with a port.
    auto address = IpAddress::Parse(entry.substr(0, colon));
    if (!address || !address->v4) return std::nullopt;
    return address;
  }
  return IpAddress::Parse(entry);
}

// The client that `hops` (right-most last) make of a request from the trusted `peer`.
IpAddress Walk(const Hops& hops, const IpAddress& peer, const TrustedProxies& trusted) {
  IpAddress client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    const std::optional<IpAddress> hop = HopAddress(*it);
    if (!hop) break;  // the trusted hop that wrote it stays the client
    client = *hop;
    if (!trusted.Contains(client)) break;
  }
  return client;
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxLiteral) return std::nullopt;
  char buffer[kMaxLiteral + 1];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  IpAddress out;
  if (text.find(':') == std::string_view::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, buffer, &v4) != 1) return std::nullopt;
    out.bytes[10] = 0xff;
    out.bytes[11] = 0xff;
    std::memcpy(out.bytes.data() + 12, &v4, 4);
    out.v4 = true;
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buffer, &v6) != 1) return std::nullopt;
  std::memcpy(out.bytes.data(), &v6, 16);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  out.v4 = std::memcmp(out.bytes.data(), kMapped, sizeof kMapped) == 0;
  return out;
}

std::string IpAddress::ToString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, bytes.data() + 12, buffer, sizeof buffer);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buffer, sizeof buffer);
  }
  return buffer;
}

absl::StatusOr<TrustedProxies> TrustedProxies::Parse(const std::vector<std::string>& cidrs) {
  if (cidrs.size() > kMaxCidrs) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxCidrs, " entries, got ", cidrs.size()));
  }
  TrustedProxies out;
  for (std::size_t i = 0; i < cidrs.size(); ++i) {
    const std::string_view text = cidrs[i];
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("[", i, "] ", common::QuoteForMessage(text), ": ", common::AsAbsl(why)));
    };
    const std::size_t slash = text.find('/');
    const auto address = IpAddress::Parse(text.substr(0, slash));
    if (!address) {
      return bad("not an IP address or CIDR (10.0.0.0/8, 192.0.2.7, 2001:db8::/32)");
    }
    const int max = address->v4 ? 32 : 128;
    int length = max;
    if (slash != std::string_view::npos) {
      const std::string_view digits = text.substr(slash + 1);
      const auto parsed = std::from_chars(digits.data(), digits.data() + digits.size(), length);
      if (digits.empty() || digits.size() > 3 || parsed.ec != std::errc() ||
          parsed.ptr != digits.data() + digits.size() || length < 0 || length > max) {
        return bad(absl::StrCat("the prefix length must be 0..", max));
      }
    }
    Cidr cidr{.base = *address, .prefix = address->v4 ? 96 + length : length};
    for (int bit = cidr.prefix; bit < 128; ++bit) {
      const auto mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
      if (cidr.base.bytes[bit / 8] & mask) {
        return bad("has bits set beyond its prefix length (write the network's first address)");
      }
    }
    out.cidrs_.push_back(cidr);
  }
  return out;
}

bool TrustedProxies::Contains(const IpAddress& address) const {
  for (const Cidr& cidr : cidrs_) {
    const int whole = cidr.prefix / 8;
    if (std::memcmp(cidr.base.bytes.data(), address.bytes.data(), whole) != 0) continue;
    const int rest = cidr.prefix % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    if ((cidr.base.bytes[whole] & mask) == (address.bytes[whole] & mask)) return true;
  }
  return false;
}

std::string ClientAddress(std::string_view peer,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const TrustedProxies& trusted) {
  if (trusted.empty()) return std::string(peer);
  const std::optional<IpAddress> peer_address = IpAddress::Parse(peer);
  if (!peer_address || !trusted.Contains(*peer_address)) return std::string(peer);
  Hops xff;
  Hops forwarded;
  bool has_xff = false;
  bool has_forwarded = false;
  for (const auto& [name, value] : headers) {
    if (name == "x-forwarded-for") {
      has_xff = true;
      XForwardedForHops(value, xff);
    } else if (name == "forwarded") {
      has_forwarded = true;
      ForwardedHops(value, forwarded);
    }
  }
  if (!has_xff && !has_forwarded) return peer_address->ToString();
  const IpAddress by_xff = Walk(xff, *peer_address, trusted);
  const IpAddress by_forwarded = Walk(forwarded, *peer_address, trusted);
  if (has_xff && has_forwarded && !(by_xff == by_forwarded)) return peer_address->ToString();
  return (has_xff ? by_xff : by_forwarded).ToString();
}

std::string AddressKey(std::string_view address) {
  std::optional<IpAddress> parsed = IpAddress::Parse(address);
  if (!parsed) return std::string(address);
  if (parsed->v4) return parsed->ToString();
  for (std::size_t i = 8; i < 16; ++i) parsed->bytes[i] = 0;
  return parsed->ToString() + "/64";
}

}  // namespace llmbox::hub::http
