// The OAuth grants, codes and tokens of SqliteStore: single use under races, revocation that
// survives the refusal that caused it, the one-lookup token read, listing, revoking, pruning.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "common/secrets.h"
#include "hub/store/sqlite_store.h"
#include "tests/support/query_plan.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::store {
namespace {

using llmbox::common::Sha256Hex;
using llmbox::testing::ScratchDir;

constexpr std::int64_t kNow = 1'000'000;
constexpr std::int64_t kDay = 24LL * 3600 * 1000;

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

OAuthGrantRecord Grant(const std::string& id, const std::string& principal = "key:alice",
                       const std::string& client = "client-a", std::int64_t created = kNow) {
  return OAuthGrantRecord{
      .grant_id = id,
      .client_id = client,
      .client_name = "Claude",
      .principal_id = principal,
      .principal_kind = principal.starts_with("key:") ? "api_key" : "oauth_subject",
      .display_name = "Alice",
      .email = principal.starts_with("key:") ? "" : "alice@example.com",
      .scope = "llmbox",
      .resource = "https://hub.example.com",
      .created_at_ms = created,
      .expires_at_ms = created + 90 * kDay};
}

OAuthCodeRecord Code(const std::string& secret) {
  return OAuthCodeRecord{.hash = Sha256Hex(secret),
                         .redirect_uri = "https://claude.ai/api/mcp/auth_callback",
                         .code_challenge = std::string(43, 'c'),
                         .expires_at_ms = kNow + 60'000};
}

OAuthTokenRecord Token(const std::string& secret, OAuthTokenKind kind,
                       std::int64_t expires = kNow + 3'600'000) {
  return OAuthTokenRecord{
      .hash = Sha256Hex(secret), .kind = kind, .issued_at_ms = kNow, .expires_at_ms = expires};
}

absl::Status Pass(const OAuthCodeRecord&, const OAuthGrantRecord&) { return absl::OkStatus(); }

struct Fixture {
  Fixture() : store(OpenOrDie(Path())) {}
  std::string Path() const { return (dir.path() / "hub.db").string(); }

  // A grant with a redeemed code and an access and a refresh token.
  void Issue(const std::string& id, const std::string& principal = "key:alice",
             const std::string& client = "client-a") {
    REQUIRE(store->InsertOAuthGrant(Grant(id, principal, client), Code("code-" + id)).ok());
    REQUIRE(
        store
            ->RedeemOAuthCode(Sha256Hex("code-" + id), kNow, Pass,
                              {Token("access-" + id, OAuthTokenKind::kAccess),
                               Token("refresh-" + id, OAuthTokenKind::kRefresh, kNow + 30 * kDay)})
            .ok());
  }

  ScratchDir dir{"oauth-store"};
  std::unique_ptr<SqliteStore> store;
};

TEST_CASE("a redeemed code's tokens are found with their grant, every field read back",
          "[oauth][tokens]") {
  Fixture f;
  OAuthGrantRecord grant = Grant("g1", "oidc:https://idp.example.com#sub-1");
  REQUIRE(f.store->InsertOAuthGrant(grant, Code("code")).ok());
  auto redeemed = f.store->RedeemOAuthCode(Sha256Hex("code"), kNow + 5, Pass,
                                           {Token("access", OAuthTokenKind::kAccess),
                                            Token("refresh", OAuthTokenKind::kRefresh, kNow + 7)});
  REQUIRE(redeemed.ok());
  CHECK(redeemed->first.grant_id == "g1");
  CHECK_FALSE(redeemed->first.used_at_ms.has_value());  // as it was before the call
  CHECK(redeemed->first.code_challenge == std::string(43, 'c'));
  CHECK(redeemed->second.principal_id == grant.principal_id);

  auto found = f.store->FindOAuthToken(Sha256Hex("access"));
  REQUIRE(found.ok());
  CHECK(found->token.kind == OAuthTokenKind::kAccess);
  CHECK(found->token.grant_id == "g1");
  CHECK(found->token.issued_at_ms == kNow);
  CHECK(found->token.expires_at_ms == kNow + 3'600'000);
  CHECK_FALSE(found->token.used_at_ms.has_value());
  const OAuthGrantRecord& g = found->grant;
  CHECK(g.grant_id == grant.grant_id);
  CHECK(g.client_id == grant.client_id);
  CHECK(g.client_name == grant.client_name);
  CHECK(g.principal_id == grant.principal_id);
  CHECK(g.principal_kind == "oauth_subject");
  CHECK(g.display_name == grant.display_name);
  CHECK(g.email == grant.email);
  CHECK(g.scope == grant.scope);
  CHECK(g.resource == grant.resource);
  CHECK(g.created_at_ms == grant.created_at_ms);
  CHECK(g.expires_at_ms == grant.expires_at_ms);
  CHECK(g.last_used_at_ms == 0);
  CHECK_FALSE(g.revoked_at_ms.has_value());
  CHECK(found->principal_live);  // not an API key
  auto refresh = f.store->FindOAuthToken(Sha256Hex("refresh"));
  REQUIRE(refresh.ok());
  CHECK(refresh->token.kind == OAuthTokenKind::kRefresh);
  CHECK(refresh->token.expires_at_ms == kNow + 7);
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("other")).status()));
}

TEST_CASE("a code redeemed twice revokes its grant, and the second inserts nothing",
          "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  auto again = f.store->RedeemOAuthCode(Sha256Hex("code-g1"), kNow + 1, Pass,
                                        {Token("access-2", OAuthTokenKind::kAccess)});
  REQUIRE_FALSE(again.ok());
  CHECK(absl::IsFailedPrecondition(again.status()));
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("access-2")).status()));
  auto found = f.store->FindOAuthToken(Sha256Hex("access-g1"));
  REQUIRE(found.ok());
  REQUIRE(found->grant.revoked_at_ms.has_value());
  CHECK(*found->grant.revoked_at_ms == kNow + 1);
  CHECK(found->grant.revoked_reason == "authorization code used twice");
}

TEST_CASE("a code whose check fails is spent, its grant revoked, and nothing inserted",
          "[oauth][tokens]") {
  Fixture f;
  REQUIRE(f.store->InsertOAuthGrant(Grant("g1"), Code("code")).ok());
  auto refused = f.store->RedeemOAuthCode(Sha256Hex("code"), kNow,
                                          [](const OAuthCodeRecord&, const OAuthGrantRecord&) {
                                            return absl::InvalidArgumentError("wrong verifier");
                                          },
                                          {Token("access", OAuthTokenKind::kAccess)});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() == "wrong verifier");
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("access")).status()));
  auto grants = f.store->ListOAuthGrants({.include_revoked = true});
  REQUIRE(grants.ok());
  REQUIRE(grants->size() == 1);
  CHECK(grants->front().revoked_at_ms.has_value());
  auto again = f.store->RedeemOAuthCode(Sha256Hex("code"), kNow, Pass, {});
  CHECK(absl::IsFailedPrecondition(again.status()));
}

TEST_CASE("an expired code, or one of a revoked grant, is refused and changes nothing",
          "[oauth][tokens]") {
  Fixture f;
  REQUIRE(f.store->InsertOAuthGrant(Grant("g1"), Code("code")).ok());
  auto expired = f.store->RedeemOAuthCode(Sha256Hex("code"), kNow + 60'000, Pass,
                                          {Token("access", OAuthTokenKind::kAccess)});
  CHECK(absl::IsFailedPrecondition(expired.status()));
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("access")).status()));
  auto grants = f.store->ListOAuthGrants({});
  REQUIRE(grants.ok());
  CHECK(grants->size() == 1);  // not revoked

  REQUIRE(f.store->RevokeOAuthGrants({.grant_id = "g1"}, kNow, "test").ok());
  auto revoked = f.store->RedeemOAuthCode(Sha256Hex("code"), kNow, Pass, {});
  CHECK(absl::IsFailedPrecondition(revoked.status()));
  CHECK(absl::IsNotFound(f.store->RedeemOAuthCode(Sha256Hex("nope"), kNow, Pass, {}).status()));
}

TEST_CASE("one code redeemed at once through two store handles and many threads: one wins",
          "[oauth][tokens]") {
  Fixture f;
  std::unique_ptr<SqliteStore> second = OpenOrDie(f.Path());  // as another process would
  for (int round = 0; round < 4; ++round) {
    const std::string id = "g" + std::to_string(round);
    REQUIRE(f.store->InsertOAuthGrant(Grant(id), Code("code-" + id)).ok());
    std::atomic<int> wins = 0;
    std::atomic<int> used = 0;
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      SqliteStore* store = i % 2 == 0 ? f.store.get() : second.get();
      threads.emplace_back([&, store, i] {
        auto r = store->RedeemOAuthCode(
            Sha256Hex("code-" + id), kNow, Pass,
            {Token("access-" + id + "-" + std::to_string(i), OAuthTokenKind::kAccess)});
        if (r.ok()) ++wins;
        if (absl::IsFailedPrecondition(r.status())) ++used;
      });
    }
    for (auto& t : threads) t.join();
    CHECK(wins == 1);
    CHECK(used == 5);
    auto grants = f.store->ListOAuthGrants({.grant_id = id});
    REQUIRE(grants.ok());
    CHECK(grants->empty());  // the replays revoked it
  }
}

TEST_CASE("rotating a refresh token spends it, rotating it again revokes its grant",
          "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  auto rotated = f.store->RotateOAuthRefreshToken(
      Sha256Hex("refresh-g1"), "client-a", kNow + 10,
      {Token("access-2", OAuthTokenKind::kAccess), Token("refresh-2", OAuthTokenKind::kRefresh)});
  REQUIRE(rotated.ok());
  CHECK(rotated->grant.grant_id == "g1");
  CHECK_FALSE(rotated->token.used_at_ms.has_value());
  auto spent = f.store->FindOAuthToken(Sha256Hex("refresh-g1"));
  REQUIRE(spent.ok());
  CHECK(spent->token.used_at_ms == kNow + 10);
  auto fresh = f.store->FindOAuthToken(Sha256Hex("refresh-2"));
  REQUIRE(fresh.ok());
  CHECK(fresh->token.grant_id == "g1");

  auto reused = f.store->RotateOAuthRefreshToken(Sha256Hex("refresh-g1"), "client-a", kNow + 20,
                                                 {Token("access-3", OAuthTokenKind::kAccess)});
  CHECK(absl::IsFailedPrecondition(reused.status()));
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("access-3")).status()));
  auto family = f.store->FindOAuthToken(Sha256Hex("refresh-2"));
  REQUIRE(family.ok());
  CHECK(family->grant.revoked_reason == "refresh token reused");
  CHECK(absl::IsFailedPrecondition(
      f.store->RotateOAuthRefreshToken(Sha256Hex("refresh-2"), "client-a", kNow + 30, {})
          .status()));
}

TEST_CASE("one refresh token rotated at once from two store handles: one wins, the grant ends",
          "[oauth][tokens]") {
  Fixture f;
  std::unique_ptr<SqliteStore> second = OpenOrDie(f.Path());
  f.Issue("g1");
  std::atomic<int> wins = 0;
  std::atomic<int> reused = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    SqliteStore* store = i % 2 == 0 ? f.store.get() : second.get();
    threads.emplace_back([&, store, i] {
      auto r = store->RotateOAuthRefreshToken(
          Sha256Hex("refresh-g1"), "client-a", kNow + 1,
          {Token("refresh-next-" + std::to_string(i), OAuthTokenKind::kRefresh)});
      if (r.ok()) ++wins;
      if (absl::IsFailedPrecondition(r.status())) ++reused;
    });
  }
  for (auto& t : threads) t.join();
  CHECK(wins == 1);
  CHECK(reused == 3);
  auto found = f.store->FindOAuthToken(Sha256Hex("access-g1"));
  REQUIRE(found.ok());
  CHECK(found->grant.revoked_reason == "refresh token reused");
}

TEST_CASE("a refresh token is unknown to another client, and an access token is no refresh token",
          "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  CHECK(absl::IsNotFound(
      f.store->RotateOAuthRefreshToken(Sha256Hex("refresh-g1"), "client-b", kNow, {}).status()));
  CHECK(absl::IsNotFound(
      f.store->RotateOAuthRefreshToken(Sha256Hex("access-g1"), "client-a", kNow, {}).status()));
  auto still = f.store->FindOAuthToken(Sha256Hex("refresh-g1"));
  REQUIRE(still.ok());
  CHECK_FALSE(still->token.used_at_ms.has_value());
  CHECK_FALSE(still->grant.revoked_at_ms.has_value());
}

TEST_CASE("an expired refresh token is refused without revoking its grant", "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  auto late =
      f.store->RotateOAuthRefreshToken(Sha256Hex("refresh-g1"), "client-a", kNow + 30 * kDay, {});
  CHECK(absl::IsFailedPrecondition(late.status()));
  auto found = f.store->FindOAuthToken(Sha256Hex("access-g1"));
  REQUIRE(found.ok());
  CHECK_FALSE(found->grant.revoked_at_ms.has_value());
}

TEST_CASE("FindOAuthToken says whether the grant's API key is live and an admin",
          "[oauth][tokens]") {
  Fixture f;
  REQUIRE(
      f.store->InsertApiKey({.name = "alice", .hash = Sha256Hex("k1"), .created_at_ms = 1}).ok());
  REQUIRE(f.store
              ->InsertApiKey(
                  {.name = "root", .hash = Sha256Hex("k2"), .created_at_ms = 1, .admin = true})
              .ok());
  f.Issue("g-alice", "key:alice");
  f.Issue("g-root", "key:root");
  f.Issue("g-ghost", "key:ghost");
  f.Issue("g-oidc", "oidc:https://idp.example.com#key:alice");
  auto alice = f.store->FindOAuthToken(Sha256Hex("access-g-alice"));
  REQUIRE(alice.ok());
  CHECK(alice->principal_live);
  CHECK_FALSE(alice->principal_admin);
  auto root = f.store->FindOAuthToken(Sha256Hex("access-g-root"));
  REQUIRE(root.ok());
  CHECK(root->principal_live);
  CHECK(root->principal_admin);
  auto ghost = f.store->FindOAuthToken(Sha256Hex("access-g-ghost"));
  REQUIRE(ghost.ok());
  CHECK_FALSE(ghost->principal_live);
  // A person whose subject looks like a key id is no key's principal.
  auto oidc = f.store->FindOAuthToken(Sha256Hex("access-g-oidc"));
  REQUIRE(oidc.ok());
  CHECK(oidc->principal_live);
  CHECK_FALSE(oidc->principal_admin);

  REQUIRE(f.store->RevokeApiKey("alice", kNow).ok());
  alice = f.store->FindOAuthToken(Sha256Hex("access-g-alice"));
  REQUIRE(alice.ok());
  CHECK_FALSE(alice->principal_live);
}

TEST_CASE("the token lookup is one query on primary keys", "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  // The store's own statement text is private; the plan of the same join shows which indexes
  // SQLite picks for it.
  auto plan = testing::QueryPlan(
      f.Path(),
      "SELECT t.hash, g.scope, k.admin FROM oauth_tokens t JOIN oauth_grants g ON "
      "g.grant_id = t.grant_id LEFT JOIN api_keys k ON g.principal_kind = 'api_key' AND "
      "substr(g.principal_id, 1, 4) = 'key:' AND k.name = substr(g.principal_id, 5) "
      "WHERE t.hash = ?1");
  REQUIRE(plan.ok());
  const std::string& details = *plan;
  INFO(details);
  CHECK(details.find("SCAN") == std::string::npos);
  CHECK(details.find("sqlite_autoindex_oauth_tokens_1") != std::string::npos);
  CHECK(details.find("sqlite_autoindex_oauth_grants_1") != std::string::npos);
  CHECK(details.find("sqlite_autoindex_api_keys_1") != std::string::npos);
}

TEST_CASE("grants are listed and revoked by id, principal and client", "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1", "key:alice", "client-a");
  f.Issue("g2", "key:bob", "client-a");
  f.Issue("g3", "key:alice", "client-b");
  auto all = f.store->ListOAuthGrants({});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  CHECK(all->at(0).grant_id == "g1");
  auto alices = f.store->ListOAuthGrants({.principal_id = "key:alice"});
  REQUIRE(alices.ok());
  CHECK(alices->size() == 2);
  auto b = f.store->ListOAuthGrants({.principal_id = "key:alice", .client_id = "client-b"});
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  CHECK(b->front().grant_id == "g3");

  CHECK(absl::IsInvalidArgument(f.store->RevokeOAuthGrants({}, kNow, "all?").status()));
  auto revoked = f.store->RevokeOAuthGrants({.client_id = "client-a"}, kNow + 1, "operator");
  REQUIRE(revoked.ok());
  CHECK(*revoked == 2);
  revoked = f.store->RevokeOAuthGrants({.client_id = "client-a"}, kNow + 2, "again");
  REQUIRE(revoked.ok());
  CHECK(*revoked == 0);  // already revoked: the first time and reason stay
  auto live = f.store->ListOAuthGrants({});
  REQUIRE(live.ok());
  REQUIRE(live->size() == 1);
  CHECK(live->front().grant_id == "g3");
  auto with_revoked = f.store->ListOAuthGrants({.grant_id = "g1", .include_revoked = true});
  REQUIRE(with_revoked.ok());
  REQUIRE(with_revoked->size() == 1);
  CHECK(with_revoked->front().revoked_at_ms == kNow + 1);
  CHECK(with_revoked->front().revoked_reason == "operator");
}

TEST_CASE("touching a grant writes its last use at most once a minute", "[oauth][tokens]") {
  Fixture f;
  f.Issue("g1");
  auto last_used = [&] {
    auto found = f.store->FindOAuthToken(Sha256Hex("access-g1"));
    REQUIRE(found.ok());
    return found->grant.last_used_at_ms;
  };
  REQUIRE(f.store->TouchOAuthGrant("g1", kNow + 1000).ok());
  CHECK(last_used() == kNow + 1000);
  REQUIRE(f.store->TouchOAuthGrant("g1", kNow + 2000).ok());
  CHECK(last_used() == kNow + 1000);
  REQUIRE(f.store->TouchOAuthGrant("g1", kNow + 1000 + SqliteStore::kTouchIntervalMs).ok());
  CHECK(last_used() == kNow + 1000 + SqliteStore::kTouchIntervalMs);
  REQUIRE(f.store->TouchOAuthGrant("unknown", kNow).ok());
}

TEST_CASE(
    "pruning deletes expired tokens, codes a day after expiry, long-dead grants, unused clients",
    "[oauth][tokens]") {
  Fixture f;
  f.Issue("live");
  f.Issue("revoked");
  REQUIRE(f.store->RevokeOAuthGrants({.grant_id = "revoked"}, kNow, "test").ok());
  // Clients through SQL: their store methods are the clients branch's.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(f.Path().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "INSERT INTO oauth_clients VALUES "
                       "('unused', '', 'u', '[]', 'none', 'k', 1, 0, 2000000),"
                       "('client-a', '', 'u', '[]', 'none', 'k', 1, 5, 0),"  // used, a live grant
                       "('young', '', 'u', '[]', 'none', 'k', 1, 0, 9000000000)",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);

  // An hour on: the access tokens and the codes are expired; the revoked grant is not a day
  // dead yet, and the used codes stay a day past their expiry (a replay must still find them).
  auto pruned = f.store->PruneOAuth(kNow + 3'600'000);
  REQUIRE(pruned.ok());
  CHECK(*pruned == 2 + 1);  // two access tokens, the unused client
  CHECK(absl::IsNotFound(f.store->FindOAuthToken(Sha256Hex("access-live")).status()));
  CHECK(f.store->FindOAuthToken(Sha256Hex("refresh-live")).ok());
  CHECK(f.store->FindOAuthToken(Sha256Hex("refresh-revoked")).ok());

  pruned = f.store->PruneOAuth(kNow + kDay);
  REQUIRE(pruned.ok());
  CHECK(*pruned == 3);  // the revoked grant, its refresh token and its code
  pruned = f.store->PruneOAuth(kNow + 60'000 + kDay);
  REQUIRE(pruned.ok());
  CHECK(*pruned == 1);  // the live grant's code, a day past its expiry
  auto grants = f.store->ListOAuthGrants({.include_revoked = true});
  REQUIRE(grants.ok());
  REQUIRE(grants->size() == 1);
  CHECK(grants->front().grant_id == "live");

  REQUIRE(sqlite3_open(f.Path().c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT group_concat(client_id) FROM oauth_clients", -1, &s,
                             nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) == "client-a,young");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

}  // namespace
}  // namespace llmbox::hub::store
