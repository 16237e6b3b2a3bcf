#include "common/metrics_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/absl_compat.h"
#include "common/metrics.h"
#include "common/metrics_auth.h"
#include "common/status.h"

namespace llmbox::common {
namespace {

constexpr std::size_t kMaxRequestHead = 8 << 10;
constexpr std::chrono::seconds kReadTimeout{5};
constexpr std::chrono::seconds kWriteTimeout{10};

// Milliseconds left until `deadline` for poll(); 0 once past it.
int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Reads the request head (through the blank line) within the bounds; nullopt when the client
// sent too much, too slowly, or went away.
std::optional<std::string> ReadHead(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kReadTimeout;
  std::string head;
  char buffer[2048];
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > kMaxRequestHead) return std::nullopt;
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready <= 0) return std::nullopt;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return std::nullopt;
    head.append(buffer, static_cast<std::size_t>(n));
  }
  return head;
}

void WriteAll(int fd, std::string_view data) {
  const auto deadline = std::chrono::steady_clock::now() + kWriteTimeout;
  while (!data.empty()) {
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) return;
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// `extra_headers`: whole lines, each ending in CRLF.
std::string Answer(int status, std::string_view reason, std::string_view content_type,
                   std::string_view body, bool with_body, std::string_view extra_headers = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: " + std::string(content_type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n" + std::string(extra_headers) + "\r\n";
  if (with_body) out += body;
  return out;
}

// The value of the first `name` header in a request head (names compared in any case; the
// request line is skipped), without its surrounding blanks. One pass over the bounded head.
std::optional<std::string_view> HeaderOf(std::string_view head, std::string_view name) {
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos) {
    const std::size_t start = at + 2;
    at = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, at == std::string_view::npos ? head.npos : at - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos ||
        !absl::EqualsIgnoreCase(AsAbsl(line.substr(0, colon)), AsAbsl(name))) {
      continue;
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    return value;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("listen address \"" + std::string(text) + "\": " +
                                      std::string(why) + " (write host:port, e.g. 127.0.0.1:9464)");
  };
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  int port = -1;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return bad("the port must be 0..65535");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string host_text(host);
  in6_addr v6{};
  in_addr v4{};
  if (host_text != "localhost" && inet_pton(AF_INET, host_text.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, host_text.c_str(), &v6) != 1) {
    return bad("the host must be an IP address or localhost");
  }
  return ListenAddress{.host = host_text, .port = port};
}

struct MetricsServer::Loop {
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::function<std::string()> render;
  std::string bearer_token;  // a secret: never logged
  std::thread thread;

  ~Loop() {
    for (int fd : {listen_fd, wake[0], wake[1]}) {
      if (fd >= 0) close(fd);
    }
  }

  void Run() {
    for (;;) {
      pollfd fds[2] = {{.fd = listen_fd, .events = POLLIN, .revents = 0},
                       {.fd = wake[0], .events = POLLIN, .revents = 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("metrics: the listener failed: {}", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents == 0) continue;
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      Serve(fd);
      close(fd);
    }
  }

  void Serve(int fd) {
    std::optional<std::string> head = ReadHead(fd);
    if (!head) return;
    const std::string_view line = std::string_view(*head).substr(0, head->find("\r\n"));
    const std::size_t space = line.find(' ');
    const std::string_view method = line.substr(0, space);
    std::string_view target =
        space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    target = target.substr(0, target.find(' '));
    const std::string_view path = target.substr(0, target.find('?'));
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) {
      WriteAll(fd, Answer(405, "Method Not Allowed", "text/plain", "GET only\n", true));
    } else if (path != "/metrics") {
      WriteAll(fd, Answer(404, "Not Found", "text/plain", "metrics are at /metrics\n", !head_only));
    } else if (!bearer_token.empty() &&
               !MetricsBearerAllows(HeaderOf(*head, "authorization"), bearer_token)) {
      WriteAll(fd, Answer(401, "Unauthorized", "text/plain",
                          "metrics want Authorization: Bearer <the token of "
                          "metrics.bearer_token_file>\n",
                          !head_only,
                          absl::StrCat("WWW-Authenticate: ", kMetricsWwwAuthenticate, "\r\n")));
    } else {
      WriteAll(fd, Answer(200, "OK", kMetricsContentType, render(), !head_only));
    }
  }
};

MetricsServer::MetricsServer(std::unique_ptr<Loop> loop, int port)
    : loop_(std::move(loop)), port_(port) {}

MetricsServer::~MetricsServer() { Stop(); }

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    std::string_view address, std::function<std::string()> render, std::string bearer_token) {
  LLMBOX_ASSIGN_OR_RETURN(ListenAddress where, ParseListenAddress(address));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(where.port);
  if (getaddrinfo(where.host.c_str(), port_text.c_str(), &hints, &found) != 0 || found == nullptr) {
    return absl::InvalidArgumentError("metrics: cannot resolve the listen address \"" +
                                      std::string(address) + "\"");
  }
  auto loop = std::make_unique<Loop>();
  loop->render = std::move(render);
  loop->bearer_token = std::move(bearer_token);
  loop->listen_fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  const bool bound = loop->listen_fd >= 0 &&
                     setsockopt(loop->listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0 &&
                     bind(loop->listen_fd, found->ai_addr, found->ai_addrlen) == 0 &&
                     listen(loop->listen_fd, 16) == 0;
  const int bind_errno = errno;
  freeaddrinfo(found);
  if (!bound) {
    return absl::UnavailableError("metrics: cannot listen on " + std::string(address) + ": " +
                                  std::strerror(bind_errno));
  }
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  getsockname(loop->listen_fd, reinterpret_cast<sockaddr*>(&local), &length);
  const int port =
      ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
  if (pipe2(loop->wake, O_CLOEXEC) != 0) {
    return absl::InternalError(std::string("metrics: pipe: ") + std::strerror(errno));
  }
  Loop* raw = loop.get();
  loop->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(loop), port));
}

void MetricsServer::Stop() {
  if (loop_ == nullptr || !loop_->thread.joinable()) return;
  const char byte = 0;
  if (write(loop_->wake[1], &byte, 1) != 1) {
    spdlog::warn("metrics: could not wake the listener to stop it");
  }
  loop_->thread.join();
}

}  // namespace llmbox::common
