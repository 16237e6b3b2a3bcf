#include "common/metrics_server.h"

#include <poll.h>
#include <unistd.h>

#include <string>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

namespace llmbox::testing {
namespace {

// Sends `request` to 127.0.0.1:port and reads until the server closes (10 s at most).
std::string Exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string reply;
  char buffer[4096];
  for (;;) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    REQUIRE(::poll(&p, 1, 10'000) == 1);
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST_CASE("the metrics listener answers GET /metrics with the rendered text and closes",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  const std::string reply =
      Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  CHECK(reply.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(reply.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
        std::string::npos);
  CHECK(reply.find("Content-Length: 4\r\n") != std::string::npos);
  CHECK(reply.ends_with("\r\n\r\na 1\n"));
}

TEST_CASE("the metrics listener answers other paths with 404 and other methods with 405",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  const int port = (*server)->port();
  CHECK(Exchange(port, "GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
  CHECK(Exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .starts_with("HTTP/1.1 405 "));
  CHECK(Exchange(port, "GET /metrics?x=1 HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

TEST_CASE("the metrics listener closes a request head larger than its bound unanswered",
          "[metrics]") {
  auto server = common::MetricsServer::Start("127.0.0.1:0", [] { return std::string("a 1\n"); });
  REQUIRE(server.ok());
  const std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(20 << 10, 'a');
  CHECK(Exchange((*server)->port(), huge).empty());
  // And it still serves the next scraper.
  CHECK(Exchange((*server)->port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
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
