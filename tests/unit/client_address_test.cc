// The client's address behind reverse proxies (hub/http/client_address.h): which forwarding
// headers are believed, from whom, and what hostile headers make of it.
#include "hub/http/client_address.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

namespace llmbox::hub::http {
namespace {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

TrustedProxies Trusted(const std::vector<std::string>& cidrs) {
  auto trusted = TrustedProxies::Parse(cidrs);
  INFO(trusted.status().ToString());
  REQUIRE(trusted.ok());
  return *std::move(trusted);
}

std::string Client(std::string_view peer, const HeaderList& headers,
                   const std::vector<std::string>& cidrs = {"10.0.0.0/8", "2001:db8:ffff::/48"}) {
  return ClientAddress(peer, headers, Trusted(cidrs));
}

TEST_CASE("an untrusted peer is the client whatever its forwarding headers say", "[proxy]") {
  const HeaderList forged = {{"x-forwarded-for", "203.0.113.9"}, {"forwarded", "for=198.51.100.1"}};
  CHECK(Client("192.0.2.7", forged) == "192.0.2.7");
  CHECK(Client("2001:db8:1::5", forged) == "2001:db8:1::5");
  // With no trusted proxies at all, not even loopback is believed.
  CHECK(ClientAddress("127.0.0.1", forged, TrustedProxies()) == "127.0.0.1");
}

TEST_CASE("a trusted peer's X-Forwarded-For names the client: the right-most untrusted hop",
          "[proxy]") {
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "203.0.113.9"}}) == "203.0.113.9");
  // The client forged the left part; the trusted proxies appended the right part.
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2"}}) ==
        "203.0.113.9");
  // Several header lines are one list, in order.
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "1.1.1.1"},
                            {"x-forwarded-for", "203.0.113.9,10.0.0.3"}}) == "203.0.113.9");
  // Empty elements do not count.
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", " , 203.0.113.9 ,, "}}) == "203.0.113.9");
  // No header: the trusted peer itself (a health check from the proxy).
  CHECK(Client("10.0.0.1", {}) == "10.0.0.1");
}

TEST_CASE("when every hop is a trusted proxy the left-most one is the client", "[proxy]") {
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "10.1.1.1, 10.2.2.2"}}) == "10.1.1.1");
}

TEST_CASE("IPv6 hops, brackets and ports are read and the address comes out canonical", "[proxy]") {
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "2001:DB8:0:0::7"}}) == "2001:db8::7");
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "[2001:db8::7]:443"}}) == "2001:db8::7");
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "203.0.113.9:51234"}}) == "203.0.113.9");
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "::ffff:203.0.113.9"}}) == "203.0.113.9");
  // An IPv6 peer inside a trusted IPv6 range.
  CHECK(Client("2001:db8:ffff::1", {{"x-forwarded-for", "203.0.113.9"}}) == "203.0.113.9");
}

TEST_CASE("Forwarded is read with quotes, ports, other parameters and several elements",
          "[proxy]") {
  CHECK(Client("10.0.0.1", {{"forwarded", "for=203.0.113.9"}}) == "203.0.113.9");
  CHECK(Client("10.0.0.1", {{"forwarded", "For=\"[2001:db8:cafe::17]:4711\""}}) ==
        "2001:db8:cafe::17");
  CHECK(Client("10.0.0.1", {{"forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"}}) ==
        "192.0.2.60");
  CHECK(Client("10.0.0.1", {{"forwarded",
                             "for=1.1.1.1, for=\"203.0.113.9:80\";proto=https, "
                             "for=10.9.9.9"}}) == "203.0.113.9");
  // A quoted string may hold ',' and ';' without splitting the element.
  CHECK(Client("10.0.0.1", {{"forwarded", "for=203.0.113.9;host=\"a,b;c\""}}) == "203.0.113.9");
  CHECK(Client("10.0.0.1", {{"forwarded", "proto=https;for=\"203.0.113.9\""}}) == "203.0.113.9");
}

TEST_CASE("a hop that is not an address leaves the last trusted hop as the client", "[proxy]") {
  // RFC 7239 allows "unknown" and obfuscated names; neither is a key anyone may choose.
  CHECK(Client("10.0.0.1", {{"forwarded", "for=unknown"}}) == "10.0.0.1");
  CHECK(Client("10.0.0.1", {{"forwarded", "for=_hidden, for=10.0.0.5"}}) == "10.0.0.5");
  CHECK(Client("10.0.0.1", {{"forwarded", "proto=https"}}) == "10.0.0.1");  // no for=
  CHECK(Client("10.0.0.1", {{"forwarded", "for=203.0.113.9;for=198.51.100.1"}}) == "10.0.0.1");
  for (const char* garbage :
       {"not-an-ip", "999.1.1.1", "1.2.3", "[203.0.113.9]", "[::1", "fe80::1%eth0", "1.2.3.4:5:6",
        "\"", "[]:80", "2001:db8::7:80:1:2:3:4:5", "0x7f.1", "\x01\x02"}) {
    INFO(garbage);
    CHECK(Client("10.0.0.1", {{"x-forwarded-for", garbage}}) == "10.0.0.1");
    CHECK(Client("10.0.0.1", {{"x-forwarded-for", std::string("203.0.113.9, ") + garbage}}) ==
          "10.0.0.1");
  }
}

TEST_CASE("both headers are believed only when they name the same client", "[proxy]") {
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "203.0.113.9"},
                            {"forwarded", "for=\"203.0.113.9:1234\""}}) == "203.0.113.9");
  // A proxy that manages only one of them passes the other through from the client.
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", "203.0.113.9"},
                            {"forwarded", "for=198.51.100.1"}}) == "10.0.0.1");
}

TEST_CASE("64 KiB forwarding headers are read in bounded time and believed at most 32 hops deep",
          "[proxy]") {
  // 64 KiB of trusted hops: the walk stops after kMaxHops of them, at a trusted address.
  std::string trusted_chain;
  while (trusted_chain.size() < (64u << 10)) trusted_chain += "10.1.2.3, ";
  trusted_chain += "10.3.3.3";
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", trusted_chain}}) == "10.1.2.3");

  std::string long_forwarded = "for=\"";
  long_forwarded.append(64u << 10, ';');
  CHECK(Client("10.0.0.1", {{"forwarded", long_forwarded}}) == "10.0.0.1");

  std::string commas(64u << 10, ',');
  CHECK(Client("10.0.0.1", {{"x-forwarded-for", commas + "203.0.113.9"}}) == "203.0.113.9");
  CHECK(Client("10.0.0.1", {{"forwarded", commas + "for=203.0.113.9"}}) == "203.0.113.9");

  std::string escapes = "for=\"";
  for (int i = 0; i < (32 << 10); ++i) escapes += "\\\"";
  CHECK(Client("10.0.0.1", {{"forwarded", escapes}}) == "10.0.0.1");

  // A forged address left of the real one is never reached, however long the forgery.
  std::string forged;
  while (forged.size() < (64u << 10)) forged += "1.1.1.1,";
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    CHECK(Client("10.0.0.1", {{"x-forwarded-for", forged + "203.0.113.9"},
                              {"forwarded", "for=203.0.113.9"}}) == "203.0.113.9");
  }
  // Linear: twenty 64 KiB headers take milliseconds, nowhere near a second.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("trusted proxies are CIDRs or addresses, IPv4 and IPv6, anything else is refused",
          "[proxy]") {
  const TrustedProxies trusted =
      Trusted({"127.0.0.1", "10.0.0.0/8", "192.168.1.128/25", "::1", "2001:db8::/32"});
  auto in = [&](const char* text) { return trusted.Contains(*IpAddress::Parse(text)); };
  CHECK(in("127.0.0.1"));
  CHECK_FALSE(in("127.0.0.2"));
  CHECK(in("10.255.255.255"));
  CHECK_FALSE(in("11.0.0.0"));
  CHECK(in("192.168.1.200"));
  CHECK_FALSE(in("192.168.1.100"));
  CHECK(in("::1"));
  CHECK(in("::ffff:10.1.1.1"));
  CHECK(in("2001:db8:1234::1"));
  CHECK_FALSE(in("2001:db9::1"));
  CHECK(Trusted({"0.0.0.0/0"}).Contains(*IpAddress::Parse("203.0.113.9")));
  CHECK_FALSE(Trusted({"0.0.0.0/0"}).Contains(*IpAddress::Parse("2001:db8::1")));

  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.1/8",
                          "2001:db8::/129", "2001:db8::1/32", "example.com", "10.0.0.0/-1",
                          "10.0.0.0/0008", "fe80::1%eth0/64", "10.0.0.0 /8"}) {
    INFO(bad);
    auto parsed = TrustedProxies::Parse({"127.0.0.1/32", bad});
    REQUIRE_FALSE(parsed.ok());
    CHECK(std::string(parsed.status().message()).rfind("[1] ", 0) == 0);
  }
  CHECK_FALSE(TrustedProxies::Parse(std::vector<std::string>(257, "10.0.0.0/8")).ok());
}

TEST_CASE("limits count IPv4 addresses whole and IPv6 addresses by their /64", "[proxy]") {
  CHECK(AddressKey("203.0.113.9") == "203.0.113.9");
  CHECK(AddressKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(AddressKey("2001:db8:1:2::1") == AddressKey("2001:db8:1:2:ffff::9"));
  CHECK(AddressKey("2001:db8:1:3::1") != AddressKey("2001:db8:1:2::1"));
  CHECK(AddressKey("") == "");
}

}  // namespace
}  // namespace llmbox::hub::http
