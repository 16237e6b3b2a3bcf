#include "common/metrics_server.h"

#include <poll.h>
#include <unistd.h>

#include <string>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/support/oauth_http.h"

namespace llmbox::testing {
namespace {

std::string Url(const common::MetricsServer& server, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(server.port()) + path;
}

TEST_CASE("the metrics listener answers GET /metrics with the rendered text and closes",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  testing::PlainHttp http;
  const testing::HttpResult reply = http.Get(Url(**server, "/metrics"));
  CHECK(reply.status == 200);
  CHECK(reply.Header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(reply.Header("connection") == "close");
  CHECK(reply.body == "a 1\n");
}

TEST_CASE("the metrics listener answers other paths with 404 and other methods with 405",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  testing::PlainHttp http;
  CHECK(http.Get(Url(**server, "/healthz")).status == 404);
  CHECK(http.Post(Url(**server, "/metrics"), "", "text/plain").status == 405);
  CHECK(http.Get(Url(**server, "/metrics?x=1")).status == 200);
}

TEST_CASE("the metrics listener closes a request head larger than its bound unanswered",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  testing::PlainHttp http;
  const testing::HttpResult huge =
      http.Get(Url(**server, "/metrics"), {"X-Padding: " + std::string(20 << 10, 'a')});
  CHECK(huge.status == 0);
  CHECK(huge.body.empty());
  // And it still serves the next scraper.
  CHECK(testing::PlainHttp().Get(Url(**server, "/metrics")).status == 200);
}

TEST_CASE("a metrics listen address must be an IP or localhost with a port", "[metrics]") {
  CHECK(common::ParseListenAddress("127.0.0.1:9464").ok());
  CHECK(common::ParseListenAddress("[::1]:9464")->host == "::1");
  CHECK(common::ParseListenAddress("localhost:0")->port == 0);
  CHECK(common::ParseListenAddress("127.0.0.1").status().message().find("no port") !=
        std::string::npos);
  CHECK(common::ParseListenAddress("127.0.0.1:70000").status().message().find("0..65535") !=
        std::string::npos);
  CHECK(common::ParseListenAddress("example.com:9464").status().message().find("IP address") !=
        std::string::npos);
}

TEST_CASE("a metrics listener on a port in use fails naming the address", "[metrics]") {
  auto first = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string(); });
  REQUIRE(first.ok());
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = common::MetricsServer::Start(taken, [] { return std::string(); });
  REQUIRE(absl::IsUnavailable(second.status()));
  CHECK(second.status().message().find(taken) != std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
