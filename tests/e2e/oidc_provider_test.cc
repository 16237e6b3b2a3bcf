// Sign-in gating against a real OpenID Connect provider: npm's oidc-provider on loopback
// (tests/e2e/node/oidc_provider.mjs), signed in through its login form with plain HTTP
// requests (oidc_login.mjs), and ProviderOidcClient over real HTTP with libcurl.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "common/clock.h"
#include "hub/activation/http_fetch.h"
#include "hub/activation/oidc.h"
#include "tests/support/child_process.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using hub::activation::CurlHttpFetcher;
using hub::activation::OidcSettings;
using hub::activation::ProviderOidcClient;

constexpr char kRedirectUri[] = "http://127.0.0.1:9/auth/oidc/callback";
constexpr char kClientSecret[] = "e2e-client-secret";

std::string NodeScript(const std::string& name) {
  return std::string(LLMBOX_E2E_NODE_DIR) + "/" + name;
}

// oidc_provider.mjs as a process, and the issuer URL it prints when ready.
struct Provider {
  Provider(const fs::path& dir, const std::string& token_auth)
      : process({"node", NodeScript("oidc_provider.mjs"), "--redirect-uri", kRedirectUri,
                 "--client-secret", kClientSecret, "--token-auth", token_auth},
                dir / ("provider-" + token_auth + ".log")),
        issuer(process.WaitForLog("(http://127\\.0\\.0\\.1:[0-9]+)\n")) {}
  ChildProcess process;
  const std::string issuer;
};

// The value of `name` in a URL's query (the values here need no percent-decoding).
std::string QueryParam(const std::string& url, const std::string& name) {
  for (const char sep : {'?', '&'}) {
    const size_t at = url.find(sep + name + "=");
    if (at == std::string::npos) continue;
    const size_t start = at + name.size() + 2;
    return url.substr(start, url.find('&', start) - start);
  }
  return "";
}

// Signs `login` in at the provider; the URL the provider redirected the browser to.
std::string SignInAtProvider(const fs::path& dir, const std::string& authorize_url,
                             const std::string& login) {
  ChildProcess driver({"node", NodeScript("oidc_login.mjs"), authorize_url, login, kRedirectUri},
                      dir / ("login-" + login + ".log"));
  const int exit_code = driver.Wait(60s);
  INFO(driver.Log());
  REQUIRE(exit_code == 0);
  return driver.WaitForLog("(" + std::string(kRedirectUri) + "\\?[^\n]+)");
}

struct Client {
  Client(const std::string& issuer, const std::string& client_id,
         std::vector<std::string> allowed_emails, std::vector<std::string> allowed_domains)
      : http({.connect_timeout = 5s, .total_timeout = 10s, .max_response_bytes = 1 << 20}) {
    OidcSettings settings;
    settings.issuer = issuer;
    settings.client_id = client_id;
    settings.client_secret = kClientSecret;
    settings.redirect_uri = kRedirectUri;
    settings.allowed_emails = std::move(allowed_emails);
    settings.allowed_domains = std::move(allowed_domains);
    auto created = ProviderOidcClient::Create(settings, http, common::SystemClock::Get());
    REQUIRE(created.ok());
    oidc = *std::move(created);
  }

  // The whole flow for `login`: BeginLogin, the provider's form, CompleteLogin.
  absl::StatusOr<hub::activation::SignedIn> SignIn(const fs::path& dir, const std::string& login) {
    auto start = oidc->BeginLogin("/auth/e2e-token", "192.0.2.7");
    REQUIRE(start.ok());
    const std::string callback = SignInAtProvider(dir, start->authorize_url, login);
    CHECK(QueryParam(callback, "state") == start->state);
    return oidc->CompleteLogin(QueryParam(callback, "state"), QueryParam(callback, "code"));
  }

  CurlHttpFetcher http;
  std::unique_ptr<ProviderOidcClient> oidc;
};

TEST_CASE("sign-in through a real OpenID Connect provider returns the verified email", "[oidc]") {
  ScratchDir dir("oidc-e2e");
  Provider idp(dir.path(), "client_secret_basic");

  SECTION("RS256 with client_secret_basic; an unverified email is refused") {
    Client client(idp.issuer, "llmbox", {}, {"example.com"});
    auto alice = client.SignIn(dir.path(), "alice@example.com");
    INFO(alice.status().message());
    REQUIRE(alice.ok());
    CHECK(alice->email == "alice@example.com");
    CHECK(alice->subject == "alice@example.com");
    CHECK(alice->return_to == "/auth/e2e-token");

    auto unverified = client.SignIn(dir.path(), "unverified@example.com");
    REQUIRE_FALSE(unverified.ok());
    CHECK(unverified.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(unverified.status().message()),
               Catch::Contains("has not verified the email \"unverified@example.com\""));
  }
  SECTION("ES256; a verified email outside the allow-list is refused") {
    Client client(idp.issuer, "llmbox-es256", {"alice@example.com"}, {});
    auto alice = client.SignIn(dir.path(), "alice@example.com");
    INFO(alice.status().message());
    REQUIRE(alice.ok());
    CHECK(alice->email == "alice@example.com");

    auto bob = client.SignIn(dir.path(), "bob@example.com");
    REQUIRE_FALSE(bob.ok());
    CHECK(bob.status().code() == absl::StatusCode::kPermissionDenied);
    CHECK_THAT(std::string(bob.status().message()), Catch::Contains("\"bob@example.com\""));
  }
  SECTION("a code is good for one exchange only") {
    Client client(idp.issuer, "llmbox", {}, {"example.com"});
    auto start = client.oidc->BeginLogin("/auth/e2e-token", "192.0.2.7");
    REQUIRE(start.ok());
    const std::string callback =
        SignInAtProvider(dir.path(), start->authorize_url, "alice@example.com");
    const std::string code = QueryParam(callback, "code");
    REQUIRE(client.oidc->CompleteLogin(start->state, code).ok());
    // A second login whose callback carries the first, spent code.
    auto again = client.oidc->BeginLogin("/auth/e2e-token", "192.0.2.7");
    REQUIRE(again.ok());
    auto replay = client.oidc->CompleteLogin(again->state, code);
    REQUIRE_FALSE(replay.ok());
    CHECK_THAT(std::string(replay.status().message()),
               Catch::Contains("the token endpoint refused the code"));
    CHECK(std::string(replay.status().message()).find(code) == std::string::npos);
  }
}

TEST_CASE("forged ID tokens from the real provider's token endpoint are refused", "[oidc]") {
  // The provider answers these accounts' code exchanges with a forged ID token built from
  // the real one's claims (oidc_provider.mjs, FORGERIES): discovery, JWKS, PKCE, state and
  // nonce are all real, only the token is not.
  ScratchDir dir("oidc-e2e");
  Provider idp(dir.path(), "client_secret_basic");
  Client client(idp.issuer, "llmbox", {}, {"example.com"});
  const std::vector<std::pair<std::string, std::string>> forgeries = {
      {"alg-none", "algorithm \"none\""},
      {"hs256-pubkey", "algorithm \"HS256\""},
      {"wrong-kid", "no signing key with kid \"rs-2\""},
      {"wrong-aud", "audience [\"another-client\"] does not include client id \"llmbox\""},
      {"expired", "id token: expired"},
  };
  for (const auto& [kind, reason] : forgeries) {
    INFO("forgery " << kind);
    auto signed_in = client.SignIn(dir.path(), "forge-" + kind + "@example.com");
    REQUIRE_FALSE(signed_in.ok());
    CHECK(signed_in.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(signed_in.status().message()), Catch::Contains(reason));
  }
  // The same provider and client still sign a real token in: the refusals were the tokens'.
  auto alice = client.SignIn(dir.path(), "alice@example.com");
  INFO(alice.status().message());
  REQUIRE(alice.ok());
  CHECK(alice->email == "alice@example.com");
}

TEST_CASE("sign-in works with a provider that takes client_secret_post only", "[oidc]") {
  ScratchDir dir("oidc-e2e");
  Provider idp(dir.path(), "client_secret_post");
  Client client(idp.issuer, "llmbox", {}, {"example.com"});
  auto bob = client.SignIn(dir.path(), "bob@example.com");
  INFO(bob.status().message());
  REQUIRE(bob.ok());
  CHECK(bob->email == "bob@example.com");
}

}  // namespace
}  // namespace llmbox::testing
