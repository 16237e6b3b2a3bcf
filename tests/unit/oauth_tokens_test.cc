// TokenService: codes, access and refresh tokens on a real SqliteStore, as a lying client, a
// replayed code or a reused refresh token would use them.
#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/admin/admin_commands.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/tokens.h"
#include "tests/support/oauth_tokens_fixture.h"
#include "tests/support/stream_capture.h"

namespace llmbox::hub::oauth {
namespace {

using llmbox::testing::Capture;
using llmbox::testing::CaptureStdout;
using llmbox::testing::IssuedCode;
using llmbox::testing::kIssuer;
using llmbox::testing::kRedirect;
using llmbox::testing::OAuthTokensFixture;

auth::Principal Alice() { return auth::Principal::ApiKey("alice", false); }

// The OAuth error of a failed call, after checking that its message holds none of `secrets`.
template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& result, std::vector<std::string> secrets = {}) {
  REQUIRE_FALSE(result.ok());
  const std::string message(result.status().message());
  for (const std::string& secret : secrets) CHECK(message.find(secret) == std::string::npos);
  return OAuthErrorCode(result.status());
}

TEST_CASE("a code exchanged with its verifier gives tokens that authenticate as the API key",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  CHECK(issued.code.starts_with("lbac_"));
  CHECK(issued.code.size() == 5 + 43);
  auto response = f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                                         std::string_view(kIssuer));
  REQUIRE(response.ok());
  CHECK(response->access_token.starts_with("lbat_"));
  CHECK(response->refresh_token.starts_with("lbrt_"));
  CHECK(response->expires_in == 3600);
  CHECK(response->scope == "llmbox");
  CHECK(LooksLikeAccessToken(response->access_token));
  CHECK_FALSE(LooksLikeAccessToken("llmbox_key-of-alice"));
  auto who = f.tokens->Authenticate(response->access_token);
  REQUIRE(who.ok());
  CHECK(*who == Alice());
}

TEST_CASE("the store keeps only hashes of codes and tokens", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  auto response =
      f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt);
  REQUIRE(response.ok());
  f.store.reset();  // flushes nothing it would not have: every write is committed
  std::FILE* file = std::fopen(f.DbPath().c_str(), "rb");
  REQUIRE(file != nullptr);
  std::string bytes;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, file)) bytes.append(buffer, n);
  std::fclose(file);
  // The WAL holds what was not checkpointed yet.
  std::FILE* wal = std::fopen((f.DbPath() + "-wal").c_str(), "rb");
  if (wal != nullptr) {
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, wal)) bytes.append(buffer, n);
    std::fclose(wal);
  }
  for (const std::string& secret :
       {issued.code, issued.verifier, response->access_token, response->refresh_token}) {
    CHECK(bytes.find(secret) == std::string::npos);
    CHECK(bytes.find(secret.substr(5)) == std::string::npos);
  }
  CHECK(bytes.find(common::Sha256Hex(response->access_token)) != std::string::npos);
}

TEST_CASE("an OIDC person's token authenticates as that person, issuer, subject and email",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  const auth::Principal person =
      auth::Principal::OAuthSubject("https://idp.example.com/realms/x", "sub#with#hashes",
                                    "Alice Example", "alice@example.com", {});
  auto response = f.Tokens(f.client, person);
  auto who = f.tokens->Authenticate(response.access_token);
  REQUIRE(who.ok());
  CHECK(*who == person);
  CHECK(who->id() == "oidc:https://idp.example.com/realms/x#sub#with#hashes");
  CHECK(who->verified_email() == "alice@example.com");
  CHECK_FALSE(who->IsAdmin());
}

TEST_CASE("a person on auth.oauth.admin_emails is an admin, read at every request",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.options.admin_emails = {"OPS@example.com"};
  const auth::Principal ops = auth::Principal::OAuthSubject(
      "https://idp.example.com", "sub-ops", "ops@example.com", "ops@example.com", {});
  const auth::Principal alice = auth::Principal::OAuthSubject(
      "https://idp.example.com", "sub-alice", "alice@example.com", "alice@example.com", {});
  auto ops_tokens = f.Tokens(f.client, ops);
  auto alice_tokens = f.Tokens(f.client, alice);
  auto who = f.tokens->Authenticate(ops_tokens.access_token);
  REQUIRE(who.ok());
  CHECK(who->IsAdmin());  // the email compared case-insensitively
  CHECK(who->id() == "oidc:https://idp.example.com#sub-ops");
  auto other = f.tokens->Authenticate(alice_tokens.access_token);
  REQUIRE(other.ok());
  CHECK_FALSE(other->IsAdmin());
  // Taken off the list, the same token is no admin at its next use.
  f.options.admin_emails.clear();
  auto demoted = f.tokens->Authenticate(ops_tokens.access_token);
  REQUIRE(demoted.ok());
  CHECK_FALSE(demoted->IsAdmin());
}

TEST_CASE("an admin key's grant authenticates with the admin role the key has now",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("root", /*admin=*/true);
  auto response = f.Tokens(f.client, auth::Principal::ApiKey("root", true));
  auto who = f.tokens->Authenticate(response.access_token);
  REQUIRE(who.ok());
  CHECK(who->IsAdmin());
  CHECK(who->id() == "key:root");
}

TEST_CASE("PKCE downgrades are refused and issue nothing: no verifier, a wrong one, plain",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  const std::string challenge = common::Base64UrlEncode(common::Sha256(issued.verifier));

  // No verifier: refused before the code is looked at, so it is not spent.
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, "", std::nullopt),
                {issued.code}) == "invalid_request");
  // A verifier outside RFC 7636's syntax.
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, "short", std::nullopt)) ==
        "invalid_grant");
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, std::string(43, 'a') + "/",
                                       std::nullopt)) == "invalid_grant");
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, std::string(129, 'a'),
                                       std::nullopt)) == "invalid_grant");

  SECTION("plain: the challenge itself as the verifier") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, challenge, std::nullopt),
                  {issued.code, challenge}) == "invalid_grant");
  }
  SECTION("a wrong verifier of the right shape") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, std::string(43, 'x'),
                                         std::nullopt),
                  {issued.code}) == "invalid_grant");
  }
  // A wrong verifier spends the code: the right one no longer helps (the code leaked).
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                                       std::nullopt)) == "invalid_grant");
  auto grants = f.store->ListOAuthGrants({.include_revoked = true});
  REQUIRE(grants.ok());
  REQUIRE(grants->size() == 1);
  CHECK(grants->front().revoked_at_ms.has_value());
}

TEST_CASE("IssueCode refuses a plain or malformed challenge, another resource and scope",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  CodeRequest request{.client = &f.client,
                      .redirect_uri = kRedirect,
                      .code_challenge = "plain-verifier-used-as-challenge",
                      .scope = "llmbox",
                      .resource = kIssuer,
                      .principal = Alice()};
  CHECK(ErrorOf(f.tokens->IssueCode(request)) == "invalid_request");
  request.code_challenge = std::string(43, 'A');
  request.resource = "https://other.example.com";
  CHECK(ErrorOf(f.tokens->IssueCode(request)) == "invalid_target");
  request.resource = kIssuer;
  request.scope = "llmbox admin";
  CHECK(ErrorOf(f.tokens->IssueCode(request)) == "invalid_scope");
  request.scope = "llmbox";
  request.principal = auth::Principal::Anonymous();
  CHECK(ErrorOf(f.tokens->IssueCode(request)) == "access_denied");
  request.principal = Alice();
  CHECK(f.tokens->IssueCode(request).ok());
}

TEST_CASE("a code used twice fails the second time and the first's tokens stop working",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  auto first =
      f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt);
  REQUIRE(first.ok());
  REQUIRE(f.tokens->Authenticate(first->access_token).ok());
  CHECK(ErrorOf(
            f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt),
            {issued.code}) == "invalid_grant");
  CHECK(absl::IsUnauthenticated(f.tokens->Authenticate(first->access_token).status()));
  CHECK(ErrorOf(f.tokens->Refresh(f.client, first->refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
  auto grants = f.store->ListOAuthGrants({.include_revoked = true});
  REQUIRE(grants.ok());
  REQUIRE(grants->size() == 1);
  CHECK(grants->front().revoked_reason == "authorization code used twice");
}

TEST_CASE("two threads redeeming one code: exactly one wins, and the replay ends its grant",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  for (int round = 0; round < 5; ++round) {
    IssuedCode issued = f.Consent(f.client, Alice());
    std::atomic<int> wins = 0;
    std::atomic<int> refusals = 0;
    std::vector<std::string> winners(2);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        auto r =
            f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt);
        if (r.ok()) {
          ++wins;
          winners[i] = r->access_token;
        } else if (OAuthErrorCode(r.status()) == "invalid_grant") {
          ++refusals;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(wins == 1);
    CHECK(refusals == 1);
    for (const std::string& token : winners) {
      if (!token.empty()) CHECK_FALSE(f.tokens->Authenticate(token).ok());
    }
  }
}

TEST_CASE("a code presented by another client or with another redirect URI is refused",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  SECTION("another client") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.other, issued.code, kRedirect, issued.verifier,
                                         std::nullopt),
                  {issued.code, issued.verifier}) == "invalid_grant");
  }
  SECTION("a redirect URI that differs by one character") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code,
                                         "https://claude.ai/api/mcp/auth_callbacK", issued.verifier,
                                         std::nullopt)) == "invalid_grant");
  }
  SECTION("a redirect URI with a trailing slash") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, std::string(kRedirect) + "/",
                                         issued.verifier, std::nullopt)) == "invalid_grant");
  }
  // Nothing was issued, and the code is spent for its own client too.
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                                       std::nullopt)) == "invalid_grant");
}

TEST_CASE("an expired code is refused", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  f.clock.Advance(f.options.code_ttl);
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                                       std::nullopt)) == "invalid_grant");
}

TEST_CASE("an unknown or malformed code is invalid_grant", "[oauth][tokens]") {
  OAuthTokensFixture f;
  const std::string verifier(43, 'v');
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, "lbac_" + std::string(43, 'A'), kRedirect,
                                       verifier, std::nullopt)) == "invalid_grant");
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, "lbac_" + std::string(100'000, 'A'), kRedirect,
                                       verifier, std::nullopt)) == "invalid_grant");
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, "", kRedirect, verifier, std::nullopt)) ==
        "invalid_grant");
}

TEST_CASE("a code asked for another resource is invalid_target, the origin with a slash is ok",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  SECTION("another resource") {
    CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                                         std::string_view("https://other.example.com"))) ==
          "invalid_target");
  }
  SECTION("the same origin with a trailing slash") {
    CHECK(f.tokens
              ->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier,
                             std::string_view("https://hub.example.com/"))
              .ok());
  }
}

TEST_CASE("a token issued for another resource does not authenticate here", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  // The same store behind a hub with another public URL: the audience differs.
  OAuthOptions moved = f.options;
  moved.issuer = "https://moved.example.com";
  TokenService elsewhere(*f.store, f.clock, moved);
  CHECK(absl::IsUnauthenticated(elsewhere.Authenticate(response.access_token).status()));
  CHECK(f.tokens->Authenticate(response.access_token).ok());
}

TEST_CASE("refresh rotates, the old refresh token again revokes the family, newest tokens too",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto first = f.Tokens(f.client, Alice());
  f.clock.Advance(std::chrono::minutes(10));
  auto second = f.tokens->Refresh(f.client, first.refresh_token, std::nullopt, std::nullopt);
  REQUIRE(second.ok());
  CHECK(second->refresh_token != first.refresh_token);
  CHECK(second->access_token != first.access_token);
  CHECK(second->expires_in == 3600);
  REQUIRE(f.tokens->Authenticate(second->access_token).ok());
  auto third = f.tokens->Refresh(f.client, second->refresh_token, std::nullopt, std::nullopt);
  REQUIRE(third.ok());

  // The attacker replays the first refresh token.
  CHECK(ErrorOf(f.tokens->Refresh(f.client, first.refresh_token, std::nullopt, std::nullopt),
                {first.refresh_token}) == "invalid_grant");
  CHECK_FALSE(f.tokens->Authenticate(third->access_token).ok());
  CHECK_FALSE(f.tokens->Authenticate(second->access_token).ok());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, third->refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
  auto grants = f.store->ListOAuthGrants({.include_revoked = true});
  REQUIRE(grants.ok());
  CHECK(grants->front().revoked_reason == "refresh token reused");
}

TEST_CASE("a refresh token is refused to another client and spends nothing", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto first = f.Tokens(f.client, Alice());
  CHECK(ErrorOf(f.tokens->Refresh(f.other, first.refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
  CHECK(f.tokens->Refresh(f.client, first.refresh_token, std::nullopt, std::nullopt).ok());
}

TEST_CASE("a refresh asking for more scope or another resource is refused without spending it",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto first = f.Tokens(f.client, Alice());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, first.refresh_token, "llmbox admin", std::nullopt)) ==
        "invalid_scope");
  CHECK(ErrorOf(f.tokens->Refresh(f.client, first.refresh_token, std::nullopt,
                                  "https://other.example.com")) == "invalid_target");
  auto next = f.tokens->Refresh(f.client, first.refresh_token, "llmbox", kIssuer);
  REQUIRE(next.ok());
  CHECK(next->scope == "llmbox");
}

TEST_CASE("access and refresh tokens are not interchangeable", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  CHECK_FALSE(f.tokens->Authenticate(response.refresh_token).ok());
  std::string disguised = response.refresh_token;
  disguised.replace(0, 5, "lbat_");
  CHECK_FALSE(f.tokens->Authenticate(disguised).ok());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response.access_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
  std::string altered = response.access_token;
  altered.back() = altered.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(f.tokens->Authenticate(altered).ok());
  CHECK(f.tokens->Authenticate(response.access_token).ok());
}

TEST_CASE("an access token expires after access_token_ttl, refresh gives a new one",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  f.clock.Advance(f.options.access_token_ttl - std::chrono::seconds(1));
  CHECK(f.tokens->Authenticate(response.access_token).ok());
  f.clock.Advance(std::chrono::seconds(1));
  auto expired = f.tokens->Authenticate(response.access_token);
  REQUIRE_FALSE(expired.ok());
  CHECK(absl::IsUnauthenticated(expired.status()));
  CHECK(expired.status().message().find("expired") != std::string_view::npos);
  auto next = f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt);
  REQUIRE(next.ok());
  CHECK(f.tokens->Authenticate(next->access_token).ok());
}

TEST_CASE("a grant ends grant_ttl after consent: its tokens and refreshes stop",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.options.grant_ttl = std::chrono::hours(2);
  f.options.access_token_ttl = std::chrono::hours(1);
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  f.clock.Advance(std::chrono::minutes(90));
  auto next = f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt);
  REQUIRE(next.ok());
  CHECK(next->expires_in == 30 * 60);  // capped at the grant's end
  f.clock.Advance(std::chrono::minutes(30));
  CHECK_FALSE(f.tokens->Authenticate(next->access_token).ok());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, next->refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
}

TEST_CASE("revoking the API key ends its grant's access and refresh tokens", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  REQUIRE(f.tokens->Authenticate(response.access_token).ok());
  REQUIRE(f.store->RevokeApiKey("alice", f.NowMs()).ok());
  auto refused = f.tokens->Authenticate(response.access_token);
  REQUIRE_FALSE(refused.ok());
  CHECK(absl::IsUnauthenticated(refused.status()));
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
}

TEST_CASE("a grant for a key that never existed does not authenticate", "[oauth][tokens]") {
  OAuthTokensFixture f;
  auto response = f.Tokens(f.client, auth::Principal::ApiKey("ghost", true));
  CHECK_FALSE(f.tokens->Authenticate(response.access_token).ok());
}

TEST_CASE("revocation by another client is a no-op, by its own client it ends the grant",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  REQUIRE(f.tokens->Revoke(f.other, response.access_token).ok());
  REQUIRE(f.tokens->Revoke(f.other, response.refresh_token).ok());
  CHECK(f.tokens->Authenticate(response.access_token).ok());
  REQUIRE(f.tokens->Revoke(f.client, "lbat_unknown").ok());
  REQUIRE(f.tokens->Revoke(f.client, "not even ours").ok());
  CHECK(f.tokens->Authenticate(response.access_token).ok());

  SECTION("by the refresh token") {
    REQUIRE(f.tokens->Revoke(f.client, response.refresh_token).ok());
  }
  SECTION("by the access token") {
    REQUIRE(f.tokens->Revoke(f.client, response.access_token).ok());
  }
  CHECK_FALSE(f.tokens->Authenticate(response.access_token).ok());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
}

TEST_CASE("Authenticate records a grant's use at most once a minute", "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  auto response = f.Tokens(f.client, Alice());
  auto last_used = [&] {
    auto grants = f.store->ListOAuthGrants({});
    REQUIRE(grants.ok());
    REQUIRE(grants->size() == 1);
    return grants->front().last_used_at_ms;
  };
  CHECK(last_used() == 0);
  REQUIRE(f.tokens->Authenticate(response.access_token).ok());
  const std::int64_t first = last_used();
  CHECK(first == f.NowMs());
  f.clock.Advance(std::chrono::seconds(30));
  REQUIRE(f.tokens->Authenticate(response.access_token).ok());
  CHECK(last_used() == first);
  f.clock.Advance(std::chrono::seconds(31));
  REQUIRE(f.tokens->Authenticate(response.access_token).ok());
  CHECK(last_used() == f.NowMs());
}

TEST_CASE("the token response is RFC 6749 JSON with an integer expires_in", "[oauth][tokens]") {
  TokenResponse response{
      .access_token = "lbat_a", .refresh_token = "lbrt_r", .expires_in = 3600, .scope = "llmbox"};
  CHECK(response.Json() == R"({"access_token":"lbat_a","expires_in":3600,"refresh_token":"lbrt_r",)"
                           R"("scope":"llmbox","token_type":"Bearer"})");
}

TEST_CASE("a CLI revoke from a second store handle takes effect on the serving store at once",
          "[oauth][tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  f.AddKey("bob");
  auto alice = f.Tokens(f.client, Alice());
  auto bob = f.Tokens(f.client, auth::Principal::ApiKey("bob", false));
  config::HubConfig config;
  config.state_dir = f.dir.path().string();  // OpenStore opens <state_dir>/hub.db
  admin::CommandArgs args{.verb = "list", .usage = "usage\n"};

  const std::string listed = CaptureStdout(
      f.dir.path() / "list.out", [&] { CHECK(admin::OAuthCommand(args, config, f.clock) == 0); });
  CHECK(listed.find("key:alice") != std::string::npos);
  CHECK(listed.find("key:bob") != std::string::npos);
  CHECK(listed.find("Claude (client-a)") != std::string::npos);
  for (const std::string& secret : {alice.access_token, alice.refresh_token, bob.access_token}) {
    CHECK(listed.find(secret) == std::string::npos);
    CHECK(listed.find(common::Sha256Hex(secret)) == std::string::npos);
  }

  args.verb = "revoke";
  args.principal = "alice";  // a key's name stands for its principal
  CHECK(admin::OAuthCommand(args, config, f.clock) == 0);
  CHECK_FALSE(f.tokens->Authenticate(alice.access_token).ok());
  CHECK(f.tokens->Authenticate(bob.access_token).ok());

  args.principal.clear();
  args.client = "client-a";
  CHECK(admin::OAuthCommand(args, config, f.clock) == 0);
  CHECK_FALSE(f.tokens->Authenticate(bob.access_token).ok());

  args.client.clear();
  args.grant = "gr_nonexistent";
  CHECK(admin::OAuthCommand(args, config, f.clock) == 1);
  args.principal = "alice";  // two selectors
  CHECK(admin::OAuthCommand(args, config, f.clock) == 2);

  args = {.verb = "list", .usage = "usage\n", .all = true};
  const std::string all = CaptureStdout(
      f.dir.path() / "all.out", [&] { CHECK(admin::OAuthCommand(args, config, f.clock) == 0); });
  CHECK(all.find("revoked by the operator") != std::string::npos);
}

TEST_CASE("a code replayed after the hub's pruning still revokes what it issued",
          "[oauth][tokens][fix-tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  IssuedCode issued = f.Consent(f.client, Alice());
  auto response =
      f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt);
  REQUIRE(response.ok());
  f.clock.Advance(f.options.code_ttl + std::chrono::minutes(30));  // the hub prunes every 10 min
  REQUIRE(f.store->PruneOAuth(f.NowMs()).ok());
  REQUIRE(f.tokens->Authenticate(response->access_token).ok());
  CHECK(ErrorOf(
            f.tokens->ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, std::nullopt),
            {issued.code}) == "invalid_grant");
  CHECK_FALSE(f.tokens->Authenticate(response->access_token).ok());
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response->refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");

  // A day after its expiry the row goes.
  IssuedCode later = f.Consent(f.client, Alice());
  f.clock.Advance(f.options.code_ttl + std::chrono::hours(24));
  auto pruned = f.store->PruneOAuth(f.NowMs());
  REQUIRE(pruned.ok());
  CHECK(*pruned > 0);
  const std::string message(
      f.tokens->ExchangeCode(f.client, later.code, kRedirect, later.verifier, std::nullopt)
          .status()
          .message());
  CHECK(message.find("unknown") != std::string::npos);
}

TEST_CASE("apikey revoke also revokes the key's OAuth grants at once, and says how many",
          "[oauth][tokens][fix-tokens]") {
  OAuthTokensFixture f;
  f.AddKey("alice");
  f.AddKey("bob");
  (void)f.Tokens(f.client, Alice());
  (void)f.Tokens(f.other, Alice());
  auto bob = f.Tokens(f.client, auth::Principal::ApiKey("bob", false));
  config::HubConfig config;
  config.state_dir = f.dir.path().string();
  admin::CommandArgs args{.verb = "revoke", .name = "alice", .usage = "usage\n"};
  const std::string said = Capture(stderr, f.dir.path() / "revoke.err", [&] {
    CHECK(admin::ApiKeyCommand(args, config, f.clock) == 0);
  });
  CHECK(said.find("2 OAuth grant(s)") != std::string::npos);
  // `oauth list` shows them ended now, not "live" until their next use.
  auto live = f.store->ListOAuthGrants({.principal_id = "key:alice"});
  REQUIRE(live.ok());
  CHECK(live->empty());
  auto all = f.store->ListOAuthGrants({.principal_id = "key:alice", .include_revoked = true});
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  for (const auto& grant : *all) {
    CHECK(grant.revoked_at_ms.has_value());
    CHECK(grant.revoked_reason == "the API key was revoked");
  }
  CHECK(f.tokens->Authenticate(bob.access_token).ok());
}

TEST_CASE("a person taken off the OIDC allow-list loses access, a refresh revokes the grant",
          "[oauth][tokens][fix-tokens]") {
  OAuthTokensFixture f;
  std::set<std::string> allowed = {"alice@example.com"};
  int asked = 0;
  f.tokens =
      std::make_unique<TokenService>(*f.store, f.clock, f.options, [&](std::string_view email) {
        ++asked;
        return allowed.contains(std::string(email));
      });
  const auth::Principal alice = auth::Principal::OAuthSubject(
      "https://idp.example.com", "sub-alice", "Alice", "alice@example.com", {});
  f.AddKey("bob");
  auto key_person = f.Tokens(f.client, auth::Principal::ApiKey("bob", false));
  auto response = f.Tokens(f.client, alice);
  REQUIRE(f.tokens->Authenticate(response.access_token).ok());
  IssuedCode unused = f.Consent(f.client, alice);

  allowed.clear();  // the operator removed her from activation.oidc and restarted
  auto refused = f.tokens->Authenticate(response.access_token);
  REQUIRE_FALSE(refused.ok());
  CHECK(absl::IsUnauthenticated(refused.status()));
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt),
                {response.refresh_token}) == "invalid_grant");
  auto grants = f.store->ListOAuthGrants(
      {.principal_id = "oidc:https://idp.example.com#sub-alice", .include_revoked = true});
  REQUIRE(grants.ok());
  bool revoked = false;
  for (const auto& grant : *grants) {
    revoked = revoked || grant.revoked_reason == "the person is no longer allowed to sign in";
  }
  CHECK(revoked);
  // No new consent for her, and a code given before is worth nothing.
  auto verifier = common::RandomToken(48);
  REQUIRE(verifier.ok());
  CHECK(ErrorOf(f.tokens->IssueCode(
            {.client = &f.client,
             .redirect_uri = kRedirect,
             .code_challenge = common::Base64UrlEncode(common::Sha256(*verifier)),
             .scope = "llmbox",
             .resource = kIssuer,
             .principal = alice})) == "access_denied");
  CHECK(ErrorOf(f.tokens->ExchangeCode(f.client, unused.code, kRedirect, unused.verifier,
                                       std::nullopt)) == "invalid_grant");
  // Back on the list: the revoked grant stays revoked.
  allowed.insert("alice@example.com");
  CHECK(ErrorOf(f.tokens->Refresh(f.client, response.refresh_token, std::nullopt, std::nullopt)) ==
        "invalid_grant");
  // API-key principals are not asked.
  const int before = asked;
  allowed.clear();
  CHECK(f.tokens->Authenticate(key_person.access_token).ok());
  CHECK(asked == before);
}

}  // namespace
}  // namespace llmbox::hub::oauth
