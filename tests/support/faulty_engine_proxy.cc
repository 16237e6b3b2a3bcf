// tests/support/faulty_engine_proxy.cc
#include "tests/support/faulty_engine_proxy.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include <sys/socket.h>
#include <sys/un.h>

namespace llmbox::testing {
namespace {

// Writes all of `data`; false when the peer is gone.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

int ConnectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The request head, as read and as forwarded.
struct Head {
  std::string method;
  std::string path;  // without the query
  bool upgrade = false;
  std::size_t content_length = 0;
  std::string forwarded;  // the head to send upstream, `Connection: close` unless upgrading
};

// Parses the head `text` (request line and header lines, CRLF-separated, without the blank
// line); linear in its length. nullopt when the request line is not `METHOD TARGET VERSION`.
std::optional<Head> ParseHead(std::string_view text) {
  Head head;
  const std::size_t line_end = text.find("\r\n");
  const std::string_view request_line = text.substr(0, line_end);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return std::nullopt;
  head.method = std::string(request_line.substr(0, sp1));
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  head.path = std::string(target.substr(0, target.find('?')));
  std::string kept = std::string(request_line) + "\r\n";
  std::string_view rest =
      line_end == std::string_view::npos ? std::string_view() : text.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    const std::size_t colon = line.find(':');
    const std::string name =
        absl::AsciiStrToLower(std::string(line.substr(0, colon == line.npos ? 0 : colon)));
    std::string value(colon == line.npos ? std::string_view() : line.substr(colon + 1));
    absl::StripAsciiWhitespace(&value);
    if (name == "upgrade") head.upgrade = true;
    if (name == "content-length") {
      std::size_t length = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || length > (std::size_t{1} << 30)) return std::nullopt;
        length = length * 10 + static_cast<std::size_t>(c - '0');
      }
      head.content_length = length;
    }
    if (name == "connection") {
      // Kept only for an upgrade; otherwise replaced below.
      if (!absl::StrContains(absl::AsciiStrToLower(value), "upgrade")) continue;
    }
    kept += std::string(line) + "\r\n";
  }
  if (!head.upgrade) kept += "Connection: close\r\n";
  head.forwarded = kept + "\r\n";
  return head;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FaultyEngineProxy>> FaultyEngineProxy::Start(
    const std::string& socket_path, const std::string& upstream_socket) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError("socket path too long: " + socket_path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  ::unlink(socket_path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::string("socket: ") + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 64) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    return absl::InternalError("cannot listen on " + socket_path + ": " + error);
  }
  std::unique_ptr<FaultyEngineProxy> proxy(new FaultyEngineProxy(socket_path, upstream_socket, fd));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->Accept(); });
  return proxy;
}

FaultyEngineProxy::FaultyEngineProxy(std::string socket_path, std::string upstream, int listen_fd)
    : socket_path_(std::move(socket_path)), upstream_(std::move(upstream)), listen_fd_(listen_fd) {}

FaultyEngineProxy::~FaultyEngineProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> connections;
  {
    std::lock_guard lock(mu_);
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    connections.swap(connections_);
  }
  for (auto& connection : connections) connection.join();
  ::unlink(socket_path_.c_str());
}

void FaultyEngineProxy::Track(int fd, bool add) {
  std::lock_guard lock(mu_);
  if (add) {
    open_.insert(fd);
    if (stopping_) ::shutdown(fd, SHUT_RDWR);
  } else {
    open_.erase(fd);
  }
}

void FaultyEngineProxy::Accept() {
  while (!stopping_) {
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(client);
      return;
    }
    connections_.emplace_back([this, client] { Serve(client); });
  }
}

void FaultyEngineProxy::Serve(int client) {
  Track(client, true);
  int upstream = -1;
  const auto finish = [&] {
    Track(client, false);
    ::close(client);
    if (upstream >= 0) {
      Track(upstream, false);
      ::close(upstream);
    }
  };
  // The head, bounded.
  std::string buffer;
  std::size_t head_end = std::string::npos;
  char chunk[16 << 10];
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxHead) {
      (void)WriteAll(client,
                     "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
      return finish();
    }
    const ssize_t n = ::recv(client, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return finish();
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  const std::optional<Head> head = ParseHead(std::string_view(buffer).substr(0, head_end));
  if (!head.has_value()) {
    (void)WriteAll(client,
                   "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n");
    return finish();
  }
  std::string body = buffer.substr(head_end + 4);
  if (broken_ && head->method == "POST" && absl::EndsWith(head->path, "/containers/create")) {
    // The body is read (and dropped) first, so the client is not cut off mid-send.
    while (body.size() < head->content_length) {
      const ssize_t n = ::recv(client, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      body.append(chunk, static_cast<std::size_t>(n));
    }
    ++refused_;
    const std::string message = R"({"message":"faulty engine proxy: container create refused"})";
    (void)WriteAll(client,
                   "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
                   "application/json\r\nContent-Length: " +
                       std::to_string(message.size()) + "\r\nConnection: close\r\n\r\n" + message);
    return finish();
  }
  upstream = ConnectUnix(upstream_);
  if (upstream < 0) {
    (void)WriteAll(client,
                   "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n");
    return finish();
  }
  Track(upstream, true);
  if (!WriteAll(upstream, head->forwarded)) return finish();
  // An engine may answer (and close) before it reads a body: its answer still goes back.
  const bool body_sent = WriteAll(upstream, body);
  // Both ways until both sides are done; a side's end is passed on as a half-close.
  pollfd fds[2] = {{.fd = client, .events = POLLIN, .revents = 0},
                   {.fd = upstream, .events = POLLIN, .revents = 0}};
  bool open[2] = {body_sent, true};
  while (open[0] || open[1]) {
    for (int i = 0; i < 2; ++i) fds[i].fd = open[i] ? (i == 0 ? client : upstream) : -1;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (!open[i] || fds[i].revents == 0) continue;
      const int from = i == 0 ? client : upstream;
      const int to = i == 0 ? upstream : client;
      const ssize_t n = ::recv(from, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !WriteAll(to, std::string_view(chunk, static_cast<std::size_t>(n)))) {
        open[i] = false;
        ::shutdown(to, SHUT_WR);
        // The upstream's answer is over: the client's side has nothing left to say.
        if (i == 1) open[0] = false;
      }
    }
  }
  finish();
}

}  // namespace llmbox::testing
