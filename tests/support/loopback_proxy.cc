#include "tests/support/loopback_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

namespace llmbox::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Closes with a reset (linger 0): the peer sees the connection die, not end.
void Reset(int fd) {
  linger hard{.l_onoff = 1, .l_linger = 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  (void)close(fd);
}

bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

LoopbackProxy::LoopbackProxy(int target_port) : target_port_(target_port) { Listen(0); }

LoopbackProxy::~LoopbackProxy() { Close(); }

void LoopbackProxy::Open() {
  {
    std::lock_guard lock(mu_);
    if (relay_.joinable()) return;
  }
  Listen(port_);
}

void LoopbackProxy::Close() {
  std::lock_guard lock(mu_);
  if (!relay_.joinable()) return;
  const char stop = 'x';
  (void)write(wake_write_, &stop, 1);
  relay_.join();
  (void)close(wake_write_);
  wake_write_ = -1;
}

void LoopbackProxy::Listen(int port) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  const int on = 1;
  (void)setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address = Loopback(port);
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(listen(listener, 64) == 0);
  socklen_t length = sizeof(address);
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  std::array<int, 2> wake{};
  REQUIRE(pipe2(wake.data(), O_CLOEXEC) == 0);
  std::lock_guard lock(mu_);
  port_ = ntohs(address.sin_port);
  wake_write_ = wake[1];
  relay_ = std::thread([this, listener, read_end = wake[0]] { Relay(listener, read_end); });
}

void LoopbackProxy::Relay(int listener, int wake) {
  // Each relayed connection is two sockets; pairs[i] and pairs[i ^ 1] are peers.
  std::vector<int> pairs;
  std::array<char, 64 << 10> buffer{};
  for (;;) {
    std::vector<pollfd> polled = {{.fd = wake, .events = POLLIN, .revents = 0},
                                  {.fd = listener, .events = POLLIN, .revents = 0}};
    for (int fd : pairs) polled.push_back({.fd = fd, .events = POLLIN, .revents = 0});
    if (poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (polled[0].revents != 0) break;
    if (polled[1].revents & POLLIN) {
      const int client = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in target = Loopback(target_port_);
        if (upstream >= 0 &&
            connect(upstream, reinterpret_cast<sockaddr*>(&target), sizeof(target)) == 0) {
          pairs.push_back(client);
          pairs.push_back(upstream);
        } else {
          if (upstream >= 0) (void)close(upstream);
          Reset(client);
        }
      }
    }
    std::vector<std::size_t> dead;  // even indexes of pairs to drop
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (polled[i + 2].revents == 0) continue;
      const ssize_t n = recv(pairs[i], buffer.data(), buffer.size(), 0);
      if (n <= 0 || !WriteAll(pairs[i ^ 1], buffer.data(), static_cast<std::size_t>(n))) {
        dead.push_back(i & ~std::size_t{1});
      }
    }
    // From the back, so earlier indexes stay valid; a pair may be listed twice.
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
      const std::size_t at = *it;
      if (at + 1 >= pairs.size() || pairs[at] < 0) continue;
      Reset(pairs[at]);
      Reset(pairs[at + 1]);
      pairs[at] = pairs[at + 1] = -1;
    }
    std::erase(pairs, -1);
  }
  for (int fd : pairs) Reset(fd);
  (void)close(listener);
  (void)close(wake);
}

}  // namespace llmbox::testing
