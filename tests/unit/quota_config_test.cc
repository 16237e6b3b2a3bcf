// hub.quotas in the hub's config: the defaults, what the keys set (each limit remembering the
// key path that set it, for refusals), overrides per principal, and errors naming the key path
// and line.
#include <string>

#include <catch2/catch.hpp>

#include "hub/config/hub_config.h"

namespace llmbox::hub::config {
namespace {

[[nodiscard]] absl::StatusOr<HubConfig> Parse(const std::string& yaml) {
  return ParseHubConfig(yaml, "hub.yaml", "/etc/llmbox");
}

std::string ErrorOf(const std::string& yaml) {
  auto parsed = Parse(yaml);
  REQUIRE_FALSE(parsed.ok());
  return std::string(parsed.status().message());
}

TEST_CASE("without hub.quotas every principal gets the default limits and admins none",
          "[hub-config][quota]") {
  auto config = Parse("{}");
  REQUIRE(config.ok());
  const QuotaConfig& q = config->quotas;
  CHECK(q.defaults.boxes_alive.value == 10);
  CHECK(q.defaults.boxes_alive.key == "hub.quotas.boxes_alive");
  CHECK(q.defaults.creates_per_hour.value == 30);
  CHECK(q.defaults.creates_per_hour.key == "hub.quotas.creates_per_hour");
  CHECK(q.defaults.concurrent_execs.value == 4);
  CHECK(q.defaults.concurrent_execs.key == "hub.quotas.concurrent_execs");
  CHECK(q.defaults.exec_seconds_per_hour.value == 7200);
  CHECK(q.defaults.exec_seconds_per_hour.key == "hub.quotas.exec_seconds_per_hour");
  CHECK(q.admins_exempt);
  CHECK(q.overrides.empty());
}

TEST_CASE("hub.quotas sets the defaults, and an override keeps the defaults it does not set",
          "[hub-config][quota]") {
  auto config = Parse(
      "hub:\n"
      "  quotas:\n"
      "    boxes_alive: 1\n"
      "    creates_per_hour: 5\n"
      "    concurrent_execs: 2\n"
      "    exec_seconds_per_hour: 600\n"
      "    admins_exempt: false\n"
      "    overrides:\n"
      "      - principal: key:ci\n"
      "        boxes_alive: 50\n"
      "      - principal: anonymous\n"
      "        concurrent_execs: 0\n");
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  const QuotaConfig& q = config->quotas;
  CHECK(q.defaults.boxes_alive.value == 1);
  CHECK(q.defaults.creates_per_hour.value == 5);
  CHECK(q.defaults.concurrent_execs.value == 2);
  CHECK(q.defaults.exec_seconds_per_hour.value == 600);
  CHECK_FALSE(q.admins_exempt);
  REQUIRE(q.overrides.size() == 2);
  CHECK(q.overrides[0].principal == "key:ci");
  CHECK(q.overrides[0].limits.boxes_alive.value == 50);
  CHECK(q.overrides[0].limits.boxes_alive.key == "hub.quotas.overrides[0].boxes_alive");
  CHECK(q.overrides[0].limits.creates_per_hour.value == 5);
  CHECK(q.overrides[0].limits.creates_per_hour.key == "hub.quotas.creates_per_hour");
  CHECK(q.overrides[1].principal == "anonymous");
  CHECK(q.overrides[1].limits.concurrent_execs.value == 0);
  CHECK(q.overrides[1].limits.concurrent_execs.key == "hub.quotas.overrides[1].concurrent_execs");
}

TEST_CASE("bad quota values are refused naming the key path and line", "[hub-config][quota]") {
  CHECK(ErrorOf("hub:\n  quotas:\n    boxes_alive: -1\n") ==
        "config: hub.quotas.boxes_alive (line 3): must be 0..10000, got -1");
  CHECK(ErrorOf("hub:\n  quotas:\n    creates_per_hour: many\n") ==
        "config: hub.quotas.creates_per_hour (line 3): must be an integer, got \"many\"");
  CHECK(ErrorOf("hub:\n  quotas:\n    concurrent_execs: 2000\n") ==
        "config: hub.quotas.concurrent_execs (line 3): must be 0..1024, got 2000");
  CHECK(ErrorOf("hub:\n  quotas:\n    exec_seconds_per_hour: 3600001\n") ==
        "config: hub.quotas.exec_seconds_per_hour (line 3): must be 0..3600000, got 3600001");
  CHECK_THAT(ErrorOf("hub:\n  quotas:\n    boxes_alvie: 3\n"),
             Catch::Matchers::StartsWith("config: hub.quotas.boxes_alvie (line 3): unknown key"));
  CHECK(ErrorOf("hub:\n  quotas:\n    overrides:\n      - principal: alice\n") ==
        "config: hub.quotas.overrides[0].principal (line 4): must be a principal id: "
        "key:<API key name> (key:alice), anonymous, or oidc:<issuer>#<subject>; got \"alice\"");
  CHECK(ErrorOf("hub:\n  quotas:\n    overrides:\n      - principal: key:ci\n"
                "      - principal: key:ci\n") ==
        "config: hub.quotas.overrides[1].principal (line 5): \"key:ci\" has an override already");
  CHECK_THAT(ErrorOf("hub:\n  quotas:\n    overrides:\n      - boxes_alive: 3\n"),
             Catch::Matchers::StartsWith("config: hub.quotas.overrides[0].principal"));
  CHECK(ErrorOf("hub:\n  quotas:\n    overrides:\n      - principal: key:ci\n"
                "        boxes_alive: 10001\n") ==
        "config: hub.quotas.overrides[0].boxes_alive (line 5): must be 0..10000, got 10001");
}

TEST_CASE("principal ids in overrides have the shapes principals have", "[quota]") {
  CHECK(IsPrincipalId("anonymous"));
  CHECK(IsPrincipalId("key:alice"));
  CHECK(IsPrincipalId("key:ci-runner_2.x"));
  CHECK(IsPrincipalId("oidc:https://accounts.example.com#12345"));
  CHECK_FALSE(IsPrincipalId("alice"));
  CHECK_FALSE(IsPrincipalId("key:"));
  CHECK_FALSE(IsPrincipalId("key:Alice"));
  CHECK_FALSE(IsPrincipalId("key:-alice"));
  CHECK_FALSE(IsPrincipalId("oidc:no-subject"));
}

}  // namespace
}  // namespace llmbox::hub::config
