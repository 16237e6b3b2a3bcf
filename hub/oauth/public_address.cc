#include "hub/oauth/public_address.h"

#include <cstdint>
#include <cstring>

#include <arpa/inet.h>

namespace llmbox::hub::oauth {
namespace {

struct V4Range {
  std::uint32_t base;
  int prefix;
  std::string_view what;
};

constexpr std::uint32_t V4(int a, int b, int c, int d) {
  return (static_cast<std::uint32_t>(a) << 24) | (static_cast<std::uint32_t>(b) << 16) |
         (static_cast<std::uint32_t>(c) << 8) | static_cast<std::uint32_t>(d);
}

constexpr V4Range kRefusedV4[] = {
    {V4(0, 0, 0, 0), 8, "this network"},        {V4(10, 0, 0, 0), 8, "private"},
    {V4(100, 64, 0, 0), 10, "CGNAT"},           {V4(127, 0, 0, 0), 8, "loopback"},
    {V4(169, 254, 0, 0), 16, "link-local"},     {V4(172, 16, 0, 0), 12, "private"},
    {V4(192, 0, 0, 0), 24, "reserved"},         {V4(192, 0, 2, 0), 24, "documentation"},
    {V4(192, 168, 0, 0), 16, "private"},        {V4(198, 18, 0, 0), 15, "benchmark"},
    {V4(198, 51, 100, 0), 24, "documentation"}, {V4(203, 0, 113, 0), 24, "documentation"},
    {V4(224, 0, 0, 0), 4, "multicast"},         {V4(240, 0, 0, 0), 4, "reserved"},
};

std::optional<std::string_view> V4Reason(std::uint32_t address, bool allow_loopback) {
  for (const V4Range& range : kRefusedV4) {
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - range.prefix);
    if ((address & mask) == range.base) {
      if (allow_loopback && range.what == "loopback") return std::nullopt;
      return range.what;
    }
  }
  return std::nullopt;
}

std::uint32_t V4At(const std::uint8_t* bytes) { return V4(bytes[0], bytes[1], bytes[2], bytes[3]); }

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string copy(text);
  IpAddress address;
  if (::inet_pton(AF_INET, copy.c_str(), &address.v4_address) == 1) return address;
  address.v6 = true;
  if (::inet_pton(AF_INET6, copy.c_str(), &address.v6_address) == 1) return address;
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* address) {
  IpAddress result;
  if (address->sa_family == AF_INET) {
    result.v4_address = reinterpret_cast<const sockaddr_in*>(address)->sin_addr;
    return result;
  }
  if (address->sa_family == AF_INET6) {
    result.v6 = true;
    result.v6_address = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    return result;
  }
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (v6) {
    ::inet_ntop(AF_INET6, &v6_address, text, sizeof(text));
  } else {
    ::inet_ntop(AF_INET, &v4_address, text, sizeof(text));
  }
  return text;
}

bool IpAddress::operator==(const IpAddress& other) const {
  if (v6 != other.v6) return false;
  return v6 ? std::memcmp(&v6_address, &other.v6_address, sizeof(v6_address)) == 0
            : v4_address.s_addr == other.v4_address.s_addr;
}

std::optional<std::string_view> NonPublicAddressReason(const IpAddress& address,
                                                       bool allow_loopback) {
  if (!address.v6) return V4Reason(ntohl(address.v4_address.s_addr), allow_loopback);
  const std::uint8_t* b = address.v6_address.s6_addr;
  if (std::memcmp(b, in6addr_loopback.s6_addr, 16) == 0) {
    if (allow_loopback) return std::nullopt;
    return "loopback";
  }
  // Global unicast is 2000::/3; everything else is special in one way or another.
  if ((b[0] & 0xe0) != 0x20) {
    static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, kMappedPrefix, 12) == 0) return "v4-mapped";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local";
    if ((b[0] & 0xfe) == 0xfc) return "unique local";
    if (b[0] == 0xff) return "multicast";
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) return "NAT64";
    return "reserved";
  }
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return "documentation";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) return "Teredo";
  if (b[0] == 0x20 && b[1] == 0x02) {
    // 6to4 carries a v4 address in bytes 2..5; loopback is never reachable that way.
    if (V4Reason(V4At(b + 2), /*allow_loopback=*/false).has_value()) return "6to4";
  }
  return std::nullopt;
}

}  // namespace llmbox::hub::oauth
