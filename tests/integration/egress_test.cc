// Egress from inside real boxes on the rig's engine, through the spoke's real proxy and real
// nftables rules: every mode, every way out a box might try, refusals recorded, policy changes,
// isolation between boxes, rules removed with the box and rebuilt by a restarted spoke, and the
// real Claude binary's sign-in traffic going through the proxy. All traffic stays on this
// machine: "the internet" is a network namespace with 198.18/15 addresses (TestInternet), and
// every name a box asks for is mapped in the proxy's own table (egress.hosts).

#include "spoke/egress/egress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include <catch2/catch.hpp>

#include "common/clock.h"
#include "common/secrets.h"
#include "common/subprocess.h"
#include "spoke/box/manager.h"
#include "spoke/docker/curl_engine.h"
#include "spoke/egress/firewall.h"
#include "spoke/egress/policy.h"
#include "spoke/egress/proxy.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_internet.h"

namespace llmbox::spoke::box {
namespace {

using namespace std::chrono_literals;
using testing::ConnectThroughProxyScript;

egress::Entry EntryOf(const std::string& text) {
  auto entry = egress::ParseEntry(text);
  REQUIRE(entry.ok());
  return *entry;
}

std::string UniqueId(const std::string& what) {
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  return "eg-" + what + "-" + common::HexEncode(*token).substr(0, 8);
}

// One spoke's egress on the rig's engine 1: the proxy, its own nftables table, a box manager.
struct Spoke {
  std::unique_ptr<docker::DockerEngine> engine;
  common::PosixSubprocessRunner runner;
  std::unique_ptr<egress::Resolver> resolver;
  std::unique_ptr<egress::EgressProxy> proxy;
  std::unique_ptr<egress::Firewall> firewall;
  std::unique_ptr<egress::HostEgress> host_egress;
  std::unique_ptr<BoxManager> boxes;
  std::string name = absl::StrCat("egtest", getpid());
  testing::ScratchDir scratch{"egress-spoke"};

  // `hosts`: the proxy's own names; `policy`: the spoke's.
  Spoke(const testing::TestInternet& internet, egress::SpokePolicy policy) {
    docker::EngineEndpoint endpoint;
    endpoint.unix_socket = testing::Rig().docker_sock;
    auto made = docker::CurlDockerEngine::Create(endpoint);
    REQUIRE(made.ok());
    engine = std::move(*made);
    REQUIRE(engine->Ping().ok());
    Start(internet, std::move(policy));
  }

  // (Re)starts everything but the engine: what a spoke restart does.
  void Start(const testing::TestInternet& internet, egress::SpokePolicy policy,
             bool tell_host_address = true) {
    boxes.reset();
    host_egress.reset();
    firewall.reset();
    proxy.reset();
    const auto inside = *egress::ParseIp(internet.inside_address());
    resolver = egress::MakeSystemResolver({
        {"allowed.test", {inside}},
        {"other.test", {inside}},
        {"meta.test", {*egress::ParseIp("169.254.169.254")}},
        {"host.test", {*egress::ParseIp(internet.host_address())}},
        {"platform.claude.com", {inside}},
    });
    if (tell_host_address) {
      policy.host_addresses.push_back(*egress::ParseIp(internet.host_address()));
    }
    proxy = std::make_unique<egress::EgressProxy>(
        egress::ProxyOptions{
            .port = 3128, .policy = policy, .resolver = resolver.get(), .spoke_name = name},
        common::SystemClock::Get());
    firewall = egress::MakeNftFirewall({.spoke_name = name, .proxy_port = 3128}, runner);
    host_egress = std::make_unique<egress::HostEgress>(*proxy, *firewall);
    BoxManagerOptions options;
    options.spoke_name = name;
    options.default_image = testing::Rig().box_image;
    options.claude_bin = testing::Rig().standin_claude;
    options.memory_bytes = int64_t{1} << 30;
    options.stop_grace = 1s;
    options.egress = policy;
    options.state_dir = (scratch.path() / "state").string();  // where box policies are kept
    boxes = std::make_unique<BoxManager>(*engine, common::SystemClock::Get(), options, nullptr,
                                         host_egress.get());
    REQUIRE(boxes->Recover().ok());
  }

  ~Spoke() {
    if (boxes != nullptr) {
      auto list = boxes->List();
      if (list.ok()) {
        for (const auto& box : *list) (void)boxes->Destroy(box.box_id, 1s);
      }
    }
    boxes.reset();
    if (firewall != nullptr) (void)firewall->Reset({});
    common::PosixSubprocessRunner cleanup;
    (void)cleanup.Run(
        {.argv = {"/usr/sbin/nft", "delete", "table", "inet", egress::NftTableName(name)}});
  }

  // Runs `script` with bash as the box's exec user; returns stdout (stderr appended).
  std::string Run(const std::string& box_id, const std::string& script) {
    auto ran =
        boxes->Exec(box_id, {.argv = {"bash", "-c", script}, .timeout = 30s}, ExecIdentity::kUser);
    REQUIRE(ran.ok());
    return ran->stdout_data + ran->stderr_data;
  }

  std::string Table() {
    auto listed = runner.Run(
        {.argv = {"/usr/sbin/nft", "list", "table", "inet", egress::NftTableName(name)}});
    REQUIRE(listed.ok());
    return listed->stdout_data;
  }
};

// Bash that tries a raw TCP connection (no proxy) and says whether it was established.
std::string RawTcpScript(const std::string& address, int port) {
  return absl::StrCat("if timeout 3 bash -c 'exec 3<>/dev/tcp/", address, "/", port,
                      "' 2>/dev/null; then echo raw: connected; else echo raw: failed; fi");
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool Refused(const BoxView& box, const std::string& destination, int port,
             const std::string& protocol) {
  for (const auto& r : box.network.refusals) {
    if (Has(r.destination, destination) && r.port == port && r.protocol == protocol) return true;
  }
  return false;
}

std::string Describe(const BoxView& box) {
  std::string out;
  for (const auto& r : box.network.refusals) {
    absl::StrAppend(&out, r.protocol, " ", r.destination, ":", r.port, " (", r.rule, ")\n");
  }
  return out;
}

egress::SpokePolicy AnyPublic() {
  egress::SpokePolicy policy;
  policy.box_may_allow_anything = true;
  return policy;
}

TEST_CASE("an allowlist box reaches an allowed name and nothing else, and every try is recorded",
          "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  testing::TestServer& web = (*internet)->Serve(80);
  Spoke spoke(**internet, AnyPublic());
  const std::string id = UniqueId("allow");
  auto created = spoke.boxes->Create(
      {.box_id = id,
       .network = egress::BoxPolicy{
           .mode = egress::Mode::kAllowlist,
           .allow = {EntryOf("allowed.test:80"), EntryOf("meta.test"), EntryOf("host.test")}}});
  REQUIRE(created.ok());
  // "http://<gateway>:3128"
  const std::string& proxy_url = created->box.network.proxy;
  REQUIRE(proxy_url.rfind("http://", 0) == 0);
  const std::string gateway = proxy_url.substr(7, proxy_url.rfind(':') - 7);
  REQUIRE_FALSE(gateway.empty());
  testing::TestServer& on_host = (*internet)->ServeOnHost(gateway, 8099);

  // Allowed: through the proxy to the rig's server.
  std::string out = spoke.Run(id, ConnectThroughProxyScript("allowed.test:80"));
  INFO(out);
  CHECK(Has(out, "proxy: HTTP/1.1 200"));
  CHECK(Has(out, "server: hello"));
  CHECK(web.Connections() == 1);

  // Refused by the proxy: a name not listed, a listed name behind a denied address (the
  // metadata service; the host itself), an IP literal.
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("other.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("meta.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("host.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript((*internet)->inside_address() + ":80")),
            "proxy: HTTP/1.1 403"));
  CHECK(web.Connections() == 1);

  // Dropped by the host: raw TCP out, raw TCP to a listener of the host on the gateway, UDP.
  CHECK(Has(spoke.Run(id, RawTcpScript((*internet)->inside_address(), 80)), "raw: failed"));
  CHECK(Has(spoke.Run(id, RawTcpScript(gateway, 8099)), "raw: failed"));
  spoke.Run(id, absl::StrCat("echo x > /dev/udp/", (*internet)->inside_address(),
                             "/443; echo x > /dev/udp/", gateway, "/53; true"));
  CHECK(web.Connections() == 1);
  CHECK(on_host.Connections() == 0);

  auto got = spoke.boxes->Get(id);
  REQUIRE(got.ok());
  INFO(Describe(*got));
  CHECK(Refused(*got, "other.test", 80, "tcp"));
  CHECK(Refused(*got, "meta.test", 80, "tcp"));
  CHECK(Refused(*got, "host.test", 80, "tcp"));
  CHECK(Refused(*got, (*internet)->inside_address(), 80, "tcp"));
  CHECK(Refused(*got, gateway, 8099, "tcp"));
  CHECK(Refused(*got, gateway, 53, "udp"));
}

TEST_CASE(
    "a box in mode none reaches nothing, an open box reaches the internet, not the denied set",
    "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  testing::TestServer& web = (*internet)->Serve(80);
  Spoke spoke(**internet, AnyPublic());
  const std::string none = UniqueId("none");
  const std::string open = UniqueId("open");
  REQUIRE(spoke.boxes
              ->Create({.box_id = none,
                        .network = egress::BoxPolicy{.mode = egress::Mode::kNone, .allow = {}}})
              .ok());
  REQUIRE(spoke.boxes
              ->Create({.box_id = open,
                        .network = egress::BoxPolicy{.mode = egress::Mode::kOpen, .allow = {}}})
              .ok());
  CHECK(Has(spoke.Run(none, ConnectThroughProxyScript("allowed.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(web.Connections() == 0);
  std::string out = spoke.Run(open, ConnectThroughProxyScript("other.test:80"));
  INFO(out);
  CHECK(Has(out, "server: hello"));
  CHECK(Has(spoke.Run(open, ConnectThroughProxyScript((*internet)->inside_address() + ":80")),
            "server: hello"));
  CHECK(web.Connections() == 2);
  CHECK(Has(spoke.Run(open, ConnectThroughProxyScript("meta.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(
      Has(spoke.Run(open, ConnectThroughProxyScript("169.254.169.254:80")), "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(open, ConnectThroughProxyScript("127.0.0.1:22")), "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(open, ConnectThroughProxyScript("[::ffff:169.254.169.254]:80")),
            "proxy: HTTP/1.1 403"));
  CHECK(Has(spoke.Run(open, RawTcpScript((*internet)->inside_address(), 80)), "raw: failed"));
  CHECK(web.Connections() == 2);
}

TEST_CASE("a network change applies to the box's next connection, within the spoke's policy",
          "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  testing::TestServer& web = (*internet)->Serve(80);
  egress::SpokePolicy policy;
  policy.box_may_allow = {EntryOf("other.test:80")};
  Spoke spoke(**internet, policy);
  const std::string id = UniqueId("change");
  REQUIRE(spoke.boxes->Create({.box_id = id}).ok());
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("other.test:80")), "proxy: HTTP/1.1 403"));
  auto changed = spoke.boxes->SetNetwork(id, {.add = {"other.test:80"}});
  REQUIRE(changed.ok());
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("other.test:80")), "server: hello"));
  CHECK(web.Connections() == 1);
  auto outside = spoke.boxes->SetNetwork(id, {.add = {"pypi.org:443"}});
  REQUIRE_FALSE(outside.ok());
  CHECK(absl::IsPermissionDenied(outside.status()));
  INFO(outside.status().message());
  CHECK(Has(std::string(outside.status().message()), "other.test:80"));
  REQUIRE(spoke.boxes->SetNetwork(id, {.remove = {"other.test:80"}}).ok());
  CHECK(Has(spoke.Run(id, ConnectThroughProxyScript("other.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(web.Connections() == 1);
}

TEST_CASE(
    "an address of the host the policy never heard of is refused, and only the box's "
    "network may use its proxy",
    "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  // The policy is not told the host's end of the namespace link (as for a box network made
  // after the spoke started): the proxy finds out by itself.
  egress::SpokePolicy policy = AnyPublic();
  Spoke spoke(**internet, policy);
  spoke.Start(**internet, policy, /*tell_host_address=*/false);
  testing::TestServer& on_host = (*internet)->ServeOnHost((*internet)->host_address(), 8098);
  const std::string id = UniqueId("host");
  auto created = spoke.boxes->Create(
      {.box_id = id, .network = egress::BoxPolicy{.mode = egress::Mode::kOpen, .allow = {}}});
  REQUIRE(created.ok());
  std::string out = spoke.Run(id, ConnectThroughProxyScript((*internet)->host_address() + ":8098"));
  INFO(out);
  CHECK(Has(out, "proxy: HTTP/1.1 403"));
  CHECK(on_host.Connections() == 0);

  // From a container on another network of the engine, the box's proxy does not serve.
  const std::string& proxy_url = created->box.network.proxy;
  const std::string gateway = proxy_url.substr(7, proxy_url.rfind(':') - 7);
  const std::string other_net = UniqueId("othernet");
  REQUIRE(spoke.engine->CreateNetwork({.name = other_net, .labels = {}, .internal = false}).ok());
  spoke::docker::ContainerSpec spec;
  spec.name = UniqueId("other");
  spec.image = testing::Rig().box_image;
  spec.entrypoint = {"sleep", "300"};
  spec.network_mode = other_net;
  auto other = spoke.engine->CreateContainer(spec);
  REQUIRE(other.ok());
  struct Gone {
    std::function<void()> run;
    ~Gone() { run(); }
  } gone{[&] {
    (void)spoke.engine->RemoveContainer(*other, true);
    (void)spoke.engine->RemoveNetwork(other_net);
  }};
  REQUIRE(spoke.engine->StartContainer(*other).ok());
  auto foreign = spoke.engine->Exec(
      *other, {.argv = {"bash", "-c",
                        "exec 3<>/dev/tcp/" + gateway +
                            "/3128 || { echo unreachable; exit 0; }; "
                            "printf 'CONNECT allowed.test:80 HTTP/1.1\\r\\n\\r\\n' >&3; "
                            "timeout 5 cat <&3; echo end"},
               .timeout = 30s});
  REQUIRE(foreign.ok());
  INFO(foreign->stdout_data);
  CHECK_FALSE(Has(foreign->stdout_data, "HTTP/1.1"));
  auto got = spoke.boxes->Get(id);
  REQUIRE(got.ok());
  for (const auto& r : got->network.refusals) CHECK(r.destination != "allowed.test");
}

TEST_CASE("two boxes cannot reach each other, directly or through the proxy", "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  Spoke spoke(**internet, AnyPublic());
  const std::string a = UniqueId("a");
  const std::string b = UniqueId("b");
  REQUIRE(spoke.boxes
              ->Create({.box_id = a,
                        .network = egress::BoxPolicy{.mode = egress::Mode::kOpen, .allow = {}}})
              .ok());
  REQUIRE(spoke.boxes->Create({.box_id = b}).ok());
  // A listener in b's exec container, on b's network.
  spoke.Run(b,
            "setsid perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>7000,"
            "Listen=>5,ReuseAddr=>1) or die; while($c=$s->accept){print $c \"hi\\n\";close $c}'"
            " </dev/null >/dev/null 2>&1 & "
            // Until it listens (bounded): no fixed sleep.
            "for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/7000) 2>/dev/null && break; "
            "sleep 0.1; done");
  const std::string b_address = spoke.Run(b, "hostname -I | cut -d' ' -f1 | tr -d '\\n'");
  REQUIRE_FALSE(b_address.empty());
  // b reaches itself: the listener is up.
  CHECK(Has(spoke.Run(b, RawTcpScript(b_address, 7000)), "raw: connected"));
  CHECK(Has(spoke.Run(a, RawTcpScript(b_address, 7000)), "raw: failed"));
  CHECK(Has(spoke.Run(a, ConnectThroughProxyScript(b_address + ":7000")), "proxy: HTTP/1.1 403"));
}

TEST_CASE("a box restarted by its engine still reaches what it may and nothing else", "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  testing::TestServer& web = (*internet)->Serve(80);
  Spoke spoke(**internet, AnyPublic());
  const std::string id = UniqueId("restart");
  auto created =
      spoke.boxes->Create({.box_id = id,
                           .network = egress::BoxPolicy{.mode = egress::Mode::kAllowlist,
                                                        .allow = {EntryOf("allowed.test:80")}}});
  REQUIRE(created.ok());
  testing::EngineHttp http(testing::Rig().docker_sock);
  const std::string container = created->box.container_id;
  testing::WaitForRestart(http, container, testing::KillMainProcess(http, container));

  // From the restarted container itself (it may have a new address on its network).
  auto run_in_box = [&](const std::string& script) {
    auto ran =
        spoke.boxes->Exec(id, {.argv = {"bash", "-c", script}, .timeout = 30s}, ExecIdentity::kBox);
    REQUIRE(ran.ok());
    return ran->stdout_data + ran->stderr_data;
  };
  std::string out = run_in_box(ConnectThroughProxyScript("allowed.test:80"));
  INFO(out);
  CHECK(Has(out, "server: hello"));
  CHECK(Has(run_in_box(ConnectThroughProxyScript("other.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(Has(run_in_box(RawTcpScript((*internet)->inside_address(), 80)), "raw: failed"));
  CHECK(web.Connections() == 1);
}

TEST_CASE("a box's rules go with it, and a restarted spoke restores live boxes and nothing else",
          "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  testing::TestServer& web = (*internet)->Serve(80);
  Spoke spoke(**internet, AnyPublic());
  const std::string keep = UniqueId("keep");
  const std::string gone = UniqueId("gone");
  const std::string destroyed = UniqueId("dest");
  for (const auto& id : {keep, gone, destroyed}) {
    REQUIRE(spoke.boxes
                ->Create({.box_id = id,
                          .network = egress::BoxPolicy{.mode = egress::Mode::kAllowlist,
                                                       .allow = {EntryOf("allowed.test:80")}}})
                .ok());
  }
  // The table names a box's chains and sets by its id with '-' as '_'.
  auto has_rules = [&](std::string id) {
    std::replace(id.begin(), id.end(), '-', '_');
    return Has(spoke.Table(), "box_" + id);
  };
  CHECK(has_rules(keep));
  REQUIRE(spoke.boxes->Destroy(destroyed, 1s).ok());
  CHECK_FALSE(has_rules(destroyed));

  // The spoke dies without cleaning up (its rules stay: boxes stay fenced while it is down);
  // meanwhile a box is removed behind its back.
  spoke.boxes.reset();
  spoke.host_egress.reset();
  spoke.proxy.reset();
  for (const char* label : {BoxManager::kBoxIdLabel, BoxManager::kExecForLabel}) {
    auto containers = spoke.engine->ListContainers({{label, gone}});
    REQUIRE(containers.ok());
    for (const auto& c : *containers) REQUIRE(spoke.engine->RemoveContainer(c.id, true).ok());
  }
  CHECK(has_rules(gone));  // stale until the spoke is back

  spoke.Start(**internet, AnyPublic());
  CHECK(has_rules(keep));
  CHECK_FALSE(has_rules(gone));
  // The live box's policy and proxy are back.
  CHECK(Has(spoke.Run(keep, ConnectThroughProxyScript("allowed.test:80")), "server: hello"));
  CHECK(Has(spoke.Run(keep, ConnectThroughProxyScript("other.test:80")), "proxy: HTTP/1.1 403"));
  CHECK(web.Connections() == 1);
  auto networks = spoke.engine->ListNetworks({{BoxManager::kBoxIdLabel, gone}});
  REQUIRE(networks.ok());
  for (const auto& n : *networks) (void)spoke.engine->RemoveNetwork(n.id);
}

TEST_CASE("the real Claude binary's sign-in goes through the proxy under the default allowlist",
          "[egress]") {
  auto internet = testing::TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  // Where platform.claude.com "is": a server that records the TLS hello it is sent.
  testing::TestServer& platform = (*internet)->Serve(443);
  egress::SpokePolicy policy = AnyPublic();
  for (const char* text : {"api.anthropic.com:443", "platform.claude.com:443", "claude.ai:443",
                           "*.claude.ai:443", "claude.com:443", "*.claude.com:443"}) {
    policy.base_allowlist.push_back(EntryOf(text));
  }
  Spoke spoke(**internet, policy);
  spoke.boxes.reset();
  BoxManagerOptions options;
  options.spoke_name = spoke.name;
  options.default_image = testing::Rig().box_image;
  options.claude_bin = testing::Rig().claude_bin;
  options.memory_bytes = int64_t{1} << 30;
  options.stop_grace = 1s;
  options.egress = policy;
  options.egress.host_addresses.push_back(*egress::ParseIp((*internet)->host_address()));
  spoke.boxes = std::make_unique<BoxManager>(*spoke.engine, common::SystemClock::Get(), options,
                                             nullptr, spoke.host_egress.get());
  const std::string id = UniqueId("claude");
  auto created = spoke.boxes->Create({.box_id = id});
  REQUIRE(created.ok());
  auto outcome = spoke.boxes->SubmitCode(id, "not-a-real-code#not-a-real-state");
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  INFO("the box said: " << outcome->box_error);
  // Its first connection after the code: a TLS hello to the server the proxy resolved
  // platform.claude.com to, through a CONNECT the allowlist allowed.
  REQUIRE(platform.Connections() >= 1);
  const std::string hello = platform.Received().front();
  REQUIRE_FALSE(hello.empty());
  CHECK(static_cast<unsigned char>(hello[0]) == 0x16);  // a TLS handshake record
  CHECK(Has(hello, "platform.claude.com"));             // its SNI
}

}  // namespace
}  // namespace llmbox::spoke::box
