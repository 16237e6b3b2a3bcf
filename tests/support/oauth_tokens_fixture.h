// tests/support/oauth_tokens_fixture.h
//
// What the OAuth token tests share: a real SqliteStore in a scratch folder, a fake clock, a
// TokenService for issuer kIssuer, two clients made by hand, API keys, and a helper that runs
// consent (IssueCode) with a fresh PKCE pair.
//
//   OAuthTokensFixture f;
//   auto issued = f.Consent(f.client, auth::Principal::ApiKey("alice", false));
//   auto tokens = f.tokens.ExchangeCode(f.client, issued.code, kRedirect, issued.verifier, {});
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "common/secrets.h"
#include "hub/oauth/tokens.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::testing {

inline constexpr char kIssuer[] = "https://hub.example.com";
inline constexpr char kRedirect[] = "https://claude.ai/api/mcp/auth_callback";

// A code as consent gave it, with the PKCE verifier its challenge was made from.
struct IssuedCode {
  std::string code;
  std::string verifier;
};

struct OAuthTokensFixture {
  OAuthTokensFixture() {
    options.issuer = kIssuer;
    auto opened = hub::store::SqliteStore::Open(DbPath());
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    store = *std::move(opened);
    tokens = std::make_unique<hub::oauth::TokenService>(*store, clock, options);
  }

  std::string DbPath() const { return (dir.path() / "hub.db").string(); }

  std::int64_t NowMs() { return common::ToUnixMillis(clock.Now()); }

  // An API key named `name`; returns the key.
  std::string AddKey(const std::string& name, bool admin = false) {
    const std::string key = "llmbox_key-of-" + name;
    REQUIRE(store
                ->InsertApiKey({.name = name,
                                .hash = common::Sha256Hex(key),
                                .created_at_ms = NowMs(),
                                .admin = admin})
                .ok());
    return key;
  }

  IssuedCode Consent(const hub::oauth::Client& who, const hub::auth::Principal& principal,
                     const std::string& redirect_uri = kRedirect) {
    auto verifier = common::RandomToken(48);
    REQUIRE(verifier.ok());
    const std::string challenge = common::Base64UrlEncode(common::Sha256(*verifier));
    auto code = tokens->IssueCode({.client = &who,
                                   .redirect_uri = redirect_uri,
                                   .code_challenge = challenge,
                                   .scope = "llmbox",
                                   .resource = kIssuer,
                                   .principal = principal});
    INFO(code.status().ToString());
    REQUIRE(code.ok());
    return {*code, *verifier};
  }

  // Consent and exchange: a live pair of tokens for `principal` held by `who`.
  hub::oauth::TokenResponse Tokens(const hub::oauth::Client& who,
                                   const hub::auth::Principal& principal) {
    IssuedCode issued = Consent(who, principal);
    auto response =
        tokens->ExchangeCode(who, issued.code, kRedirect, issued.verifier, std::nullopt);
    INFO(response.status().ToString());
    REQUIRE(response.ok());
    return *response;
  }

  ScratchDir dir{"oauth-tokens"};
  FakeClock clock;
  hub::oauth::OAuthOptions options;
  std::unique_ptr<hub::store::SqliteStore> store;
  std::unique_ptr<hub::oauth::TokenService> tokens;
  hub::oauth::Client client{.client_id = "client-a",
                            .kind = hub::oauth::ClientKind::kDynamic,
                            .name = "Claude",
                            .redirect_uris = {kRedirect}};
  hub::oauth::Client other{.client_id = "client-b",
                           .kind = hub::oauth::ClientKind::kDynamic,
                           .name = "Mallory",
                           .redirect_uris = {"https://evil.example/callback"}};
};

}  // namespace llmbox::testing
