// The caller's identity: the anonymous principal, API keys and OAuth subjects, their ids
// (what a box's owner column holds) and roles.
#include "hub/auth/principal.h"

#include <catch2/catch.hpp>

namespace llmbox::hub::auth {
namespace {

TEST_CASE("the anonymous principal is one fixed principal without roles", "[principal]") {
  const Principal anonymous = Principal::Anonymous();
  CHECK(anonymous.kind() == PrincipalKind::kAnonymous);
  CHECK(anonymous.id() == "anonymous");
  CHECK(anonymous.id() == kAnonymousPrincipalId);
  CHECK(anonymous.display_name() == "anonymous");
  CHECK(anonymous.roles().empty());
  CHECK_FALSE(anonymous.IsAdmin());
  CHECK(anonymous == Principal::Anonymous());
}

TEST_CASE("an API key's principal is named for the key and is admin only when made so",
          "[principal]") {
  const Principal alice = Principal::ApiKey("alice", /*admin=*/false);
  CHECK(alice.kind() == PrincipalKind::kApiKey);
  CHECK(alice.id() == "key:alice");
  CHECK(alice.id() == ApiKeyPrincipalId("alice"));
  CHECK(alice.display_name() == "alice");
  CHECK_FALSE(alice.IsAdmin());
  CHECK(alice.verified_email().empty());

  const Principal root = Principal::ApiKey("root", /*admin=*/true);
  CHECK(root.IsAdmin());
  CHECK(root.HasRole(Role::kAdmin));
  CHECK(root.id() == "key:root");
  CHECK_FALSE(root == Principal::ApiKey("root", /*admin=*/false));
}

TEST_CASE("principals of different kinds never share an id, even with the same name",
          "[principal]") {
  // An API key may be called "anonymous"; it is still not the anonymous principal.
  const Principal key = Principal::ApiKey("anonymous", false);
  CHECK(key.id() != Principal::Anonymous().id());
  const Principal person =
      Principal::OAuthSubject("https://id.example.com", "alice", "Alice", "alice@example.com", {});
  CHECK(person.kind() == PrincipalKind::kOAuthSubject);
  CHECK(person.id() == "oidc:https://id.example.com#alice");
  CHECK(person.id() != Principal::ApiKey("alice", false).id());
  CHECK(person.display_name() == "Alice");
  CHECK(person.verified_email() == "alice@example.com");
  CHECK_FALSE(person.IsAdmin());
  CHECK(Principal::OAuthSubject("https://id.example.com", "root", "Root", "", {Role::kAdmin})
            .IsAdmin());
}

TEST_CASE("a principal acts on its own boxes only, an admin on every box", "[principal]") {
  const Principal alice = Principal::ApiKey("alice", false);
  CHECK(alice.MayActOn("key:alice"));
  CHECK_FALSE(alice.MayActOn("key:bob"));
  CHECK_FALSE(alice.MayActOn("anonymous"));
  CHECK_FALSE(alice.MayActOn(""));
  CHECK_FALSE(alice.MayActOn("alice"));  // a bare name is not an id
  const Principal admin = Principal::ApiKey("root", true);
  CHECK(admin.MayActOn("key:alice"));
  CHECK(admin.MayActOn("anonymous"));
  CHECK_FALSE(Principal::Anonymous().MayActOn("key:alice"));
  CHECK(Principal::Anonymous().MayActOn("anonymous"));
}

TEST_CASE("principal kinds have stable names", "[principal]") {
  CHECK(PrincipalKindName(PrincipalKind::kAnonymous) == "anonymous");
  CHECK(PrincipalKindName(PrincipalKind::kApiKey) == "api_key");
  CHECK(PrincipalKindName(PrincipalKind::kOAuthSubject) == "oauth_subject");
}

}  // namespace
}  // namespace llmbox::hub::auth
