#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "hub/oauth/errors.h"
#include "hub/oauth/redirect_uri.h"

namespace llmbox::hub::oauth {
namespace {

std::string Message(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

TEST_CASE("a redirect URI parses into lowercase scheme and host, port and path",
          "[oauth][clients]") {
  absl::StatusOr<UriParts> parts = ParseRedirectUri("HTTPS://Claude.AI:8443/api/cb?x=1");
  REQUIRE(parts.ok());
  CHECK(parts->scheme == "https");
  CHECK(parts->host == "claude.ai");
  CHECK(parts->port == 8443);
  CHECK(parts->path_and_query == "/api/cb?x=1");

  absl::StatusOr<UriParts> v6 = ParseRedirectUri("http://[::1]:33418/callback");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 33418);

  absl::StatusOr<UriParts> bare = ParseRedirectUri("https://app.example");
  REQUIRE(bare.ok());
  CHECK(bare->path_and_query.empty());
  CHECK_FALSE(bare->port.has_value());
}

TEST_CASE("redirect URIs with userinfo, a fragment, odd bytes or another scheme are refused",
          "[oauth][clients]") {
  const std::vector<std::string> bad = {
      "",
      "http://127.0.0.1@evil.example/",
      "http://user:pass@127.0.0.1/cb",
      "https://claude.ai/api/mcp/auth_callback#frag",
      "https://claude.ai/api/mcp/auth_callback#",
      "https://claude.ai/api mcp",
      "https://claude.ai/\r\nSet-Cookie: x",
      "https://claude.ai/\xc3\xa9",
      "javascript:alert(1)",
      "ftp://claude.ai/cb",
      "//claude.ai/cb",
      "https:///cb",
      "https://claude.ai:0/cb",
      "https://claude.ai:70000/cb",
      "https://claude.ai:/cb",
      "https://claude.ai:443x/cb",
      "https://[::1/cb",
      "https://[zz::1]/cb",
      "https://cla%75de.ai/cb",
      "https://claude.ai/" + std::string(2048, 'a'),
  };
  for (const std::string& uri : bad) {
    INFO(uri);
    CHECK_FALSE(ParseRedirectUri(uri).ok());
  }
}

TEST_CASE("loopback hosts are 127/8, ::1 and localhost, nothing that merely starts like them",
          "[oauth][clients]") {
  CHECK(IsLoopbackRedirectHost("127.0.0.1"));
  CHECK(IsLoopbackRedirectHost("127.9.8.7"));
  CHECK(IsLoopbackRedirectHost("::1"));
  CHECK(IsLoopbackRedirectHost("localhost"));
  CHECK_FALSE(IsLoopbackRedirectHost("127.0.0.1.evil.example"));
  CHECK_FALSE(IsLoopbackRedirectHost("localhost.evil.example"));
  CHECK_FALSE(IsLoopbackRedirectHost("::ffff:127.0.0.1"));
  CHECK_FALSE(IsLoopbackRedirectHost("128.0.0.1"));
  CHECK_FALSE(IsLoopbackRedirectHost("0x7f.1"));
}

TEST_CASE("the operator's allow-list admits claude.ai's callback exactly and nothing near it",
          "[oauth][clients]") {
  const OAuthOptions options;
  CHECK(CheckRedirectUriAllowed("https://claude.ai/api/mcp/auth_callback", options).ok());
  CHECK(CheckRedirectUriAllowed("https://claude.com/api/mcp/auth_callback", options).ok());
  for (const char* uri :
       {"https://claude.ai/api/mcp/auth_callback/", "https://claude.ai/api/mcp/auth_callbacK",
        "https://claude.ai/api/mcp/auth_callback?next=https://evil.example",
        "http://claude.ai/api/mcp/auth_callback",
        "https://claude.ai.evil.example/api/mcp/auth_callback",
        "https://evil.example/api/mcp/auth_callback"}) {
    INFO(uri);
    absl::Status status = CheckRedirectUriAllowed(uri, options);
    CHECK(OAuthErrorCode(status) == kInvalidRedirectUri);
  }
  absl::Status evil = CheckRedirectUriAllowed("https://evil.example/cb", options);
  CHECK_THAT(Message(evil), Catch::Contains("https://evil.example") &&
                                Catch::Contains("auth.oauth.allowed_redirect_uris"));
}

TEST_CASE("an allow-list entry without a path admits any path on exactly that origin",
          "[oauth][clients]") {
  OAuthOptions options;
  options.allowed_redirect_uris = {"https://app.example"};
  CHECK(CheckRedirectUriAllowed("https://app.example/any/path?q=1", options).ok());
  CHECK(CheckRedirectUriAllowed("https://APP.example:443/cb", options).ok());
  CHECK(CheckRedirectUriAllowed("https://app.example", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("https://app.example:8443/cb", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("http://app.example/cb", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("https://sub.app.example/cb", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("https://app.example.evil/cb", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("https://x@app.example/cb", options).ok());
}

TEST_CASE("loopback http redirects are allowed at any port only while the operator allows them",
          "[oauth][clients]") {
  OAuthOptions options;
  CHECK(CheckRedirectUriAllowed("http://127.0.0.1:33418/callback", options).ok());
  CHECK(CheckRedirectUriAllowed("http://localhost:5173/callback", options).ok());
  CHECK(CheckRedirectUriAllowed("http://[::1]/callback", options).ok());
  // https on loopback is no native-app redirect: it needs the allow-list like any other.
  CHECK_FALSE(CheckRedirectUriAllowed("https://127.0.0.1:33418/callback", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("http://127.0.0.1@evil.example/", options).ok());
  CHECK_FALSE(CheckRedirectUriAllowed("http://127.0.0.1:33418/callback#x", options).ok());

  options.allow_loopback_redirects = false;
  absl::Status off = CheckRedirectUriAllowed("http://127.0.0.1:33418/callback", options);
  CHECK(OAuthErrorCode(off) == kInvalidRedirectUri);
  CHECK_THAT(Message(off), Catch::Contains("allow_loopback_redirects"));
}

TEST_CASE("a presented redirect URI matches byte for byte, or a loopback one at another port",
          "[oauth][clients]") {
  CHECK(RedirectUriMatches("https://claude.ai/api/mcp/auth_callback",
                           "https://claude.ai/api/mcp/auth_callback"));
  CHECK_FALSE(RedirectUriMatches("https://claude.ai/api/mcp/auth_callback",
                                 "https://claude.ai/api/mcp/auth_callback/"));
  CHECK_FALSE(RedirectUriMatches("https://claude.ai/api/mcp/auth_callback",
                                 "https://CLAUDE.ai/api/mcp/auth_callback"));
  CHECK_FALSE(RedirectUriMatches("https://app.example:8443/cb", "https://app.example:9443/cb"));

  CHECK(RedirectUriMatches("http://127.0.0.1/callback", "http://127.0.0.1:51000/callback"));
  CHECK(RedirectUriMatches("http://localhost:3000/callback", "http://localhost:4000/callback"));
  CHECK(RedirectUriMatches("http://[::1]:1/cb", "http://[::1]:2/cb"));
  CHECK_FALSE(RedirectUriMatches("http://127.0.0.1/callback", "http://127.0.0.1:51000/other"));
  CHECK_FALSE(RedirectUriMatches("http://127.0.0.1/callback", "http://localhost:51000/callback"));
  CHECK_FALSE(RedirectUriMatches("http://127.0.0.1/callback", "http://127.0.0.1/callback?x=1"));
  CHECK_FALSE(RedirectUriMatches("http://127.0.0.1/callback", "http://127.0.0.1/callback#x"));
  CHECK_FALSE(
      RedirectUriMatches("http://127.0.0.1/callback", "http://127.0.0.1@evil.example/callback"));
  CHECK_FALSE(RedirectUriMatches("https://127.0.0.1:1/cb", "https://127.0.0.1:2/cb"));
}

TEST_CASE("MatchRedirectUri returns the registered URI the presented one matches",
          "[oauth][clients]") {
  const std::vector<std::string> registered = {"https://claude.ai/api/mcp/auth_callback",
                                               "http://127.0.0.1/callback"};
  CHECK(MatchRedirectUri(registered, "http://127.0.0.1:4444/callback") ==
        "http://127.0.0.1/callback");
  CHECK(MatchRedirectUri(registered, "https://claude.ai/api/mcp/auth_callback") ==
        "https://claude.ai/api/mcp/auth_callback");
  CHECK_FALSE(MatchRedirectUri(registered, "https://evil.example/").has_value());
  CHECK_FALSE(MatchRedirectUri({}, "http://127.0.0.1/callback").has_value());
}

}  // namespace
}  // namespace llmbox::hub::oauth
