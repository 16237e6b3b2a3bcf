// spoke/egress/proxy.cc
#include "spoke/egress/proxy.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "common/absl_compat.h"
#include "common/status.h"

namespace llmbox::spoke::egress {
namespace {

using common::AsAbsl;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kMaxHeadBytes = 16 * 1024;
constexpr size_t kMaxHeaderLines = 100;
// getaddrinfo calls that may hang at once before a lookup is refused outright.
constexpr int kMaxResolverThreads = 64;
// Of those, what one box may hold at once.
constexpr int kMaxLookupsPerBox = 8;
// How long a refused client gets to read the answer while its unread bytes are drained.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kLingerBytes = 256 * 1024;
// A pipe this large lets one splice(2) move a socket's whole receive burst.
constexpr int kPipeBytes = 1 << 20;

// Every proxy thread: a write to a socket the peer closed must fail with EPIPE, not kill
// the spoke (splice(2) raises SIGPIPE and takes no MSG_NOSIGNAL).
void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int RemainingMs(SteadyClock::time_point deadline) {
  // Rounded up: a wait never ends before its deadline.
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

int ClampMs(std::chrono::milliseconds duration) {
  return static_cast<int>(std::clamp<int64_t>(duration.count(), 0, INT_MAX));
}

// Hostile text fit for a log line, a record and a one-line body: printable ASCII, cut short.
std::string Printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 253; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c > 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (text.size() > 253) out += "...";
  return out;
}

// ---------------------------------------------------------------------------------------------
// The resolver.

class SystemResolver final : public Resolver {
 public:
  SystemResolver(std::map<std::string, std::vector<IpAddress>> static_hosts,
                 std::chrono::milliseconds timeout)
      : static_hosts_(std::move(static_hosts)),
        timeout_(timeout),
        in_flight_(std::make_shared<std::atomic<int>>(0)) {}

  absl::StatusOr<std::vector<IpAddress>> Resolve(const std::string& name) override {
    std::string key = absl::AsciiStrToLower(name);
    if (key.ends_with('.')) key.pop_back();
    if (auto it = static_hosts_.find(key); it != static_hosts_.end()) {
      if (it->second.empty()) return absl::NotFoundError(absl::StrCat(key, " has no address"));
      return it->second;
    }
    // getaddrinfo cannot be cancelled: it runs on a thread of its own that may outlive this
    // call (and this resolver); only the shared state below is touched when it finishes.
    struct Lookup {
      std::mutex mu;
      std::condition_variable done_cv;
      bool done = false;
      absl::StatusOr<std::vector<IpAddress>> result;
    };
    if (in_flight_->fetch_add(1) >= kMaxResolverThreads) {
      in_flight_->fetch_sub(1);
      return absl::UnavailableError(
          absl::StrCat("resolving ", key, ": too many lookups in flight"));
    }
    auto lookup = std::make_shared<Lookup>();
    try {
      std::thread([lookup, key, in_flight = in_flight_] {
        auto result = GetAddrInfo(key);
        {
          std::lock_guard lock(lookup->mu);
          lookup->result = std::move(result);
          lookup->done = true;
          lookup->done_cv.notify_all();
        }
        in_flight->fetch_sub(1);
      }).detach();
    } catch (const std::system_error& e) {
      in_flight_->fetch_sub(1);
      return absl::UnavailableError(absl::StrCat("resolving ", key, ": ", e.what()));
    }
    std::unique_lock lock(lookup->mu);
    if (!lookup->done_cv.wait_for(lock, timeout_, [&] { return lookup->done; })) {
      return absl::UnavailableError(
          absl::StrCat("resolving ", key, ": no answer within ", timeout_.count(), " ms"));
    }
    return lookup->result;
  }

 private:
  static absl::StatusOr<std::vector<IpAddress>> GetAddrInfo(const std::string& name) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &list);
    if (rc == EAI_NONAME || rc == EAI_NODATA) {
      return absl::NotFoundError(absl::StrCat(name, " has no address"));
    }
    if (rc != 0) {
      return absl::UnavailableError(absl::StrCat("resolving ", name, ": ", gai_strerror(rc)));
    }
    std::vector<IpAddress> addresses;
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      const std::optional<IpAddress> address = IpAddressOf(ai->ai_addr);
      if (!address.has_value()) continue;
      if (std::find(addresses.begin(), addresses.end(), *address) == addresses.end()) {
        addresses.push_back(*address);
      }
    }
    freeaddrinfo(list);
    if (addresses.empty()) return absl::NotFoundError(absl::StrCat(name, " has no address"));
    return addresses;
  }

  const std::map<std::string, std::vector<IpAddress>> static_hosts_;
  const std::chrono::milliseconds timeout_;
  const std::shared_ptr<std::atomic<int>> in_flight_;
};

// ---------------------------------------------------------------------------------------------
// Request heads.

bool IsTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

struct Header {
  std::string_view name;
  std::string_view value;
};

struct Request {
  bool connect = false;
  std::string method;
  std::string version;
  std::string host;  // a name, or an IP literal without brackets
  int port = 0;
  std::string authority;  // as the Host header should say it
  std::string path;       // origin form (absolute-form requests)
  std::vector<Header> headers;
};

// An HTTP error the proxy answers with.
struct Answer {
  int code;
  std::string reason;
};

std::optional<int> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5 || text[0] == '0') return std::nullopt;
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return std::nullopt;
  return port;
}

// host[:port] or [v6][:port]; `default_port` 0 means the port is required.
std::optional<Answer> ParseAuthority(std::string_view authority, int default_port,
                                     Request& request) {
  std::string_view host = authority;
  std::optional<std::string_view> port_text;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Answer{400, "bad target: '[' without ']'"};
    host = authority.substr(1, close - 1);
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Answer{400, "bad target: junk after ']'"};
      port_text = rest.substr(1);
    }
    const auto address = ParseIp(host);
    if (!address || !address->v6) return Answer{400, "bad target: not an IPv6 address in []"};
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
    }
  }
  if (host.empty()) return Answer{400, "bad target: no host"};
  if (port_text) {
    const auto port = ParsePort(*port_text);
    if (!port) return Answer{400, "bad target: the port must be 1..65535"};
    request.port = *port;
  } else if (default_port != 0) {
    request.port = default_port;
  } else {
    return Answer{400, "bad target: CONNECT needs host:port"};
  }
  request.host = std::string(host);
  request.authority = std::string(authority);
  return std::nullopt;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && absl::EqualsIgnoreCase(AsAbsl(a), AsAbsl(b));
}

std::string_view TrimOws(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Parses a complete head (up to the empty line that ends it). Views point into `head`.
std::optional<Answer> ParseHead(std::string_view head, Request& request) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < head.size()) {
    size_t end = head.find('\n', start);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(start, end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;  // the end of the head
    lines.push_back(line);
    start = end + 1;
  }
  if (lines.empty()) return Answer{400, "empty request"};
  if (lines.size() > kMaxHeaderLines + 1) return Answer{431, "more than 100 header lines"};
  for (std::string_view line : lines) {
    for (char c : line) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u == '\r' || u == '\0' || (u < 0x20 && u != '\t') || u == 0x7f) {
        return Answer{400, "control character in the request head"};
      }
    }
  }

  // Request line: method SP target SP version, single spaces.
  const std::string_view line = lines[0];
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Answer{400, "malformed request line"};
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method) || method.size() > 32) return Answer{400, "malformed method"};
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Answer{400, "unsupported version"};
  if (target.empty() || std::any_of(target.begin(), target.end(), [](char c) {
        return c == '\t' || static_cast<unsigned char>(c) >= 0x80;
      })) {
    return Answer{400, "malformed target"};
  }
  request.method = std::string(method);
  request.version = std::string(version);

  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view header = lines[i];
    if (header.front() == ' ' || header.front() == '\t') {
      return Answer{400, "obsolete line folding"};
    }
    const size_t colon = header.find(':');
    if (colon == std::string_view::npos || !IsToken(header.substr(0, colon))) {
      return Answer{400, "malformed header line"};
    }
    request.headers.push_back({header.substr(0, colon), TrimOws(header.substr(colon + 1))});
  }

  // Framing, so that no two readers can disagree on where the body ends.
  std::optional<std::string_view> content_length;
  bool chunked = false;
  int transfer_encodings = 0;
  for (const Header& h : request.headers) {
    if (EqualsIgnoreCase(h.name, "content-length")) {
      if (h.value.empty() || !std::all_of(h.value.begin(), h.value.end(), absl::ascii_isdigit) ||
          (content_length && *content_length != h.value)) {
        return Answer{400, "bad Content-Length"};
      }
      content_length = h.value;
    } else if (EqualsIgnoreCase(h.name, "transfer-encoding")) {
      ++transfer_encodings;
      const size_t comma = h.value.rfind(',');
      const std::string_view last =
          TrimOws(comma == std::string_view::npos ? h.value : h.value.substr(comma + 1));
      chunked = EqualsIgnoreCase(last, "chunked");
    }
  }
  if (transfer_encodings > 0 &&
      (content_length || transfer_encodings > 1 || !chunked || request.version == "HTTP/1.0")) {
    return Answer{400, "ambiguous message framing (Transfer-Encoding)"};
  }

  if (method == "CONNECT") {
    if (content_length || transfer_encodings > 0) return Answer{400, "CONNECT with a body"};
    request.connect = true;
    return ParseAuthority(target, 0, request);
  }
  constexpr std::string_view kHttp = "http://";
  if (target.size() < kHttp.size() || !EqualsIgnoreCase(target.substr(0, kHttp.size()), kHttp)) {
    if (target.size() >= 8 && EqualsIgnoreCase(target.substr(0, 8), "https://")) {
      return Answer{400, "use CONNECT for https"};
    }
    return Answer{400, "not a proxy request (CONNECT host:port or an absolute http:// URL)"};
  }
  const std::string_view rest = target.substr(kHttp.size());
  const size_t path_at = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, path_at);
  if (authority.find('@') != std::string_view::npos) return Answer{400, "userinfo in the URL"};
  std::string_view path = path_at == std::string_view::npos ? "" : rest.substr(path_at);
  if (path.find('#') != std::string_view::npos) return Answer{400, "fragment in the URL"};
  request.path = path.starts_with('/') ? std::string(path) : absl::StrCat("/", AsAbsl(path));
  return ParseAuthority(authority, 80, request);
}

// The head sent upstream: origin form, Host from the target, no hop-by-hop or Proxy-*
// headers, Connection: close.
std::string UpstreamHead(const Request& request) {
  std::string head = absl::StrCat(request.method, " ", request.path, " ", request.version,
                                  "\r\nHost: ", request.authority, "\r\n");
  for (const Header& h : request.headers) {
    const std::string name = absl::AsciiStrToLower(AsAbsl(h.name));
    if (name == "host" || name == "connection" || name == "keep-alive" || name == "upgrade" ||
        name == "te" || name == "trailer" || name.starts_with("proxy-")) {
      continue;
    }
    absl::StrAppend(&head, AsAbsl(h.name), ": ", AsAbsl(h.value), "\r\n");
  }
  absl::StrAppend(&head, "Connection: close\r\n\r\n");
  return head;
}

std::string_view ReasonPhrase(int code) {
  switch (code) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

std::string ErrorResponse(int code, std::string_view text) {
  const std::string body = absl::StrCat("llmbox egress: ", AsAbsl(text), "\n");
  return absl::StrCat("HTTP/1.1 ", code, " ", AsAbsl(ReasonPhrase(code)),
                      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
                      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

// ---------------------------------------------------------------------------------------------
// Sockets.

// Waits for `events` on `fd`, or for `cancel`. Returns revents of `fd`; 0 on timeout or cancel.
short WaitFor(int fd, short events, int cancel, int timeout_ms) {
  pollfd fds[2] = {{fd, events, 0}, {cancel, POLLIN, 0}};
  for (;;) {
    const int rc = poll(fds, 2, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0 || fds[1].revents != 0) return 0;
    return fds[0].revents;
  }
}

bool WriteAll(int fd, std::string_view data, int cancel, SteadyClock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    if (WaitFor(fd, POLLOUT, cancel, RemainingMs(deadline)) == 0) return false;
  }
  return true;
}

void SetNoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

socklen_t ToSockaddr(const IpAddress& address, int port, sockaddr_storage& storage) {
  std::memset(&storage, 0, sizeof(storage));
  if (address.v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* in = reinterpret_cast<sockaddr_in*>(&storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(static_cast<uint16_t>(port));
  std::memcpy(&in->sin_addr, address.bytes.data(), 4);
  return sizeof(sockaddr_in);
}

// One direction of a relay: bytes read from `from` wait in a pipe (splice(2), no copy
// through user space) or, where splice is refused, in a buffer, until `to` takes them. Over
// loopback the proxy's thread spends about 0.22 CPU s/GB with splice and 0.31..0.43 with
// recv/send through a buffer (tests/bench/egress_proxy_bench.cc).
class Direction {
 public:
  Direction(int from, int to) : from_(from), to_(to) {
    if (pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) == 0) {
      fcntl(pipe_[1], F_SETPIPE_SZ, kPipeBytes);  // best effort: the default is 64 KiB
      const int size = fcntl(pipe_[1], F_GETPIPE_SZ);
      capacity_ = size > 0 ? static_cast<size_t>(size) : 0;
    }
    // A user over pipe-user-pages-soft gets pipes of a page or two: too slow to splice through.
    if (capacity_ < 65536) UseBuffer();
  }
  ~Direction() {
    if (pipe_[0] >= 0) close(pipe_[0]);
    if (pipe_[1] >= 0) close(pipe_[1]);
  }
  Direction(const Direction&) = delete;
  Direction& operator=(const Direction&) = delete;

  // A buffer is refilled only once it is empty; a pipe takes more while it has room.
  bool WantsRead() const {
    return !eof_ && !pipe_full_ && (buffer_.empty() ? pending_ < capacity_ : pending_ == 0);
  }
  bool WantsWrite() const { return pending_ > 0; }
  bool Finished() const { return finished_; }

  // Moves what it can; false when the connection is broken (reset, error).
  bool Pump() {
    if (WantsRead() && !Fill()) return false;
    if (pending_ > 0 && !Drain()) return false;
    if (eof_ && pending_ == 0 && !finished_) {
      shutdown(to_, SHUT_WR);  // half-close: the other direction goes on
      finished_ = true;
    }
    return true;
  }

 private:
  void UseBuffer() {
    for (int& fd : pipe_) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    buffer_.resize(256 * 1024);
    capacity_ = buffer_.size();
  }

  bool Fill() {
    for (;;) {
      ssize_t n;
      if (buffer_.empty()) {
        n = splice(from_, nullptr, pipe_[1], nullptr, capacity_ - pending_,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINVAL && pending_ == 0) {
          UseBuffer();
          continue;
        }
      } else {
        n = recv(from_, buffer_.data(), buffer_.size(), 0);
        begin_ = 0;
      }
      if (n > 0) {
        pending_ += static_cast<size_t>(n);
        return true;
      }
      if (n == 0) {
        eof_ = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      // A pipe counts pages, not bytes: it can be full below capacity_. Until it drains,
      // asking for POLLIN again would only spin.
      if (buffer_.empty() && pending_ > 0) pipe_full_ = true;
      return true;
    }
  }

  bool Drain() {
    for (;;) {
      ssize_t n;
      if (buffer_.empty()) {
        n = splice(pipe_[0], nullptr, to_, nullptr, pending_, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      } else {
        n = send(to_, buffer_.data() + begin_, pending_, MSG_NOSIGNAL);
      }
      if (n > 0) {
        pending_ -= static_cast<size_t>(n);
        begin_ += static_cast<size_t>(n);
        pipe_full_ = false;
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return n < 0 && errno == EAGAIN;
    }
  }

  const int from_;
  const int to_;
  int pipe_[2] = {-1, -1};
  std::vector<char> buffer_;  // empty while splice(2) is used
  size_t begin_ = 0;
  size_t capacity_ = 0;
  size_t pending_ = 0;
  bool eof_ = false;
  bool pipe_full_ = false;
  bool finished_ = false;
};

enum class RelayEnd { kClosed, kBroken, kIdle, kCancelled };

// Copies both ways until both sides closed (half-closes passed on), one broke, `cancel` fired,
// or nothing moved for `idle`.
RelayEnd Relay(int client, int upstream, int cancel, std::chrono::milliseconds idle) {
  Direction up(client, upstream);
  Direction down(upstream, client);
  while (!(up.Finished() && down.Finished())) {
    const short client_events =
        static_cast<short>((up.WantsRead() ? POLLIN : 0) | (down.WantsWrite() ? POLLOUT : 0));
    const short upstream_events =
        static_cast<short>((down.WantsRead() ? POLLIN : 0) | (up.WantsWrite() ? POLLOUT : 0));
    // A socket nothing is asked of is left out: its POLLHUP would spin the loop.
    pollfd fds[3] = {{client_events != 0 ? client : -1, client_events, 0},
                     {upstream_events != 0 ? upstream : -1, upstream_events, 0},
                     {cancel, POLLIN, 0}};
    const int rc = poll(fds, 3, ClampMs(idle));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return RelayEnd::kBroken;
    }
    if (rc == 0) return RelayEnd::kIdle;
    if (fds[2].revents != 0) return RelayEnd::kCancelled;
    if ((fds[0].revents | fds[1].revents) & POLLNVAL) return RelayEnd::kBroken;
    if (!up.Pump() || !down.Pump()) return RelayEnd::kBroken;
  }
  return RelayEnd::kClosed;
}

}  // namespace

std::unique_ptr<Resolver> MakeSystemResolver(
    std::map<std::string, std::vector<IpAddress>> static_hosts, std::chrono::milliseconds timeout) {
  return std::make_unique<SystemResolver>(std::move(static_hosts), timeout);
}

// ---------------------------------------------------------------------------------------------
// The proxy.

namespace {

// One accepted connection. Its fds are shut down by RemoveBox (under the box's lock) and
// closed by its own thread only after it left the box's set.
struct Conn {
  int client = -1;
  int upstream = -1;
  int cancel = -1;  // an eventfd: readable once the box is going away
};

// True when `address` is one of this host's own: the kernel would pick it as the source of a
// connection to it (a local route). Asked with a UDP socket's connect, which sends nothing.
bool IsThisHost(const IpAddress& address, int port) {
  const int probe = socket(address.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  sockaddr_storage remote;
  const socklen_t remote_length = ToSockaddr(address, port == 0 ? 9 : port, remote);
  sockaddr_storage source{};
  socklen_t source_length = sizeof source;
  const bool local =
      connect(probe, reinterpret_cast<sockaddr*>(&remote), remote_length) == 0 &&
      getsockname(probe, reinterpret_cast<sockaddr*>(&source), &source_length) == 0 &&
      IpAddressOf(reinterpret_cast<sockaddr*>(&source)) == address;
  close(probe);
  return local;
}

// True when the peer of an accepted connection is within `range`.
bool PeerWithin(int fd, const Cidr& range) {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) return false;
  const std::optional<IpAddress> address = IpAddressOf(reinterpret_cast<sockaddr*>(&peer));
  return address.has_value() && range.Contains(*address);
}

struct Box {
  std::string id;
  std::string listen_ip;
  std::optional<Cidr> peers;  // where its connections must come from (its network), if known
  int lookups = 0;            // names being resolved for it (under mu)
  int listen_fd = -1;
  std::thread acceptor;

  std::mutex mu;
  std::condition_variable conns_cv;  // conns shrank
  BoxPolicy policy;
  std::deque<Refusal> refusals;
  std::uint64_t refusals_recorded = 0;  // all of them, kept or not
  std::set<Conn*> conns;
  bool closing = false;
};

}  // namespace

// Lock order: a box's mu before Impl::mu; Impl::mu is never held while taking a box's mu.
struct EgressProxy::Impl {
  Impl(ProxyOptions opts, common::Clock& clk) : options(std::move(opts)), clock(clk) {
    if (options.resolver == nullptr) {
      owned_resolver = MakeSystemResolver({});
      resolver = owned_resolver.get();
    } else {
      resolver = options.resolver;
    }
  }

  const ProxyOptions options;
  common::Clock& clock;
  std::unique_ptr<Resolver> owned_resolver;
  Resolver* resolver = nullptr;

  std::mutex admin_mu;  // serializes AddBox, RemoveBox and Stop

  std::mutex mu;
  std::condition_variable connections_cv;  // connections shrank
  std::map<std::string, std::shared_ptr<Box>> boxes;
  int connections = 0;
  int bound_port = 0;
  bool stopped = false;

  std::shared_ptr<Box> Find(const std::string& box_id) {
    std::lock_guard lock(mu);
    auto it = boxes.find(box_id);
    return it == boxes.end() ? nullptr : it->second;
  }

  absl::StatusOr<int> Listen(const IpAddress& address, const std::string& listen_ip) {
    sockaddr_storage storage;
    int port;
    {
      std::lock_guard lock(mu);
      port = bound_port != 0 ? bound_port : options.port;
    }
    const socklen_t length = ToSockaddr(address, port, storage);
    auto fail = [&](int fd, std::string_view what) {
      const int error = errno;
      if (fd >= 0) close(fd);
      return absl::UnavailableError(absl::StrCat("egress proxy: cannot ", AsAbsl(what), " on ",
                                                 listen_ip, ":", port, ": ", std::strerror(error)));
    };
    const int fd = socket(address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(fd, "open a socket");
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (address.v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) return fail(fd, "bind");
    if (listen(fd, SOMAXCONN) != 0) return fail(fd, "listen");
    if (port == 0) {
      sockaddr_storage bound{};
      socklen_t bound_length = sizeof(bound);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
        return fail(fd, "read the bound port");
      }
      std::lock_guard lock(mu);
      bound_port = ntohs(address.v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    return fd;
  }

  // Stops the box's listener and connections; returns once none of its threads runs.
  void Close(Box& box) {
    {
      std::lock_guard lock(box.mu);
      box.closing = true;
    }
    shutdown(box.listen_fd, SHUT_RDWR);  // wakes accept()
    if (box.acceptor.joinable()) box.acceptor.join();
    close(box.listen_fd);
    box.listen_fd = -1;
    std::unique_lock lock(box.mu);
    for (Conn* conn : box.conns) {
      shutdown(conn->client, SHUT_RDWR);
      if (conn->upstream >= 0) shutdown(conn->upstream, SHUT_RDWR);
      const uint64_t one = 1;
      (void)!write(conn->cancel, &one, sizeof(one));
    }
    box.conns_cv.wait(lock, [&] { return box.conns.empty(); });
  }

  void Accept(std::shared_ptr<Box> box) {
    BlockSigpipe();
    for (;;) {
      const int fd = accept4(box->listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        const int error = errno;
        if (error == EINTR || error == ECONNABORTED) continue;
        {
          std::lock_guard lock(box->mu);
          if (box->closing) return;
        }
        spdlog::warn("egress {}: box {}: accept: {}", options.spoke_name, box->id,
                     std::strerror(error));
        poll(nullptr, 0, 50);  // out of fds or memory: back off rather than spin
        continue;
      }
      if (box->peers.has_value() && !PeerWithin(fd, *box->peers)) {
        // Only the box's own network may use its proxy (another network's container, a LAN
        // host routed to the gateway: refused without a word or a record in the box's name).
        close(fd);
        continue;
      }
      SetNoDelay(fd);
      std::unique_lock lock(box->mu);
      if (box->closing) {
        close(fd);
        return;
      }
      bool over = box->conns.size() >= static_cast<size_t>(options.max_connections_per_box);
      {
        std::lock_guard total(mu);
        over = over || connections >= options.max_connections;
        if (!over) ++connections;
      }
      if (over) {
        lock.unlock();
        spdlog::warn("egress {}: box {}: too many connections, answered 503", options.spoke_name,
                     box->id);
        // Best effort without blocking the listener: the socket is non-blocking.
        const std::string answer = ErrorResponse(503, "too many connections");
        (void)!send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        shutdown(fd, SHUT_WR);
        char sink[4096];
        for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; ++i) {
        }
        close(fd);
        continue;
      }
      auto conn = std::make_unique<Conn>();
      conn->client = fd;
      conn->cancel = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (conn->cancel < 0) {
        close(fd);
        Finished();
        continue;
      }
      box->conns.insert(conn.get());
      try {
        std::thread([this, box, raw = conn.get()] { Serve(box, raw); }).detach();
        conn.release();
      } catch (const std::system_error& e) {
        box->conns.erase(conn.get());
        close(conn->client);
        close(conn->cancel);
        lock.unlock();
        spdlog::warn("egress {}: box {}: no thread for a connection: {}", options.spoke_name,
                     box->id, e.what());
        Finished();
      }
    }
  }

  void Finished() {
    std::lock_guard lock(mu);
    --connections;
    connections_cv.notify_all();
  }

  void Serve(std::shared_ptr<Box> box, Conn* conn) {
    Handle(*box, *conn);
    {
      std::lock_guard lock(box->mu);
      box->conns.erase(conn);
      box->conns_cv.notify_all();
    }
    box.reset();
    close(conn->client);
    if (conn->upstream >= 0) close(conn->upstream);
    close(conn->cancel);
    delete conn;
    Finished();  // the last touch of this proxy: Stop() may return after it
  }

  void Record(Box& box, const std::string& destination, int port, const std::string& rule) {
    spdlog::warn("egress {}: box {} refused {}:{}: {}", options.spoke_name, box.id, destination,
                 port, rule);
    std::lock_guard lock(box.mu);
    box.refusals.push_back({.time = clock.Now(),
                            .destination = destination,
                            .port = port,
                            .protocol = "tcp",
                            .rule = rule});
    ++box.refusals_recorded;
    while (box.refusals.size() > options.refusals_kept) box.refusals.pop_front();
  }

  // Answers an error and closes gently: the client gets a moment to read the answer while
  // what it still sends is drained, so that the close does not reset the connection first.
  void Reply(Conn& conn, int code, std::string_view text) {
    const auto deadline = SteadyClock::now() + kLingerTime;
    if (!WriteAll(conn.client, ErrorResponse(code, text), conn.cancel, deadline)) return;
    shutdown(conn.client, SHUT_WR);
    char sink[16384];
    size_t drained = 0;
    while (drained < kLingerBytes &&
           WaitFor(conn.client, POLLIN, conn.cancel, RemainingMs(deadline)) != 0) {
      const ssize_t n = recv(conn.client, sink, sizeof(sink), 0);
      if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) return;
      if (n > 0) drained += static_cast<size_t>(n);
    }
  }

  // Reads one request head (up to kMaxHeadBytes, within head_timeout). Returns the head's
  // length in `buffer` (the bytes after it are the client's first payload), or an answer.
  std::variant<size_t, Answer, std::monostate> ReadHead(Conn& conn, std::string& buffer) {
    const auto deadline = SteadyClock::now() + options.head_timeout;
    buffer.resize(kMaxHeadBytes);
    size_t size = 0;
    size_t line_start = 0;
    size_t scanned = 0;
    for (;;) {
      // Linear: each byte is looked at once; a line is empty when '\n' follows at once (or
      // after one '\r').
      for (; scanned < size; ++scanned) {
        if (buffer[scanned] != '\n') continue;
        const size_t length = scanned - line_start;
        if (length == 0 || (length == 1 && buffer[line_start] == '\r')) {
          if (line_start == 0) return Answer{400, "empty request line"};
          buffer.resize(size);
          return scanned + 1;
        }
        line_start = scanned + 1;
      }
      if (size == kMaxHeadBytes) return Answer{431, "request head larger than 16 KiB"};
      const short events = WaitFor(conn.client, POLLIN, conn.cancel, RemainingMs(deadline));
      if (events == 0) {
        if (RemainingMs(deadline) == 0) return Answer{408, "request head not received in time"};
        return std::monostate{};  // cancelled
      }
      const ssize_t n = recv(conn.client, buffer.data() + size, kMaxHeadBytes - size, 0);
      if (n == 0) return std::monostate{};
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return std::monostate{};
      }
      size += static_cast<size_t>(n);
    }
  }

  // Connects to the first address that answers. The socket is registered with the box
  // before it connects, so RemoveBox can shut it down.
  int Connect(Box& box, Conn& conn, const std::vector<IpAddress>& addresses, int port, int& error) {
    const auto deadline = SteadyClock::now() + options.connect_timeout;
    error = ETIMEDOUT;
    for (const IpAddress& address : addresses) {
      const int fd =
          socket(address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        error = errno;
        continue;
      }
      {
        std::lock_guard lock(box.mu);
        if (box.closing) {
          close(fd);
          error = ECANCELED;
          return -1;
        }
        conn.upstream = fd;
      }
      sockaddr_storage storage;
      const socklen_t length = ToSockaddr(address, port, storage);
      int rc = connect(fd, reinterpret_cast<sockaddr*>(&storage), length);
      if (rc != 0 && errno == EINPROGRESS) {
        if (WaitFor(fd, POLLOUT, conn.cancel, RemainingMs(deadline)) != 0) {
          socklen_t size = sizeof(error);
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
          rc = error == 0 ? 0 : -1;
        } else {
          error = RemainingMs(deadline) == 0 ? ETIMEDOUT : ECANCELED;
        }
      } else if (rc != 0) {
        error = errno;
      }
      if (rc == 0) {
        SetNoDelay(fd);
        return fd;
      }
      {
        std::lock_guard lock(box.mu);
        conn.upstream = -1;
      }
      close(fd);
      if (error == ECANCELED || RemainingMs(deadline) == 0) return -1;
    }
    return -1;
  }

  void Handle(Box& box, Conn& conn) {
    std::string buffer;
    const auto head = ReadHead(conn, buffer);
    if (const auto* answer = std::get_if<Answer>(&head)) {
      spdlog::info("egress {}: box {}: bad request: {}", options.spoke_name, box.id,
                   answer->reason);
      return Reply(conn, answer->code, answer->reason);
    }
    if (!std::holds_alternative<size_t>(head)) return;
    const size_t head_length = std::get<size_t>(head);

    Request request;
    if (auto answer = ParseHead(std::string_view(buffer).substr(0, head_length), request)) {
      spdlog::info("egress {}: box {}: bad request: {}", options.spoke_name, box.id,
                   answer->reason);
      return Reply(conn, answer->code, answer->reason);
    }
    const std::string destination = Printable(request.host);
    const int port = request.port;
    BoxPolicy policy;
    {
      std::lock_guard lock(box.mu);
      policy = box.policy;
    }
    auto refuse = [&](int code, const std::string& rule) {
      Record(box, destination, port, rule);
      Reply(conn, code, absl::StrCat("refused ", destination, ":", port, ": ", rule));
    };

    const Decision by_name = DecideName(options.policy, policy, request.host, port);
    if (!by_name.allowed) return refuse(403, by_name.rule);
    std::vector<IpAddress> addresses;
    if (const auto literal = ParseIp(request.host)) {
      addresses.push_back(*literal);
    } else {
      {
        // One box cannot hold the spoke's resolver: its own share of lookups in flight.
        std::lock_guard lock(box.mu);
        if (box.lookups >= kMaxLookupsPerBox) {
          Record(box, destination, port, "too many names being resolved for this box");
          return Reply(conn, 503, "too many names being resolved for this box; try again");
        }
        ++box.lookups;
      }
      auto resolved = resolver->Resolve(request.host);
      {
        std::lock_guard lock(box.mu);
        --box.lookups;
      }
      if (!resolved.ok() || resolved->empty()) {
        spdlog::info("egress {}: box {}: {} did not resolve: {}", options.spoke_name, box.id,
                     destination,
                     resolved.ok() ? std::string("no address") : resolved.status().ToString());
        return refuse(502, "name did not resolve");
      }
      addresses = *std::move(resolved);
    }
    // Every address first: one denied address refuses the name, before any packet is sent.
    Decision decision = by_name;
    for (const IpAddress& address : addresses) {
      decision = DecideAddress(options.policy, policy, address, port, by_name);
      if (!decision.allowed) {
        spdlog::info("egress {}: box {}: {} resolved to {}", options.spoke_name, box.id,
                     destination, address.ToString());
        return refuse(403, decision.rule);
      }
    }

    // An address of this host the policy did not know (a box network made since the spoke
    // started, an address that came later): never connected to.
    for (const IpAddress& address : addresses) {
      if (IsThisHost(address, port)) {
        spdlog::info("egress {}: box {}: {} is an address of this host", options.spoke_name, box.id,
                     address.ToString());
        return refuse(403, "always denied: an address of the spoke's host");
      }
    }
    int error = 0;
    const int upstream = Connect(box, conn, addresses, port, error);
    if (upstream < 0) {
      if (error == ECANCELED) return;
      if (error == EPERM || error == EACCES) {
        return refuse(502, "connection refused by the host's rules");
      }
      spdlog::info("egress {}: box {}: cannot connect to {}:{}: {}", options.spoke_name, box.id,
                   destination, port, std::strerror(error));
      return Reply(
          conn, 502,
          absl::StrCat("cannot connect to ", destination, ":", port, ": ", std::strerror(error)));
    }
    spdlog::info("egress {}: box {} connected to {}:{} ({})", options.spoke_name, box.id,
                 destination, port, decision.rule);

    const std::string_view payload = std::string_view(buffer).substr(head_length);
    const auto deadline = SteadyClock::now() + options.idle_timeout;
    if (request.connect) {
      if (!WriteAll(conn.client, "HTTP/1.1 200 Connection established\r\n\r\n", conn.cancel,
                    deadline)) {
        return;
      }
    } else if (!WriteAll(upstream, UpstreamHead(request), conn.cancel, deadline)) {
      return;
    }
    if (!payload.empty() && !WriteAll(upstream, payload, conn.cancel, deadline)) return;
    buffer = std::string();  // not held for the connection's life

    if (Relay(conn.client, upstream, conn.cancel, options.idle_timeout) == RelayEnd::kIdle) {
      spdlog::info("egress {}: box {}: {}:{} idle for {} ms, closed", options.spoke_name, box.id,
                   destination, port, options.idle_timeout.count());
    }
  }
};

std::optional<IpAddress> IpAddressOf(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  IpAddress out;
  if (address->sa_family == AF_INET) {
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
  } else if (address->sa_family == AF_INET6) {
    out.v6 = true;
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
  } else {
    return std::nullopt;
  }
  return out;
}

EgressProxy::EgressProxy(ProxyOptions options, common::Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}

EgressProxy::~EgressProxy() { Stop(); }

absl::Status EgressProxy::AddBox(const std::string& box_id, const std::string& listen_ip,
                                 BoxPolicy policy, const std::string& peers) {
  std::lock_guard admin(impl_->admin_mu);
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return absl::FailedPreconditionError("egress proxy: stopped");
  }
  const auto address = ParseIp(listen_ip);
  if (!address) {
    return absl::InvalidArgumentError(absl::StrCat(
        "egress proxy: box ", box_id, ": listen address '", listen_ip, "' is not an IP address"));
  }
  std::optional<Cidr> peer_range;
  if (!peers.empty()) {
    auto range = ParseCidr(peers);
    if (!range.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("egress proxy: box ", box_id, ": peers: ", range.status().message()));
    }
    peer_range = *range;
  }
  std::shared_ptr<Box> old = impl_->Find(box_id);
  if (old != nullptr && old->listen_ip == listen_ip &&
      old->peers.has_value() == peer_range.has_value()) {
    std::lock_guard lock(old->mu);
    old->policy = std::move(policy);
    return absl::OkStatus();
  }
  LLMBOX_ASSIGN_OR_RETURN(const int fd, impl_->Listen(*address, listen_ip));
  auto box = std::make_shared<Box>();
  box->id = box_id;
  box->listen_ip = listen_ip;
  box->peers = peer_range;
  box->listen_fd = fd;
  box->policy = std::move(policy);
  if (old != nullptr) {
    impl_->Close(*old);
    std::lock_guard lock(old->mu);
    box->refusals = std::move(old->refusals);
    box->refusals_recorded = old->refusals_recorded;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->boxes[box_id] = box;
  }
  try {
    box->acceptor = std::thread([impl = impl_.get(), box] { impl->Accept(box); });
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(impl_->mu);
      impl_->boxes.erase(box_id);
    }
    close(fd);
    return absl::UnavailableError(absl::StrCat("egress proxy: box ", box_id, ": ", e.what()));
  }
  spdlog::info("egress {}: box {}: proxy listening on {}:{}", impl_->options.spoke_name, box_id,
               listen_ip, port());
  return absl::OkStatus();
}

absl::Status EgressProxy::SetPolicy(const std::string& box_id, BoxPolicy policy) {
  std::shared_ptr<Box> box = impl_->Find(box_id);
  if (box == nullptr) {
    return absl::NotFoundError(absl::StrCat("egress proxy: no box ", box_id));
  }
  std::lock_guard lock(box->mu);
  box->policy = std::move(policy);
  return absl::OkStatus();
}

void EgressProxy::RemoveBox(const std::string& box_id) {
  std::lock_guard admin(impl_->admin_mu);
  std::shared_ptr<Box> box;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->boxes.find(box_id);
    if (it == impl_->boxes.end()) return;
    box = std::move(it->second);
    impl_->boxes.erase(it);
  }
  impl_->Close(*box);
}

std::vector<Refusal> EgressProxy::Refusals(const std::string& box_id) const {
  std::shared_ptr<Box> box = impl_->Find(box_id);
  if (box == nullptr) return {};
  std::lock_guard lock(box->mu);
  return {box->refusals.begin(), box->refusals.end()};
}

std::uint64_t EgressProxy::RefusalCount(const std::string& box_id) const {
  std::shared_ptr<Box> box = impl_->Find(box_id);
  if (box == nullptr) return 0;
  std::lock_guard lock(box->mu);
  return box->refusals_recorded;
}

int EgressProxy::port() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bound_port != 0 ? impl_->bound_port : impl_->options.port;
}

void EgressProxy::Stop() {
  std::lock_guard admin(impl_->admin_mu);
  std::map<std::string, std::shared_ptr<Box>> boxes;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopped = true;
    boxes.swap(impl_->boxes);
  }
  for (auto& [id, box] : boxes) impl_->Close(*box);
  std::unique_lock lock(impl_->mu);
  impl_->connections_cv.wait(lock, [&] { return impl_->connections == 0; });
}

}  // namespace llmbox::spoke::egress
