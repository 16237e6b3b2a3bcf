// POST /token and POST /revoke as HTTP: form decoding (duplicates, size), client
// authentication (public, client_secret_post, client_secret_basic), RFC 6749 errors, no-store.
#include <cctype>
#include <cstdio>
#include <string>

#include "absl/strings/escaping.h"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/oauth/form.h"
#include "hub/oauth/token_endpoint.h"
#include "tests/fakes/no_cimd_fetcher.h"
#include "tests/support/oauth_tokens_fixture.h"

namespace llmbox::hub::oauth {
namespace {

using llmbox::testing::IssuedCode;
using llmbox::testing::kRedirect;

constexpr char kSecret[] = "s3cret+/=&%";

std::string Encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof buffer, "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

struct Fixture : llmbox::testing::OAuthTokensFixture {
  Fixture() {
    options.clients = {
        {.client_id = "public-cli", .name = "CLI", .redirect_uris = {kRedirect}},
        {.client_id = "conf:app",
         .client_secret = kSecret,
         .name = "Server app",
         .redirect_uris = {kRedirect}},
    };
    registry = std::make_unique<ClientRegistry>(*store, fetcher, clock, options);
    auto found = registry->Find("public-cli");
    REQUIRE(found.ok());
    cli = *found;
    found = registry->Find("conf:app");
    REQUIRE(found.ok());
    conf = *found;
    AddKey("alice");
  }

  http::Request Post(std::string body) const {
    http::Request request;
    request.method = "POST";
    request.path = request.target = "/token";
    request.headers = {{"content-type", "application/x-www-form-urlencoded"}};
    request.body = std::move(body);
    return request;
  }

  std::string CodeForm(const Client& who, const IssuedCode& issued) const {
    return "grant_type=authorization_code&code=" + issued.code +
           "&redirect_uri=" + Encode(kRedirect) + "&code_verifier=" + issued.verifier +
           "&client_id=" + Encode(who.client_id);
  }

  testing::NoCimdFetcher fetcher;
  std::unique_ptr<ClientRegistry> registry;
  Client cli;
  Client conf;
};

nlohmann::json BodyOf(const http::Response& response) {
  auto json = nlohmann::json::parse(response.body, nullptr, false);
  REQUIRE(json.is_object());
  return json;
}

std::string HeaderOf(const http::Response& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

std::string ErrorOf(const http::Response& response, int status) {
  CHECK(response.status == status);
  CHECK(HeaderOf(response, "Cache-Control") == "no-store");
  return BodyOf(response).value("error", "");
}

TEST_CASE("a public client's code exchange by form gives a no-store JSON token response",
          "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  http::Response response = HandleTokenRequest(
      f.Post(f.CodeForm(f.cli, issued) + "&resource=" + Encode("https://hub.example.com")),
      *f.registry, *f.tokens);
  REQUIRE(response.status == 200);
  CHECK(HeaderOf(response, "Content-Type") == "application/json");
  CHECK(HeaderOf(response, "Cache-Control") == "no-store");
  CHECK(HeaderOf(response, "Pragma") == "no-cache");
  nlohmann::json body = BodyOf(response);
  CHECK(body["token_type"] == "Bearer");
  CHECK(body["expires_in"].is_number_integer());
  CHECK(body["scope"] == "llmbox");
  const std::string access = body["access_token"];
  CHECK(f.tokens->Authenticate(access).ok());

  // And the refresh grant, by form.
  http::Response refreshed =
      HandleTokenRequest(f.Post("grant_type=refresh_token&client_id=public-cli&refresh_token=" +
                                body["refresh_token"].get<std::string>()),
                         *f.registry, *f.tokens);
  REQUIRE(refreshed.status == 200);
  CHECK(BodyOf(refreshed)["refresh_token"] != body["refresh_token"]);
}

TEST_CASE("a confidential client authenticates by Basic (form-encoded parts) or by the form",
          "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.conf, auth::Principal::ApiKey("alice", false));
  const std::string form = "grant_type=authorization_code&code=" + issued.code +
                           "&redirect_uri=" + Encode(kRedirect) +
                           "&code_verifier=" + issued.verifier;
  http::Request request = f.Post(form);
  SECTION("client_secret_basic") {
    request.headers.emplace_back(
        "authorization", "Basic " + absl::Base64Escape(Encode("conf:app") + ":" + Encode(kSecret)));
    CHECK(HandleTokenRequest(request, *f.registry, *f.tokens).status == 200);
  }
  SECTION("client_secret_post") {
    request.body += "&client_id=" + Encode("conf:app") + "&client_secret=" + Encode(kSecret);
    CHECK(HandleTokenRequest(request, *f.registry, *f.tokens).status == 200);
  }
  SECTION("a wrong secret is 401 invalid_client, and the secret is not echoed") {
    request.headers.emplace_back(
        "authorization", "Basic " + absl::Base64Escape(Encode("conf:app") + ":wrong-secret"));
    http::Response response = HandleTokenRequest(request, *f.registry, *f.tokens);
    CHECK(ErrorOf(response, 401) == "invalid_client");
    CHECK(HeaderOf(response, "WWW-Authenticate").starts_with("Basic"));
    CHECK(response.body.find("wrong-secret") == std::string::npos);
    // The code is not spent by a client that failed to authenticate.
    request.headers.pop_back();
    request.body += "&client_id=" + Encode("conf:app") + "&client_secret=" + Encode(kSecret);
    CHECK(HandleTokenRequest(request, *f.registry, *f.tokens).status == 200);
  }
  SECTION("no secret at all is invalid_client") {
    request.body += "&client_id=" + Encode("conf:app");
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 401) == "invalid_client");
  }
  SECTION("two methods at once is invalid_request") {
    request.headers.emplace_back(
        "authorization", "Basic " + absl::Base64Escape(Encode("conf:app") + ":" + Encode(kSecret)));
    request.body += "&client_secret=" + Encode(kSecret);
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 400) == "invalid_request");
  }
  SECTION("a Basic client other than the form's client_id is invalid_request") {
    request.headers.emplace_back(
        "authorization", "Basic " + absl::Base64Escape(Encode("conf:app") + ":" + Encode(kSecret)));
    request.body += "&client_id=public-cli";
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 400) == "invalid_request");
  }
  SECTION("Basic that is not base64, or has no colon, is invalid_client") {
    request.headers.emplace_back("authorization", "Basic !!!not-base64!!!");
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 401) == "invalid_client");
    request.headers.back().second = "Basic " + absl::Base64Escape("no-colon");
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 401) == "invalid_client");
    request.headers.back().second = "Bearer lbat_x";
    CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 401) == "invalid_client");
  }
}

TEST_CASE("a public client sending a secret, or an unknown client, is invalid_client",
          "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  CHECK(ErrorOf(HandleTokenRequest(f.Post(f.CodeForm(f.cli, issued) + "&client_secret=x"),
                                   *f.registry, *f.tokens),
                401) == "invalid_client");
  std::string form = f.CodeForm(f.cli, issued);
  form.replace(form.find("client_id=public-cli"), 20, "client_id=nobody");
  CHECK(ErrorOf(HandleTokenRequest(f.Post(form), *f.registry, *f.tokens), 401) == "invalid_client");
  CHECK(f.fetcher.calls == 0);
}

TEST_CASE("a parameter sent twice is invalid_request and issues nothing", "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  IssuedCode other = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  SECTION("code twice") {
    http::Response response = HandleTokenRequest(
        f.Post(f.CodeForm(f.cli, issued) + "&code=" + other.code), *f.registry, *f.tokens);
    CHECK(ErrorOf(response, 400) == "invalid_request");
    CHECK(BodyOf(response)["error_description"] == "the parameter code was sent twice");
    CHECK(response.body.find(other.code) == std::string::npos);
  }
  SECTION("client_id twice, once empty") {
    CHECK(ErrorOf(HandleTokenRequest(f.Post("client_id=&" + f.CodeForm(f.cli, issued)), *f.registry,
                                     *f.tokens),
                  400) == "invalid_request");
  }
  SECTION("a name the hub does not know, twice, is not echoed") {
    const std::string odd = "lbat_" + std::string(43, 'Z');
    http::Response response = HandleTokenRequest(
        f.Post(f.CodeForm(f.cli, issued) + "&" + odd + "=1&" + odd + "=2"), *f.registry, *f.tokens);
    CHECK(ErrorOf(response, 400) == "invalid_request");
    CHECK(response.body.find(odd) == std::string::npos);
  }
  // The code was never tried: it still works.
  CHECK(HandleTokenRequest(f.Post(f.CodeForm(f.cli, issued)), *f.registry, *f.tokens).status ==
        200);
}

TEST_CASE("oversized forms and forms of too many fields are refused", "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  std::string big = f.CodeForm(f.cli, issued) + "&pad=" + std::string(kMaxFormBytes, 'a');
  CHECK(ErrorOf(HandleTokenRequest(f.Post(big), *f.registry, *f.tokens), 400) == "invalid_request");
  std::string many = f.CodeForm(f.cli, issued);
  for (int i = 0; i < 40; ++i) many += "&x" + std::to_string(i) + "=1";
  CHECK(ErrorOf(HandleTokenRequest(f.Post(many), *f.registry, *f.tokens), 400) ==
        "invalid_request");
  CHECK(Form::Parse(std::string(kMaxFormBytes, '&')).ok());  // empty pairs count for nothing
}

TEST_CASE("only POST of a form: 405 with Allow, 415 for JSON", "[oauth][tokens]") {
  Fixture f;
  http::Request request = f.Post("grant_type=refresh_token");
  request.method = "GET";
  http::Response get = HandleTokenRequest(request, *f.registry, *f.tokens);
  CHECK(ErrorOf(get, 405) == "invalid_request");
  CHECK(HeaderOf(get, "Allow") == "POST");
  request = f.Post(R"({"grant_type":"refresh_token"})");
  request.headers = {{"content-type", "application/json"}};
  CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 415) == "invalid_request");
  CHECK(ErrorOf(HandleRevokeRequest(request, *f.registry, *f.tokens), 415) == "invalid_request");
  request.headers = {{"content-type", "Application/X-WWW-Form-Urlencoded; charset=UTF-8"}};
  CHECK(ErrorOf(HandleTokenRequest(request, *f.registry, *f.tokens), 400) ==
        "invalid_request");  // now parsed: no grant_type in it
}

TEST_CASE("grant types and missing parameters get RFC 6749 errors", "[oauth][tokens]") {
  Fixture f;
  CHECK(ErrorOf(HandleTokenRequest(f.Post("client_id=public-cli"), *f.registry, *f.tokens), 400) ==
        "invalid_request");
  CHECK(ErrorOf(HandleTokenRequest(f.Post("grant_type=password&client_id=public-cli&username=a"),
                                   *f.registry, *f.tokens),
                400) == "unsupported_grant_type");
  CHECK(ErrorOf(HandleTokenRequest(f.Post("grant_type=client_credentials&client_id=public-cli"),
                                   *f.registry, *f.tokens),
                400) == "unsupported_grant_type");
  CHECK(ErrorOf(HandleTokenRequest(f.Post("grant_type=authorization_code&client_id=public-cli"),
                                   *f.registry, *f.tokens),
                400) == "invalid_request");
  CHECK(ErrorOf(HandleTokenRequest(f.Post("grant_type=refresh_token&client_id=public-cli"),
                                   *f.registry, *f.tokens),
                400) == "invalid_request");
  CHECK(ErrorOf(HandleTokenRequest(
                    f.Post("grant_type=refresh_token&client_id=public-cli&refresh_token=lbrt_x"),
                    *f.registry, *f.tokens),
                400) == "invalid_grant");
}

TEST_CASE("a code without its verifier over HTTP is refused and its text is not echoed",
          "[oauth][tokens]") {
  Fixture f;
  IssuedCode issued = f.Consent(f.cli, auth::Principal::ApiKey("alice", false));
  std::string form = f.CodeForm(f.cli, issued);
  form.erase(form.find("&code_verifier="), 15 + issued.verifier.size());
  http::Response response = HandleTokenRequest(f.Post(form), *f.registry, *f.tokens);
  CHECK(ErrorOf(response, 400) == "invalid_request");
  CHECK(response.body.find(issued.code) == std::string::npos);
}

TEST_CASE("revocation answers 200 for unknown and foreign tokens and ends the client's own",
          "[oauth][tokens]") {
  Fixture f;
  auto mine = f.Tokens(f.cli, auth::Principal::ApiKey("alice", false));
  http::Request request = f.Post("token=lbat_unknown&client_id=public-cli");
  CHECK(HandleRevokeRequest(request, *f.registry, *f.tokens).status == 200);

  // The confidential client revokes the public client's token: 200, and nothing happens.
  request = f.Post("token=" + mine.access_token + "&token_type_hint=access_token");
  request.headers.emplace_back(
      "authorization", "Basic " + absl::Base64Escape(Encode("conf:app") + ":" + Encode(kSecret)));
  CHECK(HandleRevokeRequest(request, *f.registry, *f.tokens).status == 200);
  CHECK(f.tokens->Authenticate(mine.access_token).ok());

  request =
      f.Post("token=" + mine.refresh_token + "&token_type_hint=refresh_token&client_id=public-cli");
  http::Response response = HandleRevokeRequest(request, *f.registry, *f.tokens);
  CHECK(response.status == 200);
  CHECK(HeaderOf(response, "Cache-Control") == "no-store");
  CHECK_FALSE(f.tokens->Authenticate(mine.access_token).ok());

  CHECK(ErrorOf(HandleRevokeRequest(f.Post("client_id=public-cli"), *f.registry, *f.tokens), 400) ==
        "invalid_request");
  CHECK(ErrorOf(HandleRevokeRequest(f.Post("token=lbat_x"), *f.registry, *f.tokens), 400) ==
        "invalid_request");
  CHECK(
      ErrorOf(HandleRevokeRequest(f.Post("token=lbat_x&client_id=nobody"), *f.registry, *f.tokens),
              401) == "invalid_client");
}

TEST_CASE("the token endpoint counts metadata document lookups against the caller's address",
          "[oauth][tokens][fix-clients]") {
  Fixture f;
  f.options.cimd_fetches_per_address = 1;
  f.registry = std::make_unique<ClientRegistry>(*f.store, f.fetcher, f.clock, f.options);
  auto from = [&](const std::string& client_id, const std::string& address) {
    http::Request request =
        f.Post("grant_type=refresh_token&refresh_token=x&client_id=" + Encode(client_id));
    request.remote_address = address;
    return HandleTokenRequest(request, *f.registry, *f.tokens);
  };
  CHECK(ErrorOf(from("https://app.example/a.json", "192.0.2.1"), 401) == "invalid_client");
  CHECK(ErrorOf(from("https://app.example/b.json", "192.0.2.1"), 503) == "temporarily_unavailable");
  CHECK(ErrorOf(from("https://app.example/b.json", "192.0.2.2"), 401) == "invalid_client");
  CHECK(f.fetcher.calls == 2);
}

}  // namespace
}  // namespace llmbox::hub::oauth
