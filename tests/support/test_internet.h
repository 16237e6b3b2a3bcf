// tests/support/test_internet.h
//
// "The internet" for egress tests, on this machine only: a network namespace the test makes,
// joined to the host by a veth pair, with addresses from the benchmark range 198.18.0.0/15
// (public as far as llmbox's policy is concerned, never routed anywhere real). Servers listen
// inside the namespace; each records what it was sent, answers an HTTP request with "hello",
// and counts connections. Everything is removed when the object goes.
//
//   auto internet = TestInternet::Create();                 // 198.18.<n>.1 host, .2 inside
//   REQUIRE(internet.ok());
//   TestServer& web = (*internet)->Serve(80);
//   ... a box connects to (*internet)->inside_address():80 through the proxy ...
//   CHECK(web.Connections() == 1);
//
// Needs root (ip netns, setns). Not thread-safe except the servers' counters.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace llmbox::testing {

// A TCP server on a socket it was given: accepts, reads what comes for a moment (up to 4 KiB,
// until a blank line or 1 s), records it, answers an HTTP 200 "hello" and closes.
class TestServer {
 public:
  explicit TestServer(int listen_fd);
  ~TestServer();
  int Connections() const { return connections_.load(); }
  // What each connection sent first, in order.
  std::vector<std::string> Received() const;

 private:
  void Loop();
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> received_;
  std::thread thread_;
};

class TestInternet {
 public:
  // A namespace and veth pair named after this process; /30 number `n` of 198.18/15 (0: one
  // picked from the pid).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TestInternet>> Create(int n = 0);
  ~TestInternet();
  std::string host_address() const { return host_; }      // the host's end
  std::string inside_address() const { return inside_; }  // where servers listen
  // A server inside the namespace on `port`.
  TestServer& Serve(int port);
  // A listening TCP socket inside the namespace on `port` (the caller's to accept on and
  // close), for servers of the caller's own.
  int ListenInside(int port);
  // A server on the host itself at address:port (a listener of the spoke's host).
  TestServer& ServeOnHost(const std::string& address, int port);

 private:
  TestInternet() = default;
  std::string name_, veth_, host_, inside_;
  std::vector<std::unique_ptr<TestServer>> servers_;
};

// bash for inside a box: a CONNECT to `target` ("name:port") through the box's proxy (its
// HTTPS_PROXY), and when the proxy answers 200, a GET through the tunnel. Prints
// "proxy: <status line>" and, when tunnelled, "server: <last line of the answer>".
std::string ConnectThroughProxyScript(const std::string& target);

}  // namespace llmbox::testing
