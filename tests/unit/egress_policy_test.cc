// What a box may reach: entries, the always-denied set, and the decisions the proxy asks for.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "spoke/egress/policy.h"

namespace llmbox::spoke::egress {
namespace {

Entry E(std::string_view text) {
  auto entry = ParseEntry(text);
  INFO(text);
  REQUIRE(entry.ok());
  return *entry;
}

IpAddress Ip(std::string_view text) {
  auto address = ParseIp(text);
  INFO(text);
  REQUIRE(address.has_value());
  return *address;
}

Cidr Range(std::string_view text) {
  auto range = ParseCidr(text);
  INFO(text);
  REQUIRE(range.ok());
  return *range;
}

// The decision for `host` (a name resolved to `address`, or a literal) on `port`.
Decision Decide(const SpokePolicy& spoke, const BoxPolicy& box, std::string_view host,
                std::string_view address, int port) {
  const Decision by_name = DecideName(spoke, box, host, port);
  return DecideAddress(spoke, box, Ip(address), port, by_name);
}

TEST_CASE("modes parse by their names and nothing else", "[egress-policy]") {
  for (Mode mode : {Mode::kNone, Mode::kAllowlist, Mode::kOpen}) {
    auto parsed = ParseMode(ModeName(mode));
    REQUIRE(parsed.ok());
    CHECK(*parsed == mode);
  }
  for (std::string_view bad : std::vector<std::string_view>{"", "Open", "all", "allowlist ",
                                                            std::string_view("none\0", 5)}) {
    auto parsed = ParseMode(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(parsed.status().message()).find("none, allowlist, open") !=
          std::string::npos);
  }
}

TEST_CASE("IPv4 addresses parse only as four decimal octets", "[egress-policy]") {
  CHECK(Ip("192.0.2.7").ToString() == "192.0.2.7");
  CHECK(Ip("0.0.0.0").ToString() == "0.0.0.0");
  CHECK(Ip("255.255.255.255").ToString() == "255.255.255.255");
  CHECK_FALSE(Ip("8.8.8.8").v6);
  for (std::string_view bad :
       std::vector<std::string_view>{"",           "1",          "127.1",
                                     "1.2.3",      "1.2.3.4.5",  "01.2.3.4",
                                     "1.2.3.04",   "0x7f.0.0.1", "0x7f.1",
                                     "0177.0.0.1", "256.1.1.1",  "1.2.3.4 ",
                                     " 1.2.3.4",   "1..2.3",     "1.2.3.",
                                     ".1.2.3",     "1.2.3.-4",   "+1.2.3.4",
                                     "2130706433", "1.2.3.4/32", std::string_view("1.2.3.4\0", 8),
                                     "١.٢.٣.٤",    "1.2.3.1000"}) {
    INFO(bad);
    CHECK_FALSE(ParseIp(bad).has_value());
  }
}

TEST_CASE("IPv6 addresses parse with '::' and an embedded IPv4 tail", "[egress-policy]") {
  CHECK(Ip("::").ToString() == "::");
  CHECK(Ip("::1").ToString() == "::1");
  CHECK(Ip("2001:DB8:0:0:0:0:0:1").ToString() == "2001:db8::1");
  CHECK(Ip("::ffff:127.0.0.1").v6);
  CHECK(Ip("::ffff:127.0.0.1").ToString() == "::ffff:127.0.0.1");
  CHECK(Ip("64:ff9b::169.254.169.254").bytes[15] == 254);
  const std::string colons(200, ':');
  for (std::string_view bad : std::vector<std::string_view>{
           ":", ":::", "1::2::3", "fe80::1%eth0", "[::1]", "::ffff:127.1", "::ffff:01.2.3.4",
           "12345::", "1:2:3:4:5:6:7:8:9", "g::1", colons, "::1 "}) {
    INFO(bad);
    CHECK_FALSE(ParseIp(bad).has_value());
  }
}

TEST_CASE("ranges need their host bits clear and a prefix in range", "[egress-policy]") {
  CHECK(Range("10.1.0.0/16").ToString() == "10.1.0.0/16");
  CHECK(Range("192.0.2.7").prefix == 32);
  CHECK(Range("2001:db8::/32").ToString() == "2001:db8::/32");
  CHECK(Range("::1").prefix == 128);
  CHECK(Range("0.0.0.0/0").Contains(Ip("8.8.8.8")));
  CHECK_FALSE(Range("0.0.0.0/0").Contains(Ip("::1")));
  CHECK(Range("10.1.0.0/16").Contains(Ip("10.1.255.3")));
  CHECK_FALSE(Range("10.1.0.0/16").Contains(Ip("10.2.0.1")));
  CHECK(Range("172.16.0.0/12").Contains(Ip("172.31.255.255")));
  CHECK_FALSE(Range("172.16.0.0/12").Contains(Ip("172.32.0.0")));
  auto host_bits = ParseCidr("10.1.2.3/16");
  REQUIRE_FALSE(host_bits.ok());
  CHECK(std::string(host_bits.status().message()).find("10.1.0.0/16") != std::string::npos);
  for (std::string_view bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1",
                               "10.0.0.0/8/8", "example.com/8", "/8"}) {
    INFO(bad);
    CHECK_FALSE(ParseCidr(bad).ok());
  }
}

TEST_CASE("entries parse to their canonical text and back", "[egress-policy]") {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"example.com", "example.com"},
      {"Example.COM.", "example.com"},
      {"api.anthropic.com:443", "api.anthropic.com:443"},
      {"*.pypi.org", "*.pypi.org"},
      {"*.PyPI.org:443", "*.pypi.org:443"},
      {"localhost", "localhost"},
      {"1.2.3.4.nip.io", "1.2.3.4.nip.io"},
      {"xn--bcher-kva.example", "xn--bcher-kva.example"},
      {"10.1.0.0/16", "10.1.0.0/16"},
      {"10.1.0.0/16:5432", "10.1.0.0/16:5432"},
      {"192.0.2.7", "192.0.2.7"},
      {"192.0.2.7/32:80", "192.0.2.7:80"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"[2001:db8::1]:443", "[2001:db8::1]:443"},
      {"[2001:DB8::/32]:443", "[2001:db8::/32]:443"},
      {"a.b:65535", "a.b:65535"},
  };
  for (const auto& [text, canonical] : cases) {
    INFO(text);
    const Entry entry = E(text);
    CHECK(entry.ToString() == canonical);
    CHECK(E(entry.ToString()) == entry);
  }
  CHECK(E("*.pypi.org").kind == Entry::Kind::kWildcard);
  CHECK(E("*.pypi.org").name == "pypi.org");
  CHECK(E("1.2.3.4.nip.io").kind == Entry::Kind::kDomain);
  CHECK(E("192.0.2.7").kind == Entry::Kind::kRange);
  CHECK(E("a.b:65535").port == 65535);
}

TEST_CASE("hostile and malformed entries are refused with a message naming them",
          "[egress-policy]") {
  const std::string long_label = std::string(64, 'a') + ".com";
  const std::string long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                std::string(63, 'c') + "." + std::string(62, 'd') + ".com";
  const std::string huge(1 << 20, 'a');
  const std::string_view bad[] = {
      "",
      "*",
      "*:443",
      "*.com",
      "*.",
      "**.example.com",
      "a.*.example.com",
      "*example.com",
      "example.*",
      "exa mple.com",
      "exa_mple.com",
      "-example.com",
      "example-.com",
      "example..com",
      ".example.com",
      "example.com:0",
      "example.com:65536",
      "example.com:",
      "example.com:080",
      "example.com:http",
      "example.com:443:443",
      "http://example.com",
      "example.com/path",
      "bücher.example",
      "例え.jp",
      std::string_view("evil.com\0.example.com", 21),
      "evil.com\r\nX: y",
      "127.1",
      "0x7f.1",
      "1.0x7f",
      "10.0.0.1.",
      "2130706433",
      "[::1",
      "[example.com]:443",
      "[::1]443",
      "::1:443x",
      "10.1.2.3/16",
      long_label,
      long_name,
      huge,
  };
  for (std::string_view text : bad) {
    INFO(text.substr(0, 80));
    auto entry = ParseEntry(text);
    REQUIRE_FALSE(entry.ok());
    CHECK(entry.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(entry.status().message());
    CHECK(message.find("network entry '") == 0);
    CHECK(message.size() < 400);  // the huge input is not echoed back whole
  }
  // 253 bytes is the longest name.
  const std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                              std::string(63, 'c') + "." + std::string(61, 'd');
  REQUIRE(longest.size() == 253);
  CHECK(ParseEntry(longest).ok());
  CHECK_FALSE(ParseEntry(longest + "d").ok());
}

TEST_CASE("every always-denied range is refused in open mode, v4 and v6", "[egress-policy]") {
  const SpokePolicy spoke;
  const BoxPolicy open{.mode = Mode::kOpen};
  const std::pair<std::string_view, std::string_view> denied[] = {
      {"0.0.0.0", "this network 0.0.0.0/8"},
      {"0.255.1.2", "this network 0.0.0.0/8"},
      {"10.0.0.1", "private 10.0.0.0/8"},
      {"10.255.255.255", "private 10.0.0.0/8"},
      {"100.64.0.1", "CGNAT 100.64.0.0/10"},
      {"100.127.255.254", "CGNAT 100.64.0.0/10"},
      {"127.0.0.1", "loopback 127.0.0.0/8"},
      {"127.255.0.3", "loopback 127.0.0.0/8"},
      {"169.254.169.254", "link-local 169.254.0.0/16"},
      {"172.16.0.1", "private 172.16.0.0/12"},
      {"172.31.0.1", "private 172.16.0.0/12"},
      {"192.168.1.1", "private 192.168.0.0/16"},
      {"224.0.0.1", "multicast 224.0.0.0/4"},
      {"239.255.255.250", "multicast 224.0.0.0/4"},
      {"240.0.0.1", "reserved 240.0.0.0/4"},
      {"255.255.255.255", "reserved 240.0.0.0/4"},
      {"::", "unspecified ::/128"},
      {"::1", "loopback ::1/128"},
      {"fe80::1", "link-local fe80::/10"},
      {"febf::1", "link-local fe80::/10"},
      {"fec0::1", "site-local fec0::/10"},
      {"fc00::1", "unique local fc00::/7"},
      {"fd12:3456::1", "unique local fc00::/7"},
      {"ff02::1", "multicast ff00::/8"},
      // The same v4 destinations written as v6.
      {"::ffff:127.0.0.1", "loopback 127.0.0.0/8"},
      {"::ffff:169.254.169.254", "link-local 169.254.0.0/16"},
      {"::ffff:10.0.0.1", "private 10.0.0.0/8"},
      {"::ffff:a9fe:a9fe", "link-local 169.254.0.0/16"},
      {"::127.0.0.1", "loopback 127.0.0.0/8"},
      {"::169.254.169.254", "link-local 169.254.0.0/16"},
      {"64:ff9b::169.254.169.254", "link-local 169.254.0.0/16"},
      {"64:ff9b::a00:1", "private 10.0.0.0/8"},
  };
  for (const auto& [address, rule] : denied) {
    INFO(address);
    const Decision d = Decide(spoke, open, address, address, 443);
    CHECK_FALSE(d.allowed);
    CHECK(d.rule.find("always denied: " + std::string(rule)) == 0);
    // By name too: a name that resolves there is refused the same way.
    const Decision by_name = Decide(spoke, open, "innocent.example.com", address, 443);
    CHECK_FALSE(by_name.allowed);
    CHECK(by_name.rule == d.rule);
  }
  for (std::string_view address :
       {"8.8.8.8", "198.18.0.1", "198.19.255.254", "100.128.0.1", "172.32.0.1", "169.253.0.1",
        "11.0.0.1", "2001:db8::1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
    INFO(address);
    const Decision d = Decide(spoke, open, address, address, 443);
    CHECK(d.allowed);
    CHECK(d.rule == "open");
  }
}

TEST_CASE("the spoke host's own addresses are always denied, whatever the operator lifted",
          "[egress-policy]") {
  SpokePolicy spoke;
  spoke.host_addresses = {Ip("198.18.0.1"), Ip("2001:db8::5")};
  spoke.allow_ranges = {Range("198.18.0.0/15")};
  const BoxPolicy open{.mode = Mode::kOpen};
  for (std::string_view address : {"198.18.0.1", "::ffff:198.18.0.1", "2001:db8::5"}) {
    INFO(address);
    const Decision d = Decide(spoke, open, "host.example", address, 80);
    CHECK_FALSE(d.allowed);
    CHECK(d.rule.find("always denied: the spoke host's address") == 0);
  }
  CHECK(Decide(spoke, open, "other.example", "198.18.0.2", 80).allowed);
}

TEST_CASE("an operator range lifts only what it covers from the always-denied set",
          "[egress-policy]") {
  SpokePolicy spoke;
  spoke.allow_ranges = {Range("10.1.0.0/16"), Range("127.0.0.3")};
  const BoxPolicy open{.mode = Mode::kOpen};
  CHECK(Decide(spoke, open, "registry.internal", "10.1.2.3", 443).allowed);
  CHECK(Decide(spoke, open, "10.1.2.3", "10.1.2.3", 443).allowed);
  CHECK(Decide(spoke, open, "registry.internal", "::ffff:10.1.2.3", 443).allowed);
  CHECK_FALSE(Decide(spoke, open, "registry.internal", "10.2.0.1", 443).allowed);
  CHECK(Decide(spoke, open, "x.test", "127.0.0.3", 80).allowed);
  CHECK_FALSE(Decide(spoke, open, "x.test", "127.0.0.4", 80).allowed);
  CHECK_FALSE(Decide(spoke, open, "x.test", "169.254.169.254", 80).allowed);
}

TEST_CASE("allowlist names match exactly, and wildcards match only below their suffix",
          "[egress-policy]") {
  SpokePolicy spoke;
  spoke.base_allowlist = {E("api.anthropic.com:443")};
  const BoxPolicy box{.mode = Mode::kAllowlist, .allow = {E("*.pypi.org"), E("example.com")}};
  auto allowed = [&](std::string_view host, int port) {
    return DecideName(spoke, box, host, port).allowed;
  };
  CHECK(allowed("api.anthropic.com", 443));
  CHECK(allowed("API.Anthropic.com.", 443));
  CHECK_FALSE(allowed("api.anthropic.com", 80));
  CHECK_FALSE(allowed("x.api.anthropic.com", 443));
  CHECK(allowed("files.pypi.org", 443));
  CHECK(allowed("a.b.pypi.org", 8080));
  CHECK_FALSE(allowed("pypi.org", 443));      // the wildcard is not the name itself
  CHECK_FALSE(allowed("evilpypi.org", 443));  // nor a name that merely ends the same
  CHECK_FALSE(allowed("pypi.org.evil.com", 443));
  CHECK(allowed("example.com", 22));
  CHECK_FALSE(allowed("www.example.com", 443));
  CHECK_FALSE(allowed("example.co", 443));
  CHECK_FALSE(allowed("example.com", 0));
  CHECK_FALSE(allowed("example.com", 65536));
  CHECK(DecideName(spoke, box, "files.pypi.org", 443).rule == "allowlist: *.pypi.org");
  CHECK(DecideName(spoke, box, "api.anthropic.com", 443).rule ==
        "allowlist: api.anthropic.com:443");
  CHECK(DecideName(spoke, box, "nope.example.org", 443).rule == "not in the allowlist");
}

TEST_CASE("hostile host names are refused by name, never matched or resolved", "[egress-policy]") {
  SpokePolicy spoke;
  const BoxPolicy box{.mode = Mode::kAllowlist, .allow = {E("*.example.com")}};
  const BoxPolicy open{.mode = Mode::kOpen};
  for (std::string_view host : std::vector<std::string_view>{
           "", "127.1", "0x7f.1", "0x7f000001", "2130706433", "a.example.com\r\nHost: x",
           std::string_view("a.example.com\0.evil", 19), "a b.example.com", "ä.example.com",
           "a..example.com", "*.example.com"}) {
    INFO(host);
    const Decision d = DecideName(spoke, box, host, 443);
    CHECK_FALSE(d.allowed);
    CHECK_FALSE(DecideName(spoke, open, host, 443).allowed);
    CHECK(DecideName(spoke, open, host, 443).rule == "invalid host name");
  }
  const std::string huge = std::string(1 << 20, 'a') + ".example.com";
  CHECK_FALSE(DecideName(spoke, box, huge, 443).allowed);
  // A name that spells an address is only a name: its own resolution decides where it goes.
  CHECK(DecideName(spoke, open, "127.0.0.1.nip.io", 443).allowed);
  CHECK_FALSE(Decide(spoke, open, "127.0.0.1.nip.io", "127.0.0.1", 443).allowed);
}

TEST_CASE("an IP literal is decided by address, never by the domain entries", "[egress-policy]") {
  SpokePolicy spoke;
  spoke.base_allowlist = {E("198.18.0.0/16:443")};
  const BoxPolicy box{.mode = Mode::kAllowlist, .allow = {E("*.example.com"), E("2001:db8::/32")}};
  CHECK(Decide(spoke, box, "198.18.3.4", "198.18.3.4", 443).allowed);
  CHECK(DecideName(spoke, box, "198.18.3.4", 443).rule == "allowlist: 198.18.0.0/16:443");
  CHECK_FALSE(DecideName(spoke, box, "198.18.3.4", 80).allowed);
  CHECK_FALSE(DecideName(spoke, box, "198.19.0.1", 443).allowed);
  CHECK(DecideName(spoke, box, "198.19.0.1", 443).rule == "IP address not in the allowlist");
  CHECK(DecideName(spoke, box, "::ffff:198.18.0.1", 443).allowed);
  CHECK(DecideName(spoke, box, "2001:db8::7", 22).allowed);
  CHECK_FALSE(DecideName(spoke, box, "8.8.8.8", 443).allowed);
  // A range entry cannot lift the always-denied set.
  const BoxPolicy wide{.mode = Mode::kAllowlist, .allow = {E("0.0.0.0/0")}};
  CHECK(DecideName(spoke, wide, "169.254.169.254", 80).allowed);
  CHECK_FALSE(Decide(spoke, wide, "169.254.169.254", "169.254.169.254", 80).allowed);
}

TEST_CASE("mode none refuses everything", "[egress-policy]") {
  SpokePolicy spoke;
  spoke.base_allowlist = {E("api.anthropic.com")};
  spoke.allow_ranges = {Range("198.18.0.0/15")};
  const BoxPolicy none{.mode = Mode::kNone, .allow = {E("example.com"), E("0.0.0.0/0")}};
  for (std::string_view host : {"api.anthropic.com", "example.com", "198.18.0.1", "8.8.8.8"}) {
    INFO(host);
    const Decision d = DecideName(spoke, none, host, 443);
    CHECK_FALSE(d.allowed);
    CHECK(d.rule == "mode none");
    CHECK_FALSE(
        DecideAddress(spoke, none, Ip("198.18.0.1"), 443, {.allowed = true, .rule = "x"}).allowed);
  }
}

TEST_CASE("a box policy is checked against what the spoke allows", "[egress-policy]") {
  SpokePolicy spoke;
  spoke.modes = {Mode::kNone, Mode::kAllowlist};
  spoke.box_may_allow = {E("*.pypi.org:443"), E("github.com"), E("198.18.0.0/15")};
  spoke.max_box_entries = 3;
  CHECK(CheckBoxPolicy(
            spoke, {.mode = Mode::kAllowlist,
                    .allow = {E("files.pypi.org:443"), E("*.a.pypi.org:443"), E("github.com:22")}})
            .ok());
  CHECK(CheckBoxPolicy(spoke, {.mode = Mode::kAllowlist, .allow = {E("198.18.4.0/24:80")}}).ok());
  CHECK(CheckBoxPolicy(spoke, {.mode = Mode::kNone}).ok());

  const absl::Status open = CheckBoxPolicy(spoke, {.mode = Mode::kOpen});
  CHECK(open.code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(open.message()) ==
        "network mode open is not allowed on this spoke; it allows: none, allowlist");

  for (std::string_view refused : {"files.pypi.org:80", "files.pypi.org", "pypi.org:443",
                                   "*.pypi.org", "www.github.com", "198.16.0.0/12", "8.8.8.8"}) {
    INFO(refused);
    const absl::Status status =
        CheckBoxPolicy(spoke, {.mode = Mode::kAllowlist, .allow = {E(refused)}});
    CHECK(status.code() == absl::StatusCode::kPermissionDenied);
    const std::string message(status.message());
    CHECK(message.find("network entry " + E(refused).ToString() + " is not allowed") == 0);
    CHECK(message.find("*.pypi.org:443, github.com, 198.18.0.0/15") != std::string::npos);
  }
  const absl::Status too_many = CheckBoxPolicy(
      spoke, {.mode = Mode::kAllowlist,
              .allow = {E("github.com"), E("github.com:1"), E("github.com:2"), E("github.com:3")}});
  CHECK(too_many.code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("'any public name or range' still refuses private, loopback and metadata ranges",
          "[egress-policy]") {
  SpokePolicy spoke;
  spoke.box_may_allow_anything = true;
  spoke.host_addresses = {Ip("198.18.0.1")};
  CHECK(CheckBoxPolicy(spoke, {.allow = {E("anything.example"), E("*.example.org:443"),
                                         E("8.8.8.0/24"), E("2001:db8::/32")}})
            .ok());
  for (std::string_view refused :
       {"10.0.0.0/8", "10.1.0.0/16", "169.254.169.254", "0.0.0.0/0", "127.0.0.1", "::1", "::/0",
        "fd00::/8", "::ffff:8.8.8.8", "64:ff9b::/96", "198.18.0.0/24"}) {
    INFO(refused);
    const absl::Status status = CheckBoxPolicy(spoke, {.allow = {E(refused)}});
    CHECK(status.code() == absl::StatusCode::kPermissionDenied);
    CHECK(std::string(status.message()).find("any public name or range") != std::string::npos);
  }
  spoke.allow_ranges = {Range("10.1.0.0/16")};
  CHECK(CheckBoxPolicy(spoke, {.allow = {E("10.1.2.0/24")}}).ok());
  CHECK_FALSE(CheckBoxPolicy(spoke, {.allow = {E("10.0.0.0/15")}}).ok());
}

TEST_CASE("v4-mapped entries and literals are the v4 address they hold", "[egress-policy]") {
  SpokePolicy spoke;
  spoke.box_may_allow_anything = true;
  const Entry mapped = E("[::ffff:127.0.0.1]");
  CHECK(mapped.kind == Entry::Kind::kRange);
  CHECK(mapped.ToString() == "::ffff:127.0.0.1");
  CHECK(CheckBoxPolicy(spoke, {.allow = {mapped}}).code() == absl::StatusCode::kPermissionDenied);
  CHECK(CheckBoxPolicy(spoke, {.allow = {E("[::ffff:169.254.169.254]:80")}}).code() ==
        absl::StatusCode::kPermissionDenied);
  const BoxPolicy open{.mode = Mode::kOpen};
  CHECK(Decide(spoke, open, "::ffff:127.0.0.1", "::ffff:127.0.0.1", 443).rule ==
        "always denied: loopback 127.0.0.0/8");
  // An allowed v4 range covers the mapped literal of an address inside it.
  const BoxPolicy box{.mode = Mode::kAllowlist, .allow = {E("198.18.0.0/15")}};
  CHECK(Decide(spoke, box, "::ffff:198.18.0.9", "::ffff:198.18.0.9", 443).allowed);
}

TEST_CASE("a spoke that lets boxes add nothing says so", "[egress-policy]") {
  const SpokePolicy spoke;
  const absl::Status status = CheckBoxPolicy(spoke, {.allow = {E("example.com")}});
  CHECK(status.code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(status.message()).find("no entries of its own") != std::string::npos);
}

}  // namespace
}  // namespace llmbox::spoke::egress
