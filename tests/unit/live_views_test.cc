// get_llmbox without a spoke call per get (issue 17): the registry answers a box's network from
// what its spoke said at most live_ttl ago (hub/boxes/live_views.h), asks again after that or
// after anything the hub did to the box, and a spoke's answer that shows the box stopped or
// restarted updates the record at once. Over an in-memory SpokeClient and a fake clock.
#include "hub/boxes/live_views.h"

#include <chrono>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "hub/boxes/registry.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/unit/registry_fixture.h"

namespace llmbox::hub::boxes {
namespace {

using namespace std::chrono_literals;
using store::Phase;

const auth::Principal kAlice = testing::kAliceKey;
constexpr auto kTtl = 20s;

struct Fixture : testing::RegistryFixture {
  Fixture()
      : RegistryFixture("live-views", RegistryOptions{.public_url = "https://hub.example.com",
                                                      .live_ttl = kTtl}) {}

  void Create(const std::string& id) { RegistryFixture::Create(id, kAlice); }
  BoxDetails Get(const std::string& id) {
    auto details = registry->GetDetails(kAlice, id);
    REQUIRE(details.ok());
    return *std::move(details);
  }
  void Refuse(const std::string& id, const std::string& destination) {
    std::lock_guard lock(spoke->mu);
    spoke->boxes[id].network.refusals.push_back(
        {.destination = destination, .port = 443, .protocol = "tcp", .rule = "not allowed"});
  }
  std::size_t Gets() {
    std::lock_guard lock(spoke->mu);
    return spoke->got.size();
  }
};

TEST_CASE(
    "get_llmbox answers a box's network from its spoke's last answer without a call until "
    "live_ttl has passed",
    "[live-views]") {
  Fixture f;
  f.Create("b1");
  f.Refuse("b1", "late.example");
  BoxDetails details = f.Get("b1");
  REQUIRE(details.network.has_value());
  REQUIRE(details.network->ok());
  CHECK((*details.network)->mode == cluster::NetworkMode::kAllowlist);
  CHECK((*details.network)->refusals.empty());  // as the create answered it
  f.clock.Advance(kTtl - 1ms);
  CHECK((*f.Get("b1").network)->refusals.empty());
  CHECK(f.Gets() == 0);

  f.clock.Advance(1ms);
  details = f.Get("b1");
  CHECK(f.Gets() == 1);
  REQUIRE((*details.network)->refusals.size() == 1);
  CHECK((*details.network)->refusals[0].destination == "late.example");
  // The answer is what the next gets show.
  f.Refuse("b1", "later.example");
  CHECK((*f.Get("b1").network)->refusals.size() == 1);
  CHECK(f.Gets() == 1);
}

TEST_CASE("an exec through the hub makes the next get_llmbox ask the spoke for the box's refusals",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  REQUIRE(f.registry->Exec(kAlice, "b1", {"curl", "https://pypi.org"}, std::nullopt, nullptr).ok());
  f.Refuse("b1", "pypi.org");
  const BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 1);
  REQUIRE((*details.network)->refusals.size() == 1);
  CHECK((*details.network)->refusals[0].destination == "pypi.org");
}

TEST_CASE("set_llmbox_network's answer is what the next get_llmbox shows without a spoke call",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  REQUIRE(f.registry->SetNetwork(kAlice, "b1", {.add = {"pypi.org"}}).ok());
  const BoxDetails details = f.Get("b1");
  CHECK(f.Gets() == 0);
  CHECK((*details.network)->allow == std::vector<std::string>{"pypi.org"});
}

TEST_CASE("a get that finds the box stopped on its spoke reports it and records it at once",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->boxes["b1"].phase = Phase::kError;
    f.spoke->boxes["b1"].last_error = "the box stopped (exit code 137)";
  }
  f.clock.Advance(kTtl);
  const BoxDetails details = f.Get("b1");
  CHECK(details.record.phase == Phase::kError);
  CHECK(details.record.last_error == "the box stopped (exit code 137)");
  CHECK(f.db->GetBox("b1")->phase == Phase::kError);
}

TEST_CASE("a get that finds a new session URL after a box restart reports it at once",
          "[live-views]") {
  Fixture f;
  f.Create("b1");
  store::BoxRecord record = f.db->GetBox("b1").value();
  record.phase = Phase::kReady;
  record.session_url = "https://claude.ai/code/session_old";
  REQUIRE(f.db->UpdateBox(record).ok());
  {
    std::lock_guard lock(f.spoke->mu);
    f.spoke->boxes["b1"].phase = Phase::kReady;
    f.spoke->boxes["b1"].session_url = "https://claude.ai/code/session_new";
  }
  f.clock.Advance(kTtl);
  CHECK(f.Get("b1").record.session_url == "https://claude.ai/code/session_new");
  CHECK(f.db->GetBox("b1")->session_url == "https://claude.ai/code/session_new");
}

TEST_CASE("what a spoke said of a box never answers for a new box that took its id",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl});
  views.Put("b1", "hash-old", {.allow = {"old.example"}});
  CHECK_FALSE(views.Fresh("b1", "hash-new").has_value());
  REQUIRE(views.Fresh("B1", "hash-old").has_value());  // ids are case-insensitive
  views.Put("b1", "hash-new", {.allow = {"new.example"}});
  CHECK_FALSE(views.Fresh("b1", "hash-old").has_value());
  CHECK(views.Fresh("b1", "hash-new")->allow == std::vector<std::string>{"new.example"});
  CHECK(views.size() == 1);
}

TEST_CASE("the live view cache holds at most max_entries and drops the least recently written",
          "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = kTtl, .max_entries = 3});
  for (const char* id : {"a", "b", "c"}) views.Put(id, "h", {});
  views.Put("a", "h", {});  // written again: now the newest
  views.Put("d", "h", {});
  CHECK(views.size() == 3);
  CHECK_FALSE(views.Fresh("b", "h").has_value());
  CHECK(views.Fresh("a", "h").has_value());
  CHECK(views.Fresh("d", "h").has_value());
}

TEST_CASE("a live_ttl of zero makes every get_llmbox ask the box's spoke", "[live-views]") {
  testing::FakeClock clock;
  LiveViews views(clock, {.max_age = 0ms});
  views.Put("a", "h", {});
  CHECK_FALSE(views.Fresh("a", "h").has_value());
  CHECK(views.size() == 0);
}

}  // namespace
}  // namespace llmbox::hub::boxes
