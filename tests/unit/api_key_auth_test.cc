// API-key authentication of MCP requests: the Authorization header against the live keys in
// the Store, as an attacker would send it.
#include "hub/auth/api_key_auth.h"

#include <memory>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "hub/store/sqlite_store.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::auth {
namespace {

constexpr char kKey[] = "llmbox_live-key-0123456789";
constexpr char kRevokedKey[] = "llmbox_revoked-key-0123456789";

struct Fixture {
  Fixture() {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    store = *std::move(opened);
    REQUIRE(store
                ->InsertApiKey(
                    {.name = "laptop", .hash = common::Sha256Hex(kKey), .created_at_ms = 1000})
                .ok());
    REQUIRE(store
                ->InsertApiKey(
                    {.name = "old", .hash = common::Sha256Hex(kRevokedKey), .created_at_ms = 1000})
                .ok());
    REQUIRE(store->RevokeApiKey("old", 2000).ok());
    auth = std::make_unique<ApiKeyAuthenticator>(*store);
  }

  std::string ErrorOf(std::optional<std::string_view> header) const {
    auto name = auth->Authenticate(header);
    REQUIRE_FALSE(name.ok());
    CHECK(name.status().code() == absl::StatusCode::kUnauthenticated);
    return std::string(name.status().message());
  }

  testing::ScratchDir dir{"api-key-auth"};
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<ApiKeyAuthenticator> auth;
};

TEST_CASE("a live key authenticates as the principal of its name, without the admin role",
          "[api-key-auth]") {
  Fixture f;
  auto principal = f.auth->Authenticate("Bearer " + std::string(kKey));
  REQUIRE(principal.ok());
  CHECK(principal->kind() == PrincipalKind::kApiKey);
  CHECK(principal->id() == "key:laptop");
  CHECK(principal->display_name() == "laptop");
  CHECK_FALSE(principal->IsAdmin());
  CHECK(principal->verified_email().empty());
}

TEST_CASE("a key made with the admin flag authenticates as an admin", "[api-key-auth]") {
  Fixture f;
  constexpr char kAdminKey[] = "llmbox_admin-key-0123456789";
  REQUIRE(f.store
              ->InsertApiKey({.name = "operator",
                              .hash = common::Sha256Hex(kAdminKey),
                              .created_at_ms = 1000,
                              .admin = true})
              .ok());
  auto principal = f.auth->Authenticate("Bearer " + std::string(kAdminKey));
  REQUIRE(principal.ok());
  CHECK(principal->id() == "key:operator");
  CHECK(principal->IsAdmin());
  CHECK(principal->HasRole(Role::kAdmin));
}

TEST_CASE("the Bearer scheme is matched case-insensitively", "[api-key-auth]") {
  Fixture f;
  for (const std::string scheme : {"bearer ", "BEARER ", "bEaReR "}) {
    auto principal = f.auth->Authenticate(scheme + kKey);
    REQUIRE(principal.ok());
    CHECK(principal->display_name() == "laptop");
  }
}

TEST_CASE("a request without an Authorization header is told to send a key", "[api-key-auth]") {
  Fixture f;
  CHECK(f.ErrorOf(std::nullopt) ==
        "an API key is required: send Authorization: Bearer <key> (llmbox-hub apikey create)");
}

TEST_CASE("an Authorization header that is not Bearer <key> is refused", "[api-key-auth]") {
  Fixture f;
  for (const std::string& header :
       {std::string(""), std::string("Bearer"), std::string("Bearer "),
        "Basic " + std::string(kKey), std::string(kKey), "Bearer" + std::string(kKey),
        "Bearer\t" + std::string(kKey), "Token " + std::string(kKey)}) {
    INFO(header);
    CHECK(f.ErrorOf(header) == "the Authorization header must be Bearer <key>");
  }
}

TEST_CASE("an unknown key is refused without echoing it", "[api-key-auth]") {
  Fixture f;
  for (const std::string& key :
       {std::string("llmbox_nobody-has-this"), std::string(kKey) + "x", std::string(kKey).substr(1),
        " " + std::string(kKey), std::string(100'000, 'k')}) {
    const std::string error = f.ErrorOf("Bearer " + key);
    CHECK(error == "this API key is unknown or revoked");
  }
}

TEST_CASE("a revoked key is refused like an unknown one", "[api-key-auth]") {
  Fixture f;
  CHECK(f.ErrorOf("Bearer " + std::string(kRevokedKey)) == "this API key is unknown or revoked");
}

TEST_CASE("revoking a key takes effect on the next request", "[api-key-auth]") {
  Fixture f;
  REQUIRE(f.auth->Authenticate("Bearer " + std::string(kKey)).ok());
  REQUIRE(f.store->RevokeApiKey("laptop", 3000).ok());
  CHECK(f.ErrorOf("Bearer " + std::string(kKey)) == "this API key is unknown or revoked");
}

}  // namespace
}  // namespace llmbox::hub::auth
