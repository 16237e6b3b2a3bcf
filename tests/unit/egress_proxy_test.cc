// The spoke's egress proxy over real loopback sockets: the box's listener on 127.0.0.2,
// upstream test servers on other 127.0.0.x addresses (reachable only where a test lifts their
// address with SpokePolicy::allow_ranges), names from the resolver's static hosts. Nothing
// leaves the machine: denied destinations are refused before any connection is made.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "spoke/egress/proxy.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/log_capture.h"

namespace llmbox::spoke::egress {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBoxIp = "127.0.0.2";
constexpr const char* kUpstreamIp = "127.0.0.3";

IpAddress Ip(std::string_view text) { return *ParseIp(text); }
Cidr Range(std::string_view text) { return *ParseCidr(text); }
Entry E(std::string_view text) { return *ParseEntry(text); }

// A client socket connected to ip:port that gives up reading after 10 s (a broken test fails
// instead of hanging); -1 when the connection is refused.
int Dial(const std::string& ip, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval tv{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Send(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Reads until `marker` has arrived (inclusive), EOF, an error or the read timeout.
std::string ReadUntil(int fd, std::string_view marker) {
  std::string data;
  char c;
  while (data.find(marker) == std::string::npos && recv(fd, &c, 1, 0) == 1) data += c;
  return data;
}

// Reads to EOF (or an error, or the timeout).
std::string ReadAll(int fd) {
  std::string data;
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return data;
    data.append(buffer, static_cast<size_t>(n));
  }
}

// A loopback server that runs `handler` for each connection, one after another, on its own
// thread. Counts the connections it accepted.
class Upstream {
 public:
  explicit Upstream(std::function<void(int)> handler, const char* ip = kUpstreamIp)
      : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &addr.sin_addr);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t length = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        ++accepted_;
        timeval tv{.tv_sec = 10, .tv_usec = 0};
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        handler_(client);
        close(client);
      }
    });
  }
  ~Upstream() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  std::function<void(int)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Echoes until EOF, then closes.
void Echo(int fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return;
    if (send(fd, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
  }
}

// The proxy with a box "b1" on 127.0.0.2; names come from `hosts`.
struct Rig {
  explicit Rig(SpokePolicy policy, BoxPolicy box,
               std::map<std::string, std::vector<IpAddress>> hosts = {},
               std::function<void(ProxyOptions&)> tune = {})
      : resolver(MakeSystemResolver(std::move(hosts))) {
    ProxyOptions options{.port = 0, .policy = std::move(policy), .resolver = resolver.get()};
    options.head_timeout = 5s;
    options.connect_timeout = 5s;
    options.idle_timeout = 10s;
    if (tune) tune(options);
    proxy = std::make_unique<EgressProxy>(std::move(options), clock);
    REQUIRE(proxy->AddBox("b1", kBoxIp, std::move(box)).ok());
  }

  int Dial() { return egress::Dial(kBoxIp, proxy->port()); }

  // Sends `head` on a new connection and returns the fd after reading the answer's head.
  std::pair<int, std::string> Ask(const std::string& head) {
    const int fd = Dial();
    REQUIRE(fd >= 0);
    Send(fd, head);
    return {fd, ReadUntil(fd, "\r\n\r\n")};
  }

  // A CONNECT's whole answer (head and body; the proxy closes after a refusal).
  std::string Refusal(const std::string& target) {
    auto [fd, head] = Ask("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n");
    const std::string answer = head + ReadAll(fd);
    close(fd);
    return answer;
  }

  testing::FakeClock clock;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<EgressProxy> proxy;
};

// Lifts exactly the upstream's address from the always-denied set.
SpokePolicy LiftUpstream() {
  SpokePolicy policy;
  policy.allow_ranges = {Range(kUpstreamIp)};
  return policy;
}

const std::map<std::string, std::vector<IpAddress>> kHosts = {
    {"echo.test", {Ip(kUpstreamIp)}},
    {"web.test", {Ip(kUpstreamIp)}},
    {"meta.test", {Ip(kUpstreamIp), Ip("169.254.169.254")}},
    {"other.test", {Ip("127.0.0.4")}},
    {"gone.test", {}},
};

std::string Connect(const std::string& name, int port) {
  const std::string target = name + ":" + std::to_string(port);
  return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
}

TEST_CASE("a CONNECT to an allowed name tunnels both ways and passes a half-close on",
          "[egress-proxy]") {
  Upstream upstream(Echo);
  testing::LogCapture logs;
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist, .allow = {E("echo.test")}}, kHosts);
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  CHECK(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  Send(fd, "hello through the proxy");
  CHECK(ReadUntil(fd, "proxy") == "hello through the proxy");
  // The client's FIN reaches the echo server, which closes; its FIN comes back.
  shutdown(fd, SHUT_WR);
  CHECK(ReadAll(fd).empty());
  close(fd);
  CHECK(rig.proxy->Refusals("b1").empty());
  CHECK(logs.Text().find("box b1 connected to echo.test:" + std::to_string(upstream.port()) +
                         " (allowlist: echo.test)") != std::string::npos);
}

TEST_CASE("a CONNECT to a name not on the allowlist is answered 403 naming the rule, recorded",
          "[egress-proxy]") {
  Upstream upstream(Echo);
  testing::LogCapture logs;
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist, .allow = {E("echo.test")}}, kHosts);
  const std::string answer = rig.Refusal("web.test:" + std::to_string(upstream.port()));
  CHECK(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  CHECK(answer.ends_with("\r\n\r\nllmbox egress: refused web.test:" +
                         std::to_string(upstream.port()) + ": not in the allowlist\n"));
  const auto refusals = rig.proxy->Refusals("b1");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].destination == "web.test");
  CHECK(refusals[0].port == upstream.port());
  CHECK(refusals[0].protocol == "tcp");
  CHECK(refusals[0].rule == "not in the allowlist");
  CHECK(refusals[0].time == rig.clock.Now());
  CHECK(upstream.accepted() == 0);
  CHECK(logs.Text().find("box b1 refused web.test:" + std::to_string(upstream.port()) +
                         ": not in the allowlist") != std::string::npos);
}

TEST_CASE(
    "an absolute-form GET reaches the upstream in origin form, without Proxy-* headers, "
    "with Connection: close",
    "[egress-proxy]") {
  std::mutex mu;
  std::string received;
  Upstream upstream([&](int fd) {
    std::string head = ReadUntil(fd, "\r\n\r\n");
    // The body, by its Content-Length (when there is one).
    if (const size_t at = head.find("Content-Length: "); at != std::string::npos) {
      const size_t length = std::stoul(head.substr(at + 16));
      std::string body;
      char c;
      while (body.size() < length && recv(fd, &c, 1, 0) == 1) body += c;
      head += body;
    }
    {
      std::lock_guard lock(mu);
      received = head;
    }
    Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  testing::LogCapture logs;
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist, .allow = {E("web.test")}}, kHosts);
  const std::string authority = "web.test:" + std::to_string(upstream.port());

  auto [fd, head] = rig.Ask("GET http://" + authority +
                            "/path/x?q=1 HTTP/1.1\r\n"
                            "Host: web.test:1\r\n"
                            "Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n"
                            "Proxy-Connection: keep-alive\r\n"
                            "Connection: keep-alive\r\n"
                            "User-Agent: test-agent\r\n"
                            "\r\n");
  CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(ReadAll(fd) == "ok");
  close(fd);
  {
    std::lock_guard lock(mu);
    CHECK(received == "GET /path/x?q=1 HTTP/1.1\r\nHost: " + authority +
                          "\r\nUser-Agent: test-agent\r\nConnection: close\r\n\r\n");
  }

  // A body passes through as it came, by its Content-Length (LF-only lines accepted).
  auto [post, post_head] =
      rig.Ask("POST http://" + authority + "/upload HTTP/1.1\nContent-Length: 5\n\nabcde");
  CHECK(post_head.starts_with("HTTP/1.1 200 OK\r\n"));
  close(post);
  {
    std::lock_guard lock(mu);
    CHECK(received == "POST /upload HTTP/1.1\r\nHost: " + authority +
                          "\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde");
  }
  const std::string text = logs.Text();
  CHECK(text.find("c2VjcmV0") == std::string::npos);
  CHECK(text.find("test-agent") == std::string::npos);
}

TEST_CASE("a name that resolves to the metadata address is refused before any connection",
          "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist, .allow = {E("meta.test"), E("echo.test")}},
          kHosts);
  const std::string answer = rig.Refusal("meta.test:" + std::to_string(upstream.port()));
  CHECK(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  const auto refusals = rig.proxy->Refusals("b1");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].destination == "meta.test");
  CHECK(refusals[0].rule == "always denied: link-local 169.254.0.0/16");
  // meta.test's first address is the (lifted) upstream: had the proxy tried it, the upstream,
  // which accepts in order, would count that connection before this one.
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  CHECK(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  Send(fd, "x");
  CHECK(ReadUntil(fd, "x") == "x");
  CHECK(upstream.accepted() == 1);
  close(fd);
}

TEST_CASE(
    "an IP literal is decided by address: refused in allowlist mode, reached in open mode "
    "only where lifted",
    "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist, .allow = {E("echo.test")}}, kHosts);
  const std::string port = std::to_string(upstream.port());
  CHECK(rig.Refusal(std::string(kUpstreamIp) + ":" + port)
            .ends_with(": IP address not in the allowlist\n"));
  // "127.1" is what getaddrinfo would read as 127.0.0.1: never a name.
  CHECK(rig.Refusal("127.1:" + port).ends_with(": invalid host name\n"));
  CHECK(rig.Refusal("0x7f.1:" + port).ends_with(": invalid host name\n"));

  REQUIRE(rig.proxy->SetPolicy("b1", {.mode = Mode::kOpen}).ok());
  auto [fd, head] = rig.Ask(Connect(kUpstreamIp, upstream.port()));
  CHECK(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  close(fd);
  CHECK(rig.Refusal("127.0.0.4:" + port).ends_with(": always denied: loopback 127.0.0.0/8\n"));
  CHECK(rig.Refusal("[::ffff:127.0.0.4]:" + port)
            .ends_with(": always denied: loopback 127.0.0.0/8\n"));
  CHECK(rig.Refusal("[::1]:" + port).ends_with(": always denied: loopback ::1/128\n"));
  CHECK(
      rig.Refusal("169.254.169.254:80").ends_with(": always denied: link-local 169.254.0.0/16\n"));
  CHECK(rig.Refusal("[::ffff:169.254.169.254]:80")
            .ends_with(": always denied: link-local 169.254.0.0/16\n"));
  CHECK(rig.proxy->Refusals("b1").size() == 8);
}

TEST_CASE("a name that does not resolve is answered 502 and recorded", "[egress-proxy]") {
  Rig rig(SpokePolicy{}, {.mode = Mode::kOpen}, kHosts);
  const std::string answer = rig.Refusal("gone.test:443");
  CHECK(answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  const auto refusals = rig.proxy->Refusals("b1");
  REQUIRE(refusals.size() == 1);
  CHECK(refusals[0].destination == "gone.test");
  CHECK(refusals[0].rule == "name did not resolve");
}

TEST_CASE("a connection nobody accepts is answered 502 and not recorded as a refusal",
          "[egress-proxy]") {
  SpokePolicy policy;
  policy.allow_ranges = {Range("127.0.0.4")};
  Rig rig(policy, {.mode = Mode::kOpen}, kHosts);
  // Nothing listens on 127.0.0.4:9 (discard).
  const std::string answer = rig.Refusal("other.test:9");
  CHECK(answer.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(answer.find("cannot connect to other.test:9") != std::string::npos);
  CHECK(rig.proxy->Refusals("b1").empty());
}

TEST_CASE("SetPolicy applies to the next connection", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kAllowlist}, kHosts);
  CHECK(rig.Refusal("echo.test:" + std::to_string(upstream.port())).find(" 403 ") !=
        std::string::npos);
  REQUIRE(rig.proxy->SetPolicy("b1", {.mode = Mode::kAllowlist, .allow = {E("echo.test")}}).ok());
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  CHECK(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  close(fd);
  REQUIRE(rig.proxy->SetPolicy("b1", {.mode = Mode::kNone, .allow = {E("echo.test")}}).ok());
  CHECK(rig.Refusal("echo.test:" + std::to_string(upstream.port())).ends_with(": mode none\n"));
  CHECK(rig.proxy->SetPolicy("nobody", {}).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("RemoveBox closes the box's listener and its open tunnels", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts);
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  Send(fd, "ping");
  REQUIRE(ReadUntil(fd, "ping") == "ping");
  const int port = rig.proxy->port();
  rig.proxy->RemoveBox("b1");
  CHECK(ReadAll(fd).empty());  // EOF (or a reset), not the 10 s timeout
  close(fd);
  CHECK(Dial(kBoxIp, port) < 0);
  CHECK(rig.proxy->Refusals("b1").empty());
  rig.proxy->RemoveBox("b1");  // unknown now: a no-op
}

TEST_CASE("Stop closes every tunnel and joins every thread", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts);
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
    REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
    fds.push_back(fd);
  }
  rig.proxy->Stop();
  for (int fd : fds) {
    CHECK(ReadAll(fd).empty());
    close(fd);
  }
  CHECK(rig.proxy->AddBox("b2", kBoxIp, {}).code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("a half-close from the upstream reaches the client, and the client may still send",
          "[egress-proxy]") {
  std::promise<std::string> late;
  Upstream upstream([&](int fd) {
    Send(fd, "bye");
    shutdown(fd, SHUT_WR);
    late.set_value(ReadAll(fd));
  });
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts);
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  CHECK(ReadAll(fd) == "bye");  // then EOF: the upstream's FIN came through
  Send(fd, "late data");
  shutdown(fd, SHUT_WR);
  char c;
  CHECK(recv(fd, &c, 1, 0) == 0);  // the proxy closes once both sides are done
  close(fd);
  auto got = late.get_future();
  REQUIRE(got.wait_for(10s) == std::future_status::ready);
  CHECK(got.get() == "late data");
}

TEST_CASE("a tunnel idle for idle_timeout is closed", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts,
          [](ProxyOptions& options) { options.idle_timeout = 300ms; });
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  const auto start = std::chrono::steady_clock::now();
  CHECK(ReadAll(fd).empty());  // waits on the socket for the proxy's close
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 250ms);
  CHECK(waited < 5s);
  close(fd);
}

TEST_CASE("over the total cap a connection is answered 503 whichever box it is for",
          "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts,
          [](ProxyOptions& options) { options.max_connections = 1; });
  REQUIRE(rig.proxy->AddBox("b2", "127.0.0.5", {.mode = Mode::kOpen}).ok());
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  const int other = Dial("127.0.0.5", rig.proxy->port());
  REQUIRE(other >= 0);
  CHECK(ReadAll(other).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  close(other);
  close(fd);
}

TEST_CASE("a request head over 16 KiB is answered 431 and read no further", "[egress-proxy]") {
  Rig rig(SpokePolicy{}, {.mode = Mode::kOpen}, kHosts);
  const int fd = rig.Dial();
  REQUIRE(fd >= 0);
  Send(fd, "CONNECT echo.test:1 HTTP/1.1\r\nX-Fill: " + std::string(17 * 1024, 'a'));
  const std::string answer = ReadAll(fd);
  CHECK(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  CHECK(answer.ends_with("request head larger than 16 KiB\n"));
  close(fd);
}

TEST_CASE("a head sent slowly is answered 408 and closed after head_timeout", "[egress-proxy]") {
  Rig rig(SpokePolicy{}, {.mode = Mode::kOpen}, kHosts,
          [](ProxyOptions& options) { options.head_timeout = 300ms; });
  const auto start = std::chrono::steady_clock::now();
  const int fd = rig.Dial();
  REQUIRE(fd >= 0);
  Send(fd, "CONNECT echo.te");
  const std::string answer = ReadAll(fd);  // waits on the socket, up to the 10 s read timeout
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
  CHECK(waited >= 300ms);
  CHECK(waited < 5s);
  close(fd);
}

TEST_CASE("malformed and smuggling-shaped request heads are answered 400", "[egress-proxy]") {
  Rig rig(SpokePolicy{}, {.mode = Mode::kOpen}, kHosts);
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n", "not a proxy request"},
      {"GET https://web.test/ HTTP/1.1\r\n\r\n", "use CONNECT for https"},
      {"GET http://user:pw@web.test/ HTTP/1.1\r\n\r\n", "userinfo in the URL"},
      {"CONNECT web.test HTTP/1.1\r\n\r\n", "CONNECT needs host:port"},
      {"CONNECT web.test:0 HTTP/1.1\r\n\r\n", "the port must be 1..65535"},
      {"CONNECT web.test:443 HTTP/2.0\r\n\r\n", "unsupported version"},
      {"CONNECT  web.test:443 HTTP/1.1\r\n\r\n", "malformed request line"},
      {"CONNECT web.test:443 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding"},
      {"CONNECT web.test:443 HTTP/1.1\r\nX : a\r\n\r\n", "malformed header line"},
      {"CONNECT web.test:443 HTTP/1.1\r\nX: a\rb\r\n\r\n", "control character"},
      {"CONNECT web.test:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "CONNECT with a body"},
      {"POST http://web.test/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       "ambiguous message framing"},
      {"POST http://web.test/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
       "ambiguous message framing"},
      {"POST http://web.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       "ambiguous message framing"},
      {"POST http://web.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
       "ambiguous message framing"},
      {"POST http://web.test/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       "bad Content-Length"},
      {"POST http://web.test/ HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "bad Content-Length"},
      {"\r\nCONNECT web.test:443 HTTP/1.1\r\n\r\n", "empty request line"},
  };
  for (const auto& [head, reason] : cases) {
    INFO(head);
    auto [fd, answer_head] = rig.Ask(std::string(head));
    const std::string answer = answer_head + ReadAll(fd);
    close(fd);
    CHECK(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    CHECK(answer.find(reason) != std::string::npos);
  }
  CHECK(rig.proxy->Refusals("b1").empty());
}

TEST_CASE("over the per-box cap a connection is answered 503", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kOpen}, kHosts,
          [](ProxyOptions& options) { options.max_connections_per_box = 1; });
  auto [fd, head] = rig.Ask(Connect("echo.test", upstream.port()));
  REQUIRE(head == "HTTP/1.1 200 Connection established\r\n\r\n");
  const int second = rig.Dial();
  REQUIRE(second >= 0);
  const std::string answer = ReadAll(second);
  CHECK(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(answer.ends_with("too many connections\n"));
  close(second);
  // The first still works.
  Send(fd, "still here");
  CHECK(ReadUntil(fd, "here") == "still here");
  close(fd);
}

TEST_CASE("refusals keep the newest, up to refusals_kept", "[egress-proxy]") {
  Rig rig(SpokePolicy{}, {.mode = Mode::kAllowlist}, kHosts,
          [](ProxyOptions& options) { options.refusals_kept = 3; });
  for (int i = 1; i <= 5; ++i) {
    rig.clock.Advance(1s);
    rig.Refusal("n" + std::to_string(i) + ".test:443");
  }
  const auto refusals = rig.proxy->Refusals("b1");
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0].destination == "n3.test");
  CHECK(refusals[1].destination == "n4.test");
  CHECK(refusals[2].destination == "n5.test");
  CHECK(refusals[2].time == rig.clock.Now());
  CHECK(refusals[1].time == rig.clock.Now() - 1s);
}

TEST_CASE("a box's listener serves only that box's policy", "[egress-proxy]") {
  Upstream upstream(Echo);
  Rig rig(LiftUpstream(), {.mode = Mode::kNone}, kHosts);
  REQUIRE(rig.proxy->AddBox("b2", "127.0.0.5", {.mode = Mode::kOpen}).ok());
  CHECK(rig.Refusal("echo.test:" + std::to_string(upstream.port())).ends_with(": mode none\n"));
  const int fd = Dial("127.0.0.5", rig.proxy->port());
  REQUIRE(fd >= 0);
  Send(fd, Connect("echo.test", upstream.port()));
  CHECK(ReadUntil(fd, "\r\n\r\n") == "HTTP/1.1 200 Connection established\r\n\r\n");
  close(fd);
  CHECK(rig.proxy->Refusals("b1").size() == 1);
  CHECK(rig.proxy->Refusals("b2").empty());
  // A box cannot be added on an address that is not one.
  CHECK(rig.proxy->AddBox("b3", "not-an-ip", {}).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("the system resolver answers from static hosts first, then the system's",
          "[egress-proxy]") {
  auto resolver = MakeSystemResolver({{"x.test", {Ip("198.18.0.7")}}, {"none.test", {}}});
  auto x = resolver->Resolve("X.Test.");
  REQUIRE(x.ok());
  CHECK(*x == std::vector<IpAddress>{Ip("198.18.0.7")});
  CHECK(resolver->Resolve("none.test").status().code() == absl::StatusCode::kNotFound);
  // localhost comes from /etc/hosts: no packet leaves.
  auto local = resolver->Resolve("localhost");
  REQUIRE(local.ok());
  CHECK(std::any_of(local->begin(), local->end(),
                    [](const IpAddress& a) { return a == Ip("127.0.0.1") || a == Ip("::1"); }));
}

}  // namespace
}  // namespace llmbox::spoke::egress
