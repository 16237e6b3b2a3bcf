#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "spoke/egress/firewall.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_subprocess_runner.h"

namespace llmbox::spoke::egress {
namespace {

using namespace std::chrono_literals;

constexpr const char* kMeta =
    R"({"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}})";

const BoxNetwork kB1{.box_id = "b-1",
                     .bridge = "br-0a1b2c3d4e5f",
                     .gateway = "10.213.5.1",
                     .subnet = "10.213.5.0/24"};

// nft as the firewall sees it: `list maps inet` and `list set` answer what the test put in,
// `-f -` records the script and answers `exit_code` with `error` on stderr.
class ScriptedNft {
 public:
  ScriptedNft() {
    runner.Handle("nft", [this](const common::SubprocessRequest& request) {
      common::SubprocessResult r;
      r.exit_code = 0;
      const std::vector<std::string>& a = request.argv;
      argvs.push_back(a);
      if (a.size() == 3 && a[1] == "-f" && a[2] == "-") {
        scripts.push_back(request.stdin_data);
        r.exit_code = script_exit_code;
        r.stderr_data = script_error;
      } else if (a.size() == 5 && a[1] == "-j" && a[3] == "maps") {
        r.stdout_data = maps;
      } else if (a.size() == 7 && a[1] == "-j" && a[3] == "set") {
        auto it = sets.find(a[6]);
        if (it == sets.end()) {
          r.exit_code = 1;
          r.stderr_data = "Error: No such file or directory\nlist set inet " + a[5] + " " + a[6];
        } else {
          r.stdout_data = it->second;
        }
      } else {
        r.exit_code = 2;
        r.stderr_data = "unexpected argv";
      }
      return r;
    });
  }

  testing::FakeSubprocessRunner runner;
  std::string maps = std::string(R"({"nftables": [)") + kMeta + "]}";
  std::map<std::string, std::string> sets;
  int script_exit_code = 0;
  std::string script_error;
  std::vector<std::string> scripts;
  std::vector<std::vector<std::string>> argvs;
};

// The maps of table llmbox_local holding `elements` ("[key, verdict]" JSON each, comma-joined
// per map) plus a map of another table that must be ignored.
std::string Maps(const std::string& in_from, const std::string& fwd_from,
                 const std::string& fwd_to) {
  auto map = [](const std::string& name, const std::string& elems) {
    std::string m =
        R"({"map": {"family": "inet", "name": ")" + name +
        R"(", "table": "llmbox_local", "type": "ifname", "handle": 3, "map": "verdict")";
    if (!elems.empty()) m += R"(, "elem": [)" + elems + "]";
    return m + "}}";
  };
  return std::string(R"({"nftables": [)") + kMeta + ", " + map("in_from", in_from) + ", " +
         map("fwd_from", fwd_from) + ", " + map("fwd_to", fwd_to) +
         R"(, {"map": {"family": "inet", "name": "in_from", "table": "other", "type": "ifname",)"
         R"( "map": "verdict", "elem": [["br-0a1b2c3d4e5f", {"jump": {"target": "box_b_1_in"}}]]}}]})";
}

std::string Elem(const std::string& key, const std::string& chain) {
  return R"([")" + key + R"(", {"jump": {"target": ")" + chain + R"("}}])";
}

// The whole script Reset writes for kB1 alone (also the ruleset docs/network.md shows).
const std::string kFreshTable = R"(table inet llmbox_local
delete table inet llmbox_local
table inet llmbox_local {
	map in_from {
		type ifname : verdict
	}
	map fwd_from {
		type ifname : verdict
	}
	map fwd_to {
		type ifname : verdict
	}
	chain input {
		type filter hook input priority filter - 10; policy accept;
		iifname vmap @in_from
	}
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		iifname vmap @fwd_from
		oifname vmap @fwd_to
	}
}
)";
const std::string kB1Block =
    R"(add set inet llmbox_local box_b_1_v4 { type ipv4_addr . inet_proto . inet_service; size 64; flags dynamic,timeout; timeout 1h; }
add set inet llmbox_local box_b_1_v6 { type ipv6_addr . inet_proto . inet_service; size 64; flags dynamic,timeout; timeout 1h; }
add chain inet llmbox_local box_b_1_refuse
flush chain inet llmbox_local box_b_1_refuse
add rule inet llmbox_local box_b_1_refuse meta nfproto ipv4 meta l4proto { tcp, udp } update @box_b_1_v4 { ip daddr . meta l4proto . th dport }
add rule inet llmbox_local box_b_1_refuse meta nfproto ipv4 meta l4proto != { tcp, udp } update @box_b_1_v4 { ip daddr . meta l4proto . 0 }
add rule inet llmbox_local box_b_1_refuse meta nfproto ipv6 meta l4proto { tcp, udp } update @box_b_1_v6 { ip6 daddr . meta l4proto . th dport }
add rule inet llmbox_local box_b_1_refuse meta nfproto ipv6 meta l4proto != { tcp, udp } update @box_b_1_v6 { ip6 daddr . meta l4proto . 0 }
add rule inet llmbox_local box_b_1_refuse counter drop
add chain inet llmbox_local box_b_1_in
flush chain inet llmbox_local box_b_1_in
add rule inet llmbox_local box_b_1_in ip saddr 10.213.5.0/24 ip daddr 10.213.5.1 tcp dport 3128 accept
add rule inet llmbox_local box_b_1_in meta pkttype { broadcast, multicast } counter drop
add rule inet llmbox_local box_b_1_in goto box_b_1_refuse
add chain inet llmbox_local box_b_1_fwd
flush chain inet llmbox_local box_b_1_fwd
add rule inet llmbox_local box_b_1_fwd oifname "br-0a1b2c3d4e5f" accept
add rule inet llmbox_local box_b_1_fwd goto box_b_1_refuse
add chain inet llmbox_local box_b_1_to
flush chain inet llmbox_local box_b_1_to
add rule inet llmbox_local box_b_1_to ct state established,related accept
add rule inet llmbox_local box_b_1_to counter drop
add element inet llmbox_local in_from { "br-0a1b2c3d4e5f" : jump box_b_1_in }
add element inet llmbox_local fwd_from { "br-0a1b2c3d4e5f" : jump box_b_1_fwd }
add element inet llmbox_local fwd_to { "br-0a1b2c3d4e5f" : jump box_b_1_to }
)";

TEST_CASE("reset writes one transaction that recreates the table with each box's rules",
          "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local", .proxy_port = 3128}, nft.runner);
  REQUIRE(fw->Reset({kB1}).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] == kFreshTable + kB1Block);
  CHECK(nft.argvs.size() == 1);  // nothing read first: the idiom works with or without a table
}

TEST_CASE("reset with no boxes leaves an empty table", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Reset({}).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] == kFreshTable);
}

TEST_CASE("reset puts every box in the same transaction and refuses a box or bridge twice",
          "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  BoxNetwork b2{
      .box_id = "b2", .bridge = "br-2", .gateway = "10.213.6.1", .subnet = "10.213.6.0/24"};
  REQUIRE(fw->Reset({kB1, b2}).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(
      nft.scripts[0].find("add element inet llmbox_local in_from { \"br-2\" : jump box_b2_in }") !=
      std::string::npos);
  CHECK(nft.scripts[0].find("box_b_1_in }") != std::string::npos);

  BoxNetwork same_bridge = b2;
  same_bridge.box_id = "b3";
  same_bridge.bridge = kB1.bridge;
  CHECK(fw->Reset({kB1, same_bridge}).code() == absl::StatusCode::kInvalidArgument);
  BoxNetwork same_id = b2;
  same_id.box_id = "B-1";  // the same box as b-1: ids are case-insensitive
  CHECK(fw->Reset({kB1, same_id}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(nft.scripts.size() == 1);
}

TEST_CASE("add to a spoke without a table creates the table with the box", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Add(kB1).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] == kFreshTable + kB1Block);
}

TEST_CASE("add to an existing table keeps other boxes and only adds the box's rules",
          "[firewall]") {
  ScriptedNft nft;
  nft.maps = Maps(Elem("br-other", "box_b2_in"), Elem("br-other", "box_b2_fwd"),
                  Elem("br-other", "box_b2_to"));
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Add(kB1).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] == kB1Block);
}

TEST_CASE("add replaces the box's elements for an old bridge and a stale element for its bridge",
          "[firewall]") {
  ScriptedNft nft;
  nft.maps = Maps(Elem("br-old", "box_b_1_in") + ", " + Elem("br-0a1b2c3d4e5f", "box_gone_in"),
                  Elem("br-old", "box_b_1_fwd"), Elem("br-x", "box_b2_to"));
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Add(kB1).ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] ==
        std::string("delete element inet llmbox_local in_from { \"br-old\" }\n"
                    "delete element inet llmbox_local in_from { "
                    "\"br-0a1b2c3d4e5f\" }\n"
                    "delete element inet llmbox_local fwd_from { \"br-old\" }\n") +
            kB1Block);
}

TEST_CASE("remove deletes the box's elements, chains and sets in one transaction", "[firewall]") {
  ScriptedNft nft;
  nft.maps = Maps(Elem("br-0a1b2c3d4e5f", "box_b_1_in") + ", " + Elem("br-9", "box_b_10_in"),
                  Elem("br-0a1b2c3d4e5f", "box_b_1_fwd"), Elem("br-0a1b2c3d4e5f", "box_b_1_to"));
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Remove("b-1").ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] ==
        R"(delete element inet llmbox_local in_from { "br-0a1b2c3d4e5f" }
delete element inet llmbox_local fwd_from { "br-0a1b2c3d4e5f" }
delete element inet llmbox_local fwd_to { "br-0a1b2c3d4e5f" }
add chain inet llmbox_local box_b_1_in
flush chain inet llmbox_local box_b_1_in
delete chain inet llmbox_local box_b_1_in
add chain inet llmbox_local box_b_1_fwd
flush chain inet llmbox_local box_b_1_fwd
delete chain inet llmbox_local box_b_1_fwd
add chain inet llmbox_local box_b_1_to
flush chain inet llmbox_local box_b_1_to
delete chain inet llmbox_local box_b_1_to
add chain inet llmbox_local box_b_1_refuse
flush chain inet llmbox_local box_b_1_refuse
delete chain inet llmbox_local box_b_1_refuse
add set inet llmbox_local box_b_1_v4 { type ipv4_addr . inet_proto . inet_service; size 64; flags dynamic,timeout; timeout 1h; }
delete set inet llmbox_local box_b_1_v4
add set inet llmbox_local box_b_1_v6 { type ipv6_addr . inet_proto . inet_service; size 64; flags dynamic,timeout; timeout 1h; }
delete set inet llmbox_local box_b_1_v6
)");
}

TEST_CASE("remove without a table changes nothing", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Remove("b-1").ok());
  CHECK(nft.scripts.empty());
}

TEST_CASE("drop removes the spoke's whole table, there or not, in one transaction", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  REQUIRE(fw->Drop().ok());
  REQUIRE(nft.scripts.size() == 1);
  CHECK(nft.scripts[0] == "table inet llmbox_local\ndelete table inet llmbox_local\n");
}

TEST_CASE("hostile names and addresses are refused before nft runs", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  auto with = [](auto change) {
    BoxNetwork b = kB1;
    change(b);
    return b;
  };
  const std::vector<BoxNetwork> hostile = {
      with([](BoxNetwork& b) { b.bridge = "br\" }; flush ruleset; {"; }),
      with([](BoxNetwork& b) { b.bridge = "br-x\nflush ruleset"; }),
      with([](BoxNetwork& b) { b.bridge = "br-0123456789abc"; }),  // 16 characters
      with([](BoxNetwork& b) { b.bridge = ""; }),
      with([](BoxNetwork& b) { b.bridge = "br x"; }),
      with([](BoxNetwork& b) { b.gateway = "10.213.5.1 accept"; }),
      with([](BoxNetwork& b) { b.gateway = "10.213.5.1;"; }),
      with([](BoxNetwork& b) { b.gateway = "010.213.5.1"; }),
      with([](BoxNetwork& b) { b.gateway = "fd00::1"; }),
      with([](BoxNetwork& b) { b.gateway = std::string("10.213.5.1\0x", 12); }),
      with([](BoxNetwork& b) { b.subnet = "10.213.5.0/24 accept"; }),
      with([](BoxNetwork& b) { b.subnet = "10.213.5.0/33"; }),
      with([](BoxNetwork& b) { b.subnet = "10.213.5.0/+4"; }),
      with([](BoxNetwork& b) { b.subnet = "10.213.5.0"; }),
      with([](BoxNetwork& b) { b.subnet = "10.99.0.0/16"; }),  // does not hold the gateway
      with([](BoxNetwork& b) { b.box_id = "b1; flush ruleset"; }),
      with([](BoxNetwork& b) { b.box_id = "b_1"; }),
      with([](BoxNetwork& b) { b.box_id = ""; }),
      with([](BoxNetwork& b) { b.box_id = std::string(64, 'a'); }),
  };
  for (const BoxNetwork& b : hostile) {
    INFO(b.box_id << " " << b.bridge << " " << b.gateway << " " << b.subnet);
    CHECK(fw->Add(b).code() == absl::StatusCode::kInvalidArgument);
    CHECK(fw->Reset({b}).code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(fw->Remove("x\"; flush ruleset").code() == absl::StatusCode::kInvalidArgument);
  CHECK(fw->Refusals("x y").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(nft.argvs.empty());

  auto bad_port = MakeNftFirewall({.spoke_name = "local", .proxy_port = 0}, nft.runner);
  CHECK(bad_port->Reset({}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(nft.argvs.empty());
}

TEST_CASE("a subnet given with host bits is written as its network", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local", .proxy_port = 8080}, nft.runner);
  BoxNetwork b = kB1;
  b.subnet = "10.213.5.77/24";
  REQUIRE(fw->Reset({b}).ok());
  CHECK(nft.scripts[0].find("ip saddr 10.213.5.0/24 ip daddr 10.213.5.1 tcp dport 8080 accept") !=
        std::string::npos);
}

TEST_CASE("a map key that llmbox cannot have written stops add and remove", "[firewall]") {
  ScriptedNft nft;
  nft.maps = Maps(Elem(R"(br\" }; flush ruleset; {)", "box_b_1_in"), "", "");
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  CHECK(fw->Add(kB1).code() == absl::StatusCode::kInternal);
  CHECK(fw->Remove("b-1").code() == absl::StatusCode::kInternal);
  CHECK(nft.scripts.empty());
}

TEST_CASE("table names are the spoke's name sanitized and bounded", "[firewall]") {
  CHECK(NftTableName("local") == "llmbox_local");
  CHECK(NftTableName("Spoke-1.eu") == "llmbox_spoke_1_eu");
  CHECK(NftTableName("a;b }\n") == "llmbox_a_b___");
  CHECK(NftTableName(std::string(500, 'x')).size() == 64);
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "x; flush ruleset"}, nft.runner);
  REQUIRE(fw->Reset({}).ok());
  CHECK(nft.scripts[0].rfind("table inet llmbox_x__flush_ruleset\n", 0) == 0);
}

std::string Set(const std::string& name, const std::string& elems) {
  return std::string(R"({"nftables": [)") + kMeta + R"(, {"set": {"family": "inet", "name": ")" +
         name +
         R"(", "table": "llmbox_local", "type": ["ipv4_addr", "inet_proto", "inet_service"], )"
         R"("handle": 9, "size": 64, "flags": ["timeout"], "timeout": 3600)" +
         (elems.empty() ? "" : R"(, "elem": [)" + elems + "]") + "}}]}";
}

std::string Rec(const std::string& addr, const std::string& proto, int port, int expires) {
  return R"({"elem": {"val": {"concat": [")" + addr + R"(", )" + proto + ", " +
         std::to_string(port) + R"(]}, "expires": )" + std::to_string(expires) + "}}";
}

TEST_CASE("refusals come from both sets, newest last, timed by what is left of the timeout",
          "[firewall]") {
  ScriptedNft nft;
  nft.sets["box_b_1_v4"] = Set("box_b_1_v4", Rec("10.213.5.1", R"("udp")", 53, 3590) + ", " +
                                                 Rec("10.213.6.2", R"("tcp")", 80, 3000) + ", " +
                                                 Rec("10.213.5.1", R"("icmp")", 0, 3599));
  nft.sets["box_b_1_v6"] = Set("box_b_1_v6", Rec("fd00:0::2", R"("ipv6-icmp")", 0, 3500) + ", " +
                                                 Rec("fd00::3", "47", 0, 10));
  testing::FakeClock clock;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner, clock);
  auto refusals = fw->Refusals("b-1");
  REQUIRE(refusals.ok());
  REQUIRE(refusals->size() == 5);
  const auto now = clock.Now();
  const std::vector<Refusal>& r = *refusals;
  CHECK(r[0].destination == "fd00::3");
  CHECK(r[0].protocol == "47");
  CHECK(r[0].time == now - 3590s);
  CHECK(r[1].destination == "10.213.6.2");
  CHECK(r[1].protocol == "tcp");
  CHECK(r[1].port == 80);
  CHECK(r[1].rule == "no route: tcp");
  CHECK(r[1].time == now - 600s);
  CHECK(r[2].destination == "fd00::2");
  CHECK(r[2].protocol == "icmpv6");
  CHECK(r[3].destination == "10.213.5.1");
  CHECK(r[3].protocol == "udp");
  CHECK(r[3].port == 53);
  CHECK(r[3].time == now - 10s);
  CHECK(r[4].protocol == "icmp");
  CHECK(r[4].port == 0);
  CHECK(r[4].time == now - 1s);
  CHECK(nft.argvs[0] ==
        std::vector<std::string>{"nft", "-j", "list", "set", "inet", "llmbox_local", "box_b_1_v4"});
}

TEST_CASE("refusals of a box without rules are NotFound", "[firewall]") {
  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  CHECK(fw->Refusals("b-1").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("refusals keep only the newest few of a set that says it holds thousands", "[firewall]") {
  ScriptedNft nft;
  std::string elems;
  for (int i = 0; i < 20000; ++i) {
    if (i > 0) elems += ", ";
    elems += Rec("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250), R"("tcp")",
                 1 + i % 60000, i % 3601);
  }
  nft.sets["box_b_1_v4"] = Set("box_b_1_v4", elems);
  nft.sets["box_b_1_v6"] = Set("box_b_1_v6", "");
  testing::FakeClock clock;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner, clock);
  auto refusals = fw->Refusals("b-1");
  REQUIRE(refusals.ok());
  REQUIRE(refusals->size() == static_cast<size_t>(kMaxRefusals));
  CHECK(refusals->back().time == clock.Now());  // expires 3600: among the first 4096 read
}

TEST_CASE("malformed or lying nft output is an error or skipped, never trusted", "[firewall]") {
  ScriptedNft nft;
  nft.sets["box_b_1_v6"] = Set("box_b_1_v6", "");
  testing::FakeClock clock;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner, clock);

  for (const std::string& bad : {std::string("not json"), std::string("{\"nftables\": 5}"),
                                 std::string("[]"), std::string(""), std::string(200000, '[')}) {
    nft.sets["box_b_1_v4"] = bad;
    CHECK(fw->Refusals("b-1").status().code() == absl::StatusCode::kInternal);
  }

  nft.sets["box_b_1_v4"] = Set("box_b_1_v4", "");
  nft.sets["box_b_1_v4"].insert(nft.sets["box_b_1_v4"].size() - 4, R"(, "elem": 7)");
  CHECK(fw->Refusals("b-1").status().code() == absl::StatusCode::kInternal);

  // Elements that are not what we wrote are skipped; the good one stays.
  const std::string skipped[] = {
      Rec("10.0.0.1; rm", R"("tcp")", 1, 1),
      Rec("fd00::1", R"("tcp")", 1, 1),  // a v6 address in the v4 set
      Rec("10.0.0.1", R"("TCP")", 1, 1),
      Rec(R"(10.0.0.1\u0000x)", R"("tcp")", 1, 1),
      Rec("10.0.0.1", R"("a\u0000b")", 1, 1),
      Rec("10.0.0.1", "300", 1, 1),
      Rec("10.0.0.1", "-1", 1, 1),
      Rec("10.0.0.1", R"("tcp")", 70000, 1),
      Rec("10.0.0.1", R"("tcp")", -5, 1),
      R"({"elem": {"val": {"concat": ["10.0.0.1", "tcp"]}, "expires": 1}})",
      R"({"elem": {"val": "10.0.0.1", "expires": 1}})",
      R"({"elem": {"expires": 1}})",
      R"({"elem": {"val": {"concat": [1, "tcp", 80]}, "expires": 1}})",
      R"("just text")",
      R"(null)",
  };
  std::string elems = Rec("10.0.0.9", R"("tcp")", 443, 1000000000) + ", " +  // expires: ignored
                      R"({"concat": ["10.0.0.8", "udp", 53]})";              // a bare value
  for (const std::string& s : skipped) elems += ", " + s;
  nft.sets["box_b_1_v4"] = Set("box_b_1_v4", elems);
  auto refusals = fw->Refusals("b-1");
  REQUIRE(refusals.ok());
  REQUIRE(refusals->size() == 2);
  for (const Refusal& r : *refusals) {
    CHECK(r.time == clock.Now());
    CHECK((r.destination == "10.0.0.9" || r.destination == "10.0.0.8"));
  }

  // A map listing that is not nft's stops Add and Remove before they write.
  for (const std::string& bad :
       {std::string("{"), std::string(R"({"nftables": [{"map": {"family": "inet", "name": )"
                                      R"("in_from", "table": "llmbox_local", "elem": [1]}}]})")}) {
    nft.maps = bad;
    CHECK(fw->Add(kB1).code() == absl::StatusCode::kInternal);
    CHECK(fw->Remove("b-1").code() == absl::StatusCode::kInternal);
  }
  CHECK(nft.scripts.empty());
}

TEST_CASE("nft failures are named: a missing program, no permission, a refused script",
          "[firewall]") {
  testing::FakeSubprocessRunner nobody;
  auto missing = MakeNftFirewall({.spoke_name = "local", .nft_path = "nft"}, nobody);
  absl::Status st = missing->Reset({});
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(st.message()).find("nftables") != std::string::npos);

  ScriptedNft nft;
  auto fw = MakeNftFirewall({.spoke_name = "local"}, nft.runner);
  nft.script_exit_code = 1;
  nft.script_error = "Error: Could not process rule: Operation not permitted\n";
  st = fw->Reset({});
  CHECK(st.code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(st.message()).find("CAP_NET_ADMIN") != std::string::npos);

  nft.script_error = "Error: syntax error, unexpected junk\n\x1b[31mjunk\n   ^^^^\n";
  st = fw->Reset({});
  CHECK(st.code() == absl::StatusCode::kInternal);
  CHECK(std::string(st.message()).find("syntax error, unexpected junk") != std::string::npos);
  CHECK(std::string(st.message()).find('\n') == std::string::npos);
  CHECK(std::string(st.message()).find('\x1b') == std::string::npos);
}

}  // namespace
}  // namespace llmbox::spoke::egress
