// tests/unit/registry_fixture.h
//
// What the registry's unit tests share: a BoxRegistry over a real SQLite store in a scratch
// directory, one in-memory spoke named "local" and a fake clock, and the principals they act
// as. Tests derive their own fixture from it and add what they need.
//
//   struct Fixture : testing::RegistryFixture {
//     Fixture() : RegistryFixture("my-test") {}
//   };
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "hub/auth/principal.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::testing {

inline const hub::auth::Principal kAliceKey = hub::auth::Principal::ApiKey("alice", false);
inline const hub::auth::Principal kBobKey = hub::auth::Principal::ApiKey("bob", false);
inline const hub::auth::Principal kAdminKey = hub::auth::Principal::ApiKey("root", true);

struct RegistryFixture {
  // The scratch directory is named for the test; `options` default to a public URL only.
  explicit RegistryFixture(
      const std::string& name,
      hub::boxes::RegistryOptions options = {.public_url = "https://hub.example.com"})
      : dir(name) {
    auto opened = hub::store::SqliteStore::Open(path());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", spoke, true);
    registry = std::make_unique<hub::boxes::BoxRegistry>(*db, spokes, clock, std::move(options));
  }

  std::string path() const { return (dir.path() / "hub.db").string(); }

  // Creates a box owned by `owner` on the fake spoke; fails the test when the create does.
  void Create(const std::string& id, const hub::auth::Principal& owner) {
    auto created = registry->Create({.box_id = id, .owner = owner}, nullptr);
    INFO(created.status().ToString());
    REQUIRE(created.ok());
  }

  ScratchDir dir;
  std::unique_ptr<hub::store::SqliteStore> db;
  std::shared_ptr<FakeSpokeClient> spoke = std::make_shared<FakeSpokeClient>();
  FakeClock clock;
  hub::boxes::SpokeDirectory spokes;
  std::unique_ptr<hub::boxes::BoxRegistry> registry;
};

}  // namespace llmbox::testing
