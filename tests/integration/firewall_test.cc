// The nftables firewall (spoke/egress/firewall.h) against this host's kernel and the rig's
// engine 1: real internal networks, real containers, listeners on the real gateways. Needs
// root (CAP_NET_ADMIN) and nft. Everything it makes is named fw-*, and is removed at the end
// whatever happened: the containers, the networks and the test's own nft table. No packet
// leaves the machine: every probe targets a gateway or another container of the rig.

#include "spoke/egress/firewall.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <net/if.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include "common/secrets.h"
#include "common/subprocess.h"
#include "spoke/docker/curl_engine.h"
#include "tests/rig/rig_env.h"

namespace llmbox::spoke::egress {
namespace {

using namespace std::chrono_literals;
using docker::DockerEngine;
using docker::NetworkDetails;

std::unique_ptr<DockerEngine> RigEngine() {
  docker::EngineEndpoint endpoint;
  endpoint.unix_socket = testing::Rig().docker_sock;
  auto engine = docker::CurlDockerEngine::Create(endpoint);
  REQUIRE(engine.ok());
  return std::move(*engine);
}

std::string Token() {
  auto token = common::RandomToken(4);
  REQUIRE(token.ok());
  return common::HexEncode(*token);
}

// Removes what the test made, in reverse order, whatever happened.
struct Cleanup {
  DockerEngine* engine;
  std::string table;
  std::vector<std::string> containers;
  std::vector<std::string> networks;
  ~Cleanup() {
    for (const std::string& id : containers) (void)engine->RemoveContainer(id, /*force=*/true);
    for (const std::string& id : networks) (void)engine->RemoveNetwork(id);
    if (!table.empty()) {
      common::PosixSubprocessRunner runner;
      (void)runner.Run({.argv = {"nft", "delete", "table", "inet", table},
                        .env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}});
    }
  }
};

NetworkDetails MakeNetwork(DockerEngine& engine, Cleanup& cleanup, const std::string& name) {
  auto id = engine.CreateNetwork(
      {.name = name, .labels = {{"llmbox.test", "firewall"}}, .internal = true});
  REQUIRE(id.ok());
  cleanup.networks.push_back(*id);
  auto details = engine.InspectNetwork(name);
  REQUIRE(details.ok());
  CHECK(details->id == *id);
  CHECK(details->name == name);
  CHECK(details->internal);
  CHECK(details->labels.at("llmbox.test") == "firewall");
  CHECK(details->bridge == "br-" + id->substr(0, 12));
  CHECK(if_nametoindex(details->bridge.c_str()) != 0);  // the host really has it
  REQUIRE_FALSE(details->gateway.empty());
  REQUIRE_FALSE(details->subnet.empty());
  return *details;
}

// A busybox container on `network` running `cmd`, started.
std::string RunTiny(DockerEngine& engine, Cleanup& cleanup, const std::string& name,
                    const std::string& network, const std::string& cmd) {
  docker::ContainerSpec spec;
  spec.name = name;
  spec.image = testing::Rig().tiny_image;
  spec.cmd = {"sh", "-c", cmd};
  spec.labels = {{"llmbox.test", "firewall"}};
  spec.network_mode = network;
  auto id = engine.CreateContainer(spec);
  REQUIRE(id.ok());
  cleanup.containers.push_back(*id);
  REQUIRE(engine.StartContainer(*id).ok());
  return *id;
}

// `sh -c script` in the container; its stdout.
std::string Sh(DockerEngine& engine, const std::string& id, const std::string& script) {
  auto r = engine.Exec(id, {.argv = {"sh", "-c", script}, .timeout = 30s});
  REQUIRE(r.ok());
  return r->stdout_data;
}

// A TCP listener on one address of the host that answers "ok" to each connection.
class Listener {
 public:
  explicit Listener(const std::string& address) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, address.c_str(), &sa.sin_addr) == 1);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof(sa);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        (void)!write(c, "ok\n", 3);
        close(c);
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// What the table holds: chain names, set names, and "map:key:target" for each map element.
struct Table {
  std::set<std::string> chains;
  std::set<std::string> sets;
  std::set<std::string> elements;
};

Table ListTable(const std::string& table) {
  common::PosixSubprocessRunner runner;
  auto r = runner.Run({.argv = {"nft", "-j", "list", "table", "inet", table},
                       .env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}}});
  REQUIRE(r.ok());
  REQUIRE(r->exit_code == 0);
  auto doc = nlohmann::json::parse(r->stdout_data);
  Table out;
  for (const auto& item : doc["nftables"]) {
    if (item.contains("chain")) out.chains.insert(item["chain"]["name"].get<std::string>());
    if (item.contains("set")) out.sets.insert(item["set"]["name"].get<std::string>());
    if (item.contains("map") && item["map"].contains("elem")) {
      for (const auto& e : item["map"]["elem"]) {
        out.elements.insert(item["map"]["name"].get<std::string>() + ":" + e[0].get<std::string>() +
                            ":" + e[1]["jump"]["target"].get<std::string>());
      }
    }
  }
  return out;
}

bool HasRefusal(const std::vector<Refusal>& refusals, const std::string& destination,
                const std::string& protocol, int port) {
  for (const Refusal& r : refusals) {
    if (r.destination == destination && r.protocol == protocol && r.port == port) return true;
  }
  return false;
}

std::string Describe(const std::vector<Refusal>& refusals) {
  std::string out;
  for (const Refusal& r : refusals) {
    out += r.destination + " " + r.protocol + " " + std::to_string(r.port) + "; ";
  }
  return out;
}

BoxNetwork BoxOn(const std::string& box_id, const NetworkDetails& n) {
  return {.box_id = box_id, .bridge = n.bridge, .gateway = n.gateway, .subnet = n.subnet};
}

TEST_CASE(
    "host rules let a box reach only its proxy port and its own network, and record the "
    "rest",
    "[firewall]") {
  auto engine = RigEngine();
  const std::string tok = Token();
  Cleanup cleanup{engine.get(), NftTableName("fw-" + tok), {}, {}};
  const NetworkDetails a = MakeNetwork(*engine, cleanup, "fw-a-" + tok);
  const NetworkDetails b = MakeNetwork(*engine, cleanup, "fw-b-" + tok);

  Listener proxy(a.gateway);
  Listener other(a.gateway);
  common::PosixSubprocessRunner runner;
  auto fw = MakeNftFirewall({.spoke_name = "fw-" + tok, .proxy_port = proxy.port()}, runner);
  const std::string box_a = "fw-a-" + tok;
  const std::string box_b = "fw-b-" + tok;
  REQUIRE(fw->Reset({BoxOn(box_a, a), BoxOn(box_b, b)}).ok());

  const std::string serve = "echo peer > /tmp/i; exec httpd -f -p 7000 -h /tmp";
  const std::string ca = RunTiny(*engine, cleanup, "fw-ca-" + tok, a.name, "sleep 600");
  const std::string peer = RunTiny(*engine, cleanup, "fw-cp-" + tok, a.name, serve);
  const std::string cb = RunTiny(*engine, cleanup, "fw-cb-" + tok, b.name, serve);
  const std::string peer_ip = Sh(*engine, peer, "hostname -i | tr -d '\\n'");
  const std::string b_ip = Sh(*engine, cb, "hostname -i | tr -d '\\n'");
  REQUIRE_FALSE(peer_ip.empty());
  REQUIRE_FALSE(b_ip.empty());
  // An internal network still gives its containers a default route through the gateway: the
  // rules, not the topology, stop what is routed.
  CHECK(Sh(*engine, ca, "ip route").find("default via " + a.gateway) != std::string::npos);

  const std::string to_proxy = "nc -w 3 " + a.gateway + " " + std::to_string(proxy.port());
  const std::string to_other = "nc -w 2 " + a.gateway + " " + std::to_string(other.port());
  CHECK(Sh(*engine, ca, to_proxy + " </dev/null") == "ok\n");
  CHECK(Sh(*engine, ca, to_other + " </dev/null") == "");
  CHECK(Sh(*engine, cb, to_proxy + " </dev/null") == "");  // a's proxy port is a's alone
  // (busybox's wget crashes in this image: HTTP by hand over nc.)
  auto fetch = [](const std::string& ip) {
    return "printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 2 " + ip + " 7000 | tail -n 1";
  };
  // The peer's httpd may still be starting: the reachable case gets a few tries.
  CHECK(Sh(*engine, ca,
           "for i in 1 2 3 4 5; do out=$(" + fetch(peer_ip) +
               "); [ -n \"$out\" ] && break; sleep 0.5; done; echo \"$out\"") == "peer\n");
  CHECK(Sh(*engine, ca, fetch(b_ip)) == "");
  CHECK(Sh(*engine, cb, fetch(peer_ip)) == "");
  CHECK(Sh(*engine, ca,
           "timeout 3 nslookup llmbox.test " + a.gateway + " >/dev/null 2>&1; echo $?") != "0\n");
  CHECK(Sh(*engine, ca, "ping -c 1 -W 1 " + a.gateway + " >/dev/null 2>&1; echo $?") == "1\n");

  auto refusals = fw->Refusals(box_a);
  REQUIRE(refusals.ok());
  INFO("box a: " << Describe(*refusals));
  CHECK(HasRefusal(*refusals, a.gateway, "tcp", other.port()));
  CHECK(HasRefusal(*refusals, b_ip, "tcp", 7000));
  CHECK(HasRefusal(*refusals, a.gateway, "udp", 53));
  CHECK(HasRefusal(*refusals, a.gateway, "icmp", 0));
  CHECK_FALSE(HasRefusal(*refusals, a.gateway, "tcp", proxy.port()));
  CHECK_FALSE(HasRefusal(*refusals, peer_ip, "tcp", 7000));
  for (const Refusal& r : *refusals) {
    CHECK(r.rule == "no route: " + r.protocol);
    CHECK(r.time > std::chrono::system_clock::now() - 2min);
  }
  auto refusals_b = fw->Refusals(box_b);
  REQUIRE(refusals_b.ok());
  INFO("box b: " << Describe(*refusals_b));
  CHECK(HasRefusal(*refusals_b, peer_ip, "tcp", 7000));
  CHECK(HasRefusal(*refusals_b, a.gateway, "tcp", proxy.port()));
  CHECK_FALSE(HasRefusal(*refusals_b, b_ip, "tcp", 7000));

  // Remove takes box a's chains, sets and elements away, and with them the drops: the gateway's
  // other port answers (Docker's own rules do not guard the host's input).
  REQUIRE(fw->Remove(box_a).ok());
  const Table table = ListTable(cleanup.table);
  const std::string prefix = "box_fw_a_" + tok;
  for (const auto* names : {&table.chains, &table.sets, &table.elements}) {
    for (const std::string& name : *names) CHECK(name.find(prefix) == std::string::npos);
  }
  CHECK(table.chains.count("box_fw_b_" + tok + "_in") == 1);
  CHECK(table.elements.size() == 3);  // box b's three
  CHECK(Sh(*engine, ca, to_other + " </dev/null") == "ok\n");
  CHECK(absl::IsNotFound(fw->Refusals(box_a).status()));
  REQUIRE(fw->Remove(box_a).ok());  // again: nothing to do

  // Adding it back restores the drop, and the record starts afresh.
  REQUIRE(fw->Add(BoxOn(box_a, a)).ok());
  CHECK(Sh(*engine, ca, to_other + " </dev/null") == "");
  CHECK(Sh(*engine, ca, to_proxy + " </dev/null") == "ok\n");
  auto again = fw->Refusals(box_a);
  REQUIRE(again.ok());
  CHECK(HasRefusal(*again, a.gateway, "tcp", other.port()));
  CHECK_FALSE(HasRefusal(*again, b_ip, "tcp", 7000));
}

TEST_CASE("inspecting a network gives the bridge the engine named and its addresses",
          "[firewall]") {
  auto engine = RigEngine();
  // The rig starts engine 1 with --bridge llmbr1 (10.210.0.1/24): its default network carries
  // the bridge's name as an option.
  auto details = engine->InspectNetwork("bridge");
  REQUIRE(details.ok());
  CHECK(details->bridge == "llmbr1");
  CHECK(details->gateway == "10.210.0.1");
  CHECK(details->subnet == "10.210.0.0/24");
  CHECK_FALSE(details->internal);
  CHECK(absl::IsNotFound(engine->InspectNetwork("fw-none-" + Token()).status()));
}

TEST_CASE("reset leaves exactly the live boxes: stale ones from before a kill -9 are gone",
          "[firewall]") {
  auto engine = RigEngine();
  const std::string tok = Token();
  Cleanup cleanup{engine.get(), NftTableName("fw-" + tok), {}, {}};
  const NetworkDetails a = MakeNetwork(*engine, cleanup, "fw-a-" + tok);
  const NetworkDetails b = MakeNetwork(*engine, cleanup, "fw-b-" + tok);
  const std::string box_a = "fw-a-" + tok;
  const std::string box_b = "fw-b-" + tok;
  common::PosixSubprocessRunner runner;
  {
    // The spoke before its kill -9: two boxes added one by one, the table created by the first.
    auto before = MakeNftFirewall({.spoke_name = "fw-" + tok, .proxy_port = 3128}, runner);
    REQUIRE(before->Add(BoxOn(box_a, a)).ok());
    REQUIRE(before->Add(BoxOn(box_b, b)).ok());
    REQUIRE(before->Add(BoxOn(box_b, b)).ok());  // adding again replaces, and is fine
  }
  Table table = ListTable(cleanup.table);
  CHECK(table.elements.size() == 6);
  CHECK(table.sets.size() == 4);

  // The restarted spoke knows only box b is alive.
  auto after = MakeNftFirewall({.spoke_name = "fw-" + tok, .proxy_port = 3128}, runner);
  REQUIRE(after->Reset({BoxOn(box_b, b)}).ok());
  table = ListTable(cleanup.table);
  const std::string pa = "box_fw_a_" + tok;
  const std::string pb = "box_fw_b_" + tok;
  CHECK(table.chains == std::set<std::string>{"input", "forward", pb + "_in", pb + "_fwd",
                                              pb + "_to", pb + "_refuse"});
  CHECK(table.sets == std::set<std::string>{pb + "_v4", pb + "_v6"});
  CHECK(table.elements == std::set<std::string>{"in_from:" + b.bridge + ":" + pb + "_in",
                                                "fwd_from:" + b.bridge + ":" + pb + "_fwd",
                                                "fwd_to:" + b.bridge + ":" + pb + "_to"});
  CHECK(absl::IsNotFound(after->Refusals(box_a).status()));

  // A box moved to another bridge keeps only the new one.
  REQUIRE(after->Add(BoxOn(box_b, a)).ok());
  table = ListTable(cleanup.table);
  CHECK(table.elements == std::set<std::string>{"in_from:" + a.bridge + ":" + pb + "_in",
                                                "fwd_from:" + a.bridge + ":" + pb + "_fwd",
                                                "fwd_to:" + a.bridge + ":" + pb + "_to"});

  REQUIRE(after->Reset({}).ok());
  table = ListTable(cleanup.table);
  CHECK(table.chains == std::set<std::string>{"input", "forward"});
  CHECK(table.sets.empty());
  CHECK(table.elements.empty());
}

}  // namespace
}  // namespace llmbox::spoke::egress
