// A box's network in BoxManager, on the fake engine: the network is internal, the box and its
// exec container point at the spoke's proxy, the egress is attached before the box starts and
// detached when it goes, policies are checked, changed, saved and restored after a restart.
// The proxy and the host rules themselves: egress_proxy_test.cc, egress_firewall_test.cc and
// the e2e egress test on a real engine.

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "spoke/box/manager.h"
#include "spoke/egress/policy.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/fakes/faulty_docker_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

constexpr char kImage[] = "llmbox-box:dev";

egress::Entry EntryOf(const std::string& text) {
  auto entry = egress::ParseEntry(text);
  REQUIRE(entry.ok());
  return *entry;
}

struct World {
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  testing::FaultyDockerEngine faulty{engine};
  testing::FakeBoxEgress egress;
  testing::ScratchDir scratch{"box-network"};
  std::unique_ptr<BoxManager> boxes;

  World() { engine.AddImage(kImage); }

  BoxManagerOptions Options() const {
    BoxManagerOptions options;
    options.spoke_name = "unit";
    options.default_image = kImage;
    options.state_dir = (scratch.path() / "state").string();
    options.egress.base_allowlist = {EntryOf("api.anthropic.com:443")};
    options.egress.box_may_allow_anything = true;
    return options;
  }
  BoxManager& Start(BoxManagerOptions options) {
    boxes.reset();
    boxes = std::make_unique<BoxManager>(faulty, clock, std::move(options), nullptr, &egress);
    return *boxes;
  }
  BoxManager& Start() { return Start(Options()); }
  std::filesystem::path PolicyFile(const std::string& box_id) const {
    return scratch.path() / "state" / "egress" / box_id;
  }
};

bool Has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

TEST_CASE("a box's network is internal and the box is attached to its proxy before it starts",
          "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE(created.ok());
  CHECK(world.engine.NetworkIsInternal("llmbox-net-b1"));

  auto attached = world.egress.Attached();
  REQUIRE(attached.count("b1") == 1);
  const egress::BoxNetwork& network = attached.at("b1").first;
  CHECK(network.box_id == "b1");
  CHECK_FALSE(network.bridge.empty());
  CHECK_FALSE(network.gateway.empty());
  CHECK(attached.at("b1").second.mode == egress::Mode::kAllowlist);  // the spoke's default
  CHECK(attached.at("b1").second.allow.empty());

  auto spec = world.engine.SpecOf("llmbox-pending-b1");
  REQUIRE(spec.has_value());
  const std::string proxy = "http://" + network.gateway + ":3128";
  CHECK(Has(spec->env, "HTTPS_PROXY=" + proxy));
  CHECK(Has(spec->env, "HTTP_PROXY=" + proxy));
  CHECK(Has(spec->env, "https_proxy=" + proxy));
  CHECK(spec->dns == std::vector<std::string>{network.gateway});
  CHECK(spec->labels.at(BoxManager::kNetworkModeLabel) == "allowlist");

  CHECK(created->box.network.mode == egress::Mode::kAllowlist);
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->network.proxy == proxy);
  CHECK(got->network.base == std::vector<std::string>{"api.anthropic.com:443"});
}

TEST_CASE("a create asking for a mode the spoke does not allow touches no engine object",
          "[lifecycle][egress]") {
  World world;
  BoxManagerOptions options = world.Options();
  options.egress.modes = {egress::Mode::kNone, egress::Mode::kAllowlist};
  BoxManager& boxes = world.Start(options);
  auto created = boxes.Create(
      {.box_id = "b1", .network = egress::BoxPolicy{.mode = egress::Mode::kOpen, .allow = {}}});
  REQUIRE_FALSE(created.ok());
  CHECK(absl::IsPermissionDenied(created.status()));
  CHECK(created.status().message().find("box b1: network: ") == 0);
  CHECK(world.engine.Calls().empty());
  CHECK(world.egress.Attached().empty());
}

TEST_CASE("a box created with its own entries gets them, saved beside its hook state",
          "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  auto created = boxes.Create({.box_id = "b1",
                               .network = egress::BoxPolicy{
                                   .mode = egress::Mode::kAllowlist,
                                   .allow = {EntryOf("pypi.org:443"), EntryOf("203.0.113.0/24")}}});
  REQUIRE(created.ok());
  CHECK(world.egress.Attached().at("b1").second.allow.size() == 2);
  CHECK(std::filesystem::exists(world.PolicyFile("b1")));
  CHECK((std::filesystem::status(world.PolicyFile("b1")).permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);
  CHECK(created->box.network.allow ==
        std::vector<std::string>{EntryOf("pypi.org:443").ToString(),
                                 EntryOf("203.0.113.0/24").ToString()});
}

TEST_CASE("a failed egress attach leaves no network, container or policy behind",
          "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  world.egress.FailAttach(absl::UnavailableError("cannot bind 10.250.0.1:3128"));
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE_FALSE(created.ok());
  CHECK(created.status().message() == "box b1: setting up its egress: cannot bind 10.250.0.1:3128");
  CHECK(world.engine.ContainerIds().empty());
  CHECK(world.engine.NetworkNames().empty());
  CHECK_FALSE(std::filesystem::exists(world.PolicyFile("b1")));
  world.egress.FailAttach(absl::OkStatus());
  CHECK(boxes.Create({.box_id = "b1"}).ok());
}

TEST_CASE("a create that fails after its egress was attached detaches it", "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  world.faulty.FailAt("CreateContainer");
  auto created = boxes.Create({.box_id = "b1"});
  REQUIRE_FALSE(created.ok());
  CHECK(world.egress.Attached().empty());
  CHECK(world.egress.Detached() == std::vector<std::string>{"b1"});
  CHECK_FALSE(std::filesystem::exists(world.PolicyFile("b1")));
}

TEST_CASE("destroy detaches the box's egress and forgets its policy", "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(std::filesystem::exists(world.PolicyFile("b1")));
  auto destroyed = boxes.Destroy("b1");
  REQUIRE(destroyed.ok());
  CHECK(world.egress.Attached().empty());
  CHECK(world.egress.Detached() == std::vector<std::string>{"b1"});
  CHECK_FALSE(std::filesystem::exists(world.PolicyFile("b1")));
}

TEST_CASE("a network change applies to the box's proxy, is saved and survives a restart",
          "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Create({.box_id = "b2"}).ok());

  auto changed = boxes.SetNetwork("b1", {.add = {"pypi.org:443", "files.pythonhosted.org:443"}});
  REQUIRE(changed.ok());
  CHECK(changed->network.allow.size() == 2);
  CHECK(world.egress.Attached().at("b1").second.allow.size() == 2);
  changed = boxes.SetNetwork("b1", {.remove = {"pypi.org:443", "never-there.example"}});
  REQUIRE(changed.ok());
  CHECK(changed->network.allow ==
        std::vector<std::string>{EntryOf("files.pythonhosted.org:443").ToString()});

  // A restarted spoke restores every live box with its saved policy, and nothing else.
  REQUIRE(world.engine.RemoveContainer("llmbox-pending-b2", /*force=*/true).ok());
  BoxManager& again = world.Start();
  REQUIRE(again.Recover().ok());
  CHECK(world.egress.Restores() == 1);
  auto attached = world.egress.Attached();
  REQUIRE(attached.size() == 1);
  CHECK(attached.at("b1").second.allow ==
        std::vector<egress::Entry>{EntryOf("files.pythonhosted.org:443")});
  auto got = again.Get("b1");
  REQUIRE(got.ok());
  CHECK(got->network.allow == std::vector<std::string>{"files.pythonhosted.org:443"});
}

TEST_CASE("a network change the spoke's policy refuses changes nothing", "[lifecycle][egress]") {
  World world;
  BoxManagerOptions options = world.Options();
  options.egress.modes = {egress::Mode::kNone, egress::Mode::kAllowlist};
  BoxManager& boxes = world.Start(options);
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  auto changed = boxes.SetNetwork("b1", {.mode = egress::Mode::kOpen});
  REQUIRE_FALSE(changed.ok());
  CHECK(absl::IsPermissionDenied(changed.status()));
  CHECK(world.egress.Attached().at("b1").second.mode == egress::Mode::kAllowlist);

  auto bad = boxes.SetNetwork("b1", {.add = {"not a name"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::IsInvalidArgument(bad.status()));
  CHECK(absl::IsNotFound(boxes.SetNetwork("nope", {.add = {"pypi.org"}}).status()));
}

TEST_CASE("get shows the box's latest refusals and list leaves them out", "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  for (int i = 0; i < 15; ++i) {
    world.egress.AddRefusal("b1", {.time = world.clock.Now(),
                                   .destination = "host" + std::to_string(i) + ".example",
                                   .port = 443,
                                   .protocol = "tcp",
                                   .rule = "not in the allowlist"});
  }
  auto got = boxes.Get("b1");
  REQUIRE(got.ok());
  REQUIRE(got->network.refusals.size() == BoxManager::kRefusalsShown);
  CHECK(got->network.refusals.back().destination == "host14.example");
  auto listed = boxes.List();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().network.refusals.empty());
  CHECK_FALSE(listed->front().network.proxy.empty());
}

TEST_CASE("the exec container points at the box's proxy too", "[lifecycle][egress]") {
  World world;
  BoxManager& boxes = world.Start();
  REQUIRE(boxes.Create({.box_id = "b1"}).ok());
  REQUIRE(boxes.Exec("b1", {.argv = {"true"}}, ExecIdentity::kUser).ok());
  auto spec = world.engine.SpecOf("llmbox-exec-b1");
  REQUIRE(spec.has_value());
  const egress::BoxNetwork network = world.egress.Attached().at("b1").first;  // a copy
  CHECK(Has(spec->env, "HTTPS_PROXY=http://" + network.gateway + ":3128"));
  CHECK(spec->dns == std::vector<std::string>{network.gateway});
  CHECK(spec->network_mode == "llmbox-net-b1");
}

TEST_CASE("re-attaching a console at runtime does not rebuild the host's rules",
          "[lifecycle][egress]") {
  World world;
  REQUIRE(world.Start().Create({.box_id = "b1"}).ok());
  // A new manager that was not recovered: the console is attached on the first code.
  BoxManager& again = world.Start();
  auto outcome = again.SubmitCode("b1", "good-code#state");
  REQUIRE(outcome.ok());
  CHECK(world.egress.Restores() == 0);  // only a start rebuilds them
  CHECK(world.egress.Attached().count("b1") == 1);
}

TEST_CASE("a saved policy wider than the spoke allows now is narrowed when the spoke starts",
          "[lifecycle][egress]") {
  World world;
  REQUIRE(world.Start()
              .Create({.box_id = "b1",
                       .network = egress::BoxPolicy{.mode = egress::Mode::kOpen,
                                                    .allow = {EntryOf("pypi.org:443"),
                                                              EntryOf("github.com:443")}}})
              .ok());
  BoxManagerOptions narrower = world.Options();
  narrower.egress.modes = {egress::Mode::kNone, egress::Mode::kAllowlist};
  narrower.egress.box_may_allow_anything = false;
  narrower.egress.box_may_allow = {EntryOf("github.com")};
  BoxManager& again = world.Start(narrower);
  REQUIRE(again.Recover().ok());
  const auto policy = world.egress.Attached().at("b1").second;
  CHECK(policy.mode == egress::Mode::kAllowlist);  // the spoke's default now
  CHECK(policy.allow == std::vector<egress::Entry>{EntryOf("github.com:443")});
  // Saved narrowed: a restart with the wider config does not widen it again.
  BoxManager& third = world.Start();
  REQUIRE(third.Recover().ok());
  CHECK(world.egress.Attached().at("b1").second.allow.size() == 1);
}

TEST_CASE("a box network the engine cannot answer for fails the start, not the box's rules",
          "[lifecycle][egress]") {
  World world;
  REQUIRE(world.Start().Create({.box_id = "b1"}).ok());
  BoxManager& again = world.Start();
  world.faulty.FailAt("InspectNetwork");
  auto recovered = again.Recover();
  REQUIRE_FALSE(recovered.ok());
  CHECK(recovered.message().find("box b1: reading its network") != std::string::npos);
  CHECK(world.egress.Restores() == 0);  // the table was not rebuilt without it
}

TEST_CASE(
    "a starting spoke restores egress for its own boxes only on an engine another spoke shares",
    "[lifecycle][egress]") {
  World world;
  REQUIRE(world.Start().Create({.box_id = "mine-b1"}).ok());
  BoxManagerOptions options = world.Options();
  options.spoke_name = "other";
  options.state_dir = (world.scratch.path() / "other-state").string();
  testing::FakeBoxEgress other_egress;
  BoxManager other(world.faulty, world.clock, options, nullptr, &other_egress);
  REQUIRE(other.Recover().ok());
  // The other spoke's proxy and host rules would take over the box's gateway and fence it.
  CHECK(other_egress.Restores() == 1);
  CHECK(other_egress.Attached().empty());
  // Its own start still restores the box.
  REQUIRE(world.Start().Recover().ok());
  CHECK(world.egress.Attached().count("mine-b1") == 1);
}

}  // namespace
}  // namespace llmbox::spoke::box
