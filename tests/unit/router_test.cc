// The hub's HTTP router: exact paths first, then prefixes in the order added, then the
// fallback; a plain 404 when nothing takes the request.
#include "hub/http/router.h"

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "tests/fakes/recording_responder.h"

namespace llmbox::hub::http {
namespace {

using testing::RecordingResponder;

// A handler that answers with its own name.
Handler Named(std::string name) {
  return [name](Request, std::shared_ptr<Responder> out) {
    out->Respond({.status = 200, .body = name});
  };
}

std::string RouteOf(const Router& router, const std::string& path) {
  auto out = std::make_shared<RecordingResponder>();
  router.Route({.method = "GET", .target = path, .path = path}, out);
  return std::to_string(out->status) + " " + out->body;
}

Router HubLikeRouter() {
  Router router;
  router.Exact("/healthz", Named("health"));
  router.Exact("/readyz", Named("ready"));
  router.Prefix("/auth/", Named("page"));
  router.Prefix("/assets/", Named("page"));
  router.Fallback(Named("mcp"));
  return router;
}

TEST_CASE("an exact path goes to its handler and nowhere else", "[router]") {
  const Router router = HubLikeRouter();
  CHECK(RouteOf(router, "/healthz") == "200 health");
  CHECK(RouteOf(router, "/readyz") == "200 ready");
  CHECK(RouteOf(router, "/healthz/") == "200 mcp");
  CHECK(RouteOf(router, "/healthzz") == "200 mcp");
  CHECK(RouteOf(router, "/HEALTHZ") == "200 mcp");
}

TEST_CASE("a path under a prefix goes to the prefix's handler", "[router]") {
  const Router router = HubLikeRouter();
  CHECK(RouteOf(router, "/auth/abc") == "200 page");
  CHECK(RouteOf(router, "/auth/abc/status") == "200 page");
  CHECK(RouteOf(router, "/auth/oidc/callback") == "200 page");
  CHECK(RouteOf(router, "/assets/activation.css") == "200 page");
  CHECK(RouteOf(router, "/auth") == "200 mcp");
  CHECK(RouteOf(router, "/authx/abc") == "200 mcp");
}

TEST_CASE("everything else falls back, the MCP endpoint at / included", "[router]") {
  const Router router = HubLikeRouter();
  CHECK(RouteOf(router, "/") == "200 mcp");
  CHECK(RouteOf(router, "/mcp") == "200 mcp");
  CHECK(RouteOf(router, "") == "200 mcp");
}

TEST_CASE("exact paths win over prefixes, and earlier prefixes over later ones", "[router]") {
  Router router;
  router.Prefix("/a/", Named("a"));
  router.Prefix("/a/b/", Named("ab"));
  router.Exact("/a/exact", Named("exact"));
  CHECK(RouteOf(router, "/a/exact") == "200 exact");
  CHECK(RouteOf(router, "/a/b/c") == "200 a");
}

TEST_CASE("a second handler for the same exact path replaces the first", "[router]") {
  Router router;
  router.Exact("/x", Named("first"));
  router.Exact("/x", Named("second"));
  CHECK(RouteOf(router, "/x") == "200 second");
}

TEST_CASE("a request nothing takes gets a plain 404", "[router]") {
  Router router;
  router.Exact("/healthz", Named("health"));
  auto out = std::make_shared<RecordingResponder>();
  router.Route({.method = "GET", .target = "/nope", .path = "/nope"}, out);
  CHECK(out->status == 404);
  CHECK(out->body == "not found\n");
}

TEST_CASE("the router's handler passes the whole request on", "[router]") {
  Router router;
  Request seen;
  router.Fallback([&seen](Request request, std::shared_ptr<Responder> out) {
    seen = std::move(request);
    out->Respond({.status = 204});
  });
  const Handler handler = router.AsHandler();
  auto out = std::make_shared<RecordingResponder>();
  handler({.method = "POST",
           .target = "/?x=1",
           .path = "/",
           .query = "x=1",
           .headers = {{"authorization", "Bearer k"}},
           .body = "{}"},
          out);
  CHECK(out->status == 204);
  CHECK(seen.method == "POST");
  CHECK(seen.query == "x=1");
  CHECK(seen.body == "{}");
  CHECK(seen.Header("Authorization") == "Bearer k");
}

}  // namespace
}  // namespace llmbox::hub::http
