#include "tests/support/test_internet.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>

#include "absl/strings/str_cat.h"
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/subprocess.h"

namespace llmbox::testing {
namespace {

[[nodiscard]] absl::Status Run(std::vector<std::string> argv) {
  common::PosixSubprocessRunner runner;
  auto result = runner.Run({.argv = argv, .timeout = std::chrono::seconds(10)});
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(argv[0], " ", argv.size() > 1 ? argv[1] : "", ": ", result->stderr_data));
  }
  return absl::OkStatus();
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "test internet: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

int ListenOn(const std::string& address, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.c_str(), &sa.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TestServer::TestServer(int listen_fd) : fd_(listen_fd), thread_([this] { Loop(); }) {}

TestServer::~TestServer() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

std::vector<std::string> TestServer::Received() const {
  std::lock_guard lock(mu_);
  return received_;
}

void TestServer::Loop() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::string got;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (got.size() < 4096 && got.find("\r\n\r\n") == std::string::npos &&
           std::chrono::steady_clock::now() < until) {
      pollfd c{client, POLLIN, 0};
      if (poll(&c, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = read(client, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mu_);
      received_.push_back(got);
    }
    static constexpr char kAnswer[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    (void)!write(client, kAnswer, sizeof kAnswer - 1);
    shutdown(client, SHUT_RDWR);
    close(client);
  }
}

absl::StatusOr<std::unique_ptr<TestInternet>> TestInternet::Create(int n) {
  if (n == 0) n = 1 + static_cast<int>(getpid() % 16000);
  std::unique_ptr<TestInternet> net(new TestInternet());
  net->name_ = absl::StrCat("llmbox-inet-", getpid());
  net->veth_ = absl::StrCat("lbi", getpid() % 1000000);
  // /30 number n of 198.18.0.0/15: 198.18.0.0 + 4n.
  const uint32_t base = (198u << 24 | 18u << 16) + 4u * static_cast<uint32_t>(n);
  auto dotted = [](uint32_t a) {
    return absl::StrCat(a >> 24, ".", (a >> 16) & 255, ".", (a >> 8) & 255, ".", a & 255);
  };
  net->host_ = dotted(base + 1);
  net->inside_ = dotted(base + 2);
  const std::string peer = net->veth_ + "p";
  absl::Status st = Run({"/usr/sbin/ip", "netns", "add", net->name_});
  if (st.ok())
    st = Run({"/usr/sbin/ip", "link", "add", net->veth_, "type", "veth", "peer", "name", peer});
  if (st.ok()) st = Run({"/usr/sbin/ip", "link", "set", peer, "netns", net->name_});
  if (st.ok()) st = Run({"/usr/sbin/ip", "addr", "add", net->host_ + "/30", "dev", net->veth_});
  if (st.ok()) st = Run({"/usr/sbin/ip", "link", "set", net->veth_, "up"});
  if (st.ok()) {
    st = Run({"/usr/sbin/ip", "-n", net->name_, "addr", "add", net->inside_ + "/30", "dev", peer});
  }
  if (st.ok()) st = Run({"/usr/sbin/ip", "-n", net->name_, "link", "set", peer, "up"});
  if (st.ok()) st = Run({"/usr/sbin/ip", "-n", net->name_, "link", "set", "lo", "up"});
  if (!st.ok()) return st;  // the destructor removes what was made
  return net;
}

TestInternet::~TestInternet() {
  servers_.clear();
  (void)Run({"/usr/sbin/ip", "link", "del", veth_});
  (void)Run({"/usr/sbin/ip", "netns", "del", name_});
}

TestServer& TestInternet::Serve(int port) {
  const int fd = ListenInside(port);
  if (fd < 0) Fail("cannot listen inside the namespace on port " + std::to_string(port));
  servers_.push_back(std::make_unique<TestServer>(fd));
  return *servers_.back();
}

int TestInternet::ListenInside(int port) {
  // A socket belongs to the namespace it was made in: make it on a thread that joined ours.
  auto made = std::async(std::launch::async, [&]() -> int {
    const std::string path = "/var/run/netns/" + name_;
    int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return -1;
    const int joined = setns(ns, CLONE_NEWNET);
    close(ns);
    if (joined != 0) return -1;
    return ListenOn(inside_, port);
  });
  return made.get();
}

TestServer& TestInternet::ServeOnHost(const std::string& address, int port) {
  const int fd = ListenOn(address, port);
  if (fd < 0) Fail("cannot listen on " + address + ":" + std::to_string(port));
  servers_.push_back(std::make_unique<TestServer>(fd));
  return *servers_.back();
}

std::string ConnectThroughProxyScript(const std::string& target) {
  return "p=${HTTPS_PROXY#http://}; h=${p%:*}; port=${p##*:}; "
         "exec 3<>/dev/tcp/$h/$port || exit 9; "
         "printf 'CONNECT " +
         target + " HTTP/1.1\\r\\nHost: " + target +
         "\\r\\n\\r\\n' >&3; "
         "IFS= read -r -t 10 status <&3; echo \"proxy: ${status%$'\\r'}\"; "
         "case \"$status\" in *\" 200 \"*) "
         "  while IFS= read -r -t 10 l <&3 && [ \"${l%$'\\r'}\" != '' ]; do :; done; "
         "  printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3; "
         "  body=$(timeout 10 cat <&3); echo \"server: ${body##*$'\\n'}\";; "
         "esac";
}

}  // namespace llmbox::testing
