#include "spoke/docker/hijack.h"

#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/absl_compat.h"
#include "common/status.h"
#include "spoke/docker/http_errors.h"

namespace llmbox::spoke::docker {

using common::AsAbsl;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxHeadBytes = 64u << 10;
// How long a write may wait for the engine to take console input.
constexpr milliseconds kWriteTimeout{30'000};

milliseconds Left(Clock::time_point deadline) {
  return std::max(milliseconds(0),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

// Waits until `fd` is ready for `events` or `timeout` passes. True when ready (or when poll
// itself failed, so that the following call reports the error).
bool WaitFd(int fd, short events, milliseconds timeout) {
  pollfd p{fd, events, 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int rc = ::poll(&p, 1, static_cast<int>(Left(deadline).count()));
    if (rc >= 0) return rc > 0;
    if (errno != EINTR) return true;
  }
}

// OpenSSL's queued errors, oldest first, as one line (and the queue emptied).
std::string SslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    const char* reason = ERR_reason_error_string(e);
    absl::StrAppend(&text, text.empty() ? "" : "; ", reason != nullptr ? reason : buf);
  }
  return text;
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE on a connection the engine
// has closed, and that signal would end the spoke. It is blocked around each OpenSSL call and
// a pending one consumed; the call itself reports the closed connection.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigpipe() {
    const int saved_errno = errno;
    sigset_t pending;
    if (!sigismember(&old_, SIGPIPE) && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE)) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    errno = saved_errno;
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Transports. A socket (unix or TCP) is non-blocking; every wait is a poll with a deadline.

class HijackedStream::Transport {
 public:
  Transport(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  virtual ~Transport() { Close(); }

  // Sends all of `data`.
  virtual absl::Status Send(std::string_view data) {
    const auto deadline = Clock::now() + kWriteTimeout;
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        LLMBOX_RETURN_IF_ERROR(WaitWritable(deadline));
        continue;
      }
      if (n < 0) return Errno("write");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // Receives up to `size` bytes, waiting up to `timeout` for some: 0 when none came in time,
  // OutOfRange at the end of the stream.
  virtual absl::StatusOr<size_t> Recv(char* buf, size_t size, milliseconds timeout) {
    if (!WaitFd(fd_, POLLIN, timeout)) return 0;
    ssize_t n = ::recv(fd_, buf, size, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n < 0) return Errno("read");
    if (n == 0) return absl::OutOfRangeError(absl::StrCat("docker (", name_, "): console ended"));
    return static_cast<size_t>(n);
  }

  // Ends our direction of the stream (the container's stdin sees EOF); reading goes on.
  virtual absl::Status ShutdownWrite() {
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) return Errno("half-close");
    return absl::OkStatus();
  }

  // Ends the connection both ways: a read or write waiting on another thread returns. The
  // socket (and TLS state) stay allocated until destruction, so that thread never touches
  // freed memory.
  void Shutdown() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

  void Close() {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

 protected:
  absl::Status Errno(std::string_view what) const {
    return absl::UnavailableError(
        absl::StrCat("docker (", name_, "): console ", AsAbsl(what), ": ", std::strerror(errno)));
  }
  absl::Status WaitWritable(Clock::time_point deadline) const {
    if (Left(deadline).count() == 0 || !WaitFd(fd_, POLLOUT, Left(deadline))) {
      return absl::DeadlineExceededError(absl::StrCat("docker (", name_,
                                                      "): the engine took no console input for ",
                                                      kWriteTimeout.count(), " ms"));
    }
    return absl::OkStatus();
  }

  int fd_;
  const std::string name_;
};

namespace {

// TLS over the TCP socket: the engine's certificate must chain to the CA and be for the host;
// our client certificate is presented. SSL_read and SSL_write on one connection must not run
// at once, so a mutex guards every OpenSSL call (never a wait), letting one thread read while
// another writes.
class TlsTransport final : public HijackedStream::Transport {
 public:
  TlsTransport(int fd, std::string name, std::string host)
      : Transport(fd, std::move(name)), host_(std::move(host)) {}
  ~TlsTransport() override {
    std::lock_guard lock(mu_);
    ssl_.reset();
  }

  // Loads the credentials and runs the handshake by `deadline`.
  absl::Status Handshake(const HijackTarget& target, Clock::time_point deadline) {
    ERR_clear_error();
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (ctx == nullptr) return absl::InternalError("docker: SSL_CTX_new failed: " + SslErrors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    // An engine that closes the connection without a close_notify has ended the stream.
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    const int ca_loaded =
        target.tls_ca_file.empty()
            ? SSL_CTX_set_default_verify_paths(ctx.get())
            : SSL_CTX_load_verify_locations(ctx.get(), target.tls_ca_file.c_str(), nullptr);
    if (ca_loaded != 1) {
      return absl::InvalidArgumentError(absl::StrCat("docker (", name_,
                                                     "): cannot load the CA file \"",
                                                     target.tls_ca_file, "\": ", SslErrors()));
    }
    if (!target.tls_cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx.get(), target.tls_cert_file.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx.get(), target.tls_key_file.c_str(), SSL_FILETYPE_PEM) !=
              1 ||
          SSL_CTX_check_private_key(ctx.get()) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "docker (", name_, "): cannot load the client certificate \"", target.tls_cert_file,
            "\" with its key \"", target.tls_key_file, "\": ", SslErrors()));
      }
    }
    ssl_.reset(SSL_new(ctx.get()));
    if (ssl_ == nullptr) return absl::InternalError("docker: SSL_new failed: " + SslErrors());
    SSL* ssl = ssl_.get();
    SSL_set_fd(ssl, fd_);
    unsigned char ip[sizeof(in6_addr)];
    const bool is_ip =
        inet_pton(AF_INET, host_.c_str(), ip) == 1 || inet_pton(AF_INET6, host_.c_str(), ip) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host_.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, host_.c_str());
      SSL_set1_host(ssl, host_.c_str());
    }
    for (;;) {
      int rc;
      {
        NoSigpipe no_sigpipe;
        rc = SSL_connect(ssl);
      }
      if (rc == 1) return absl::OkStatus();
      const int err = SSL_get_error(ssl, rc);
      if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) &&
          Left(deadline).count() > 0 &&
          WaitFd(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, Left(deadline))) {
        continue;
      }
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return absl::DeadlineExceededError(absl::StrCat(
            "docker (", name_, "): the TLS handshake with ", host_, " did not finish in time"));
      }
      return Failure("TLS handshake", err);
    }
  }

  absl::Status Send(std::string_view data) override {
    const auto deadline = Clock::now() + kWriteTimeout;
    while (!data.empty()) {
      int rc, err;
      {
        std::lock_guard lock(mu_);
        NoSigpipe no_sigpipe;
        if (ssl_ == nullptr) return Closed();
        ERR_clear_error();
        rc = SSL_write(ssl_.get(), data.data(),
                       static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
        err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
      }
      if (rc > 0) {
        data.remove_prefix(static_cast<size_t>(rc));
      } else if (err == SSL_ERROR_WANT_WRITE) {
        LLMBOX_RETURN_IF_ERROR(WaitWritable(deadline));
      } else if (err == SSL_ERROR_WANT_READ) {
        WaitFd(fd_, POLLIN, std::min(Left(deadline), milliseconds(100)));
        if (Left(deadline).count() == 0) return WaitWritable(deadline);
      } else {
        return WriteFailure(err);
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Recv(char* buf, size_t size, milliseconds timeout) override {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      int rc, err;
      {
        std::lock_guard lock(mu_);
        NoSigpipe no_sigpipe;
        if (ssl_ == nullptr) return Closed();
        ERR_clear_error();
        rc = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(size, 1 << 20)));
        err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
      }
      if (rc > 0) return static_cast<size_t>(rc);
      if (err == SSL_ERROR_ZERO_RETURN) {
        return absl::OutOfRangeError(absl::StrCat("docker (", name_, "): console ended"));
      }
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        return Failure("TLS read", err);
      }
      // Only part of a record came (or nothing): wait for more within the timeout.
      if (Left(deadline).count() == 0 ||
          !WaitFd(fd_, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, Left(deadline))) {
        return 0;
      }
    }
  }

  // close_notify ends the engine's reading (Go's TLS reads it as EOF), then the TCP FIN.
  absl::Status ShutdownWrite() override {
    {
      std::lock_guard lock(mu_);
      NoSigpipe no_sigpipe;
      if (ssl_ == nullptr) return Closed();
      ERR_clear_error();
      const int rc = SSL_shutdown(ssl_.get());
      if (rc < 0) {
        const int err = SSL_get_error(ssl_.get(), rc);
        if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
          return Failure("TLS close_notify", err);
        }
      }
    }
    return Transport::ShutdownWrite();
  }

 private:
  absl::Status Closed() const {
    return absl::FailedPreconditionError(absl::StrCat("docker (", name_, "): console is closed"));
  }

  // With TLS 1.3 the engine checks our certificate after our handshake has finished, so its
  // refusal can come as a reset under our first write while its alert waits unread: read
  // that alert, since it says what is wrong.
  absl::Status WriteFailure(int err) {
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      const int write_errno = errno;
      int read_err = SSL_ERROR_NONE;
      {
        std::lock_guard lock(mu_);
        NoSigpipe no_sigpipe;
        char ignored[512];
        const int rc = SSL_read(ssl_.get(), ignored, sizeof(ignored));
        if (rc <= 0) read_err = SSL_get_error(ssl_.get(), rc);
      }
      if (read_err == SSL_ERROR_SSL && ERR_peek_error() != 0) return Failure("TLS write", read_err);
      ERR_clear_error();
      errno = write_errno;
    }
    return Failure("TLS write", err);
  }

  // What went wrong, in words that say what to fix.
  absl::Status Failure(std::string_view what, int err) {
    const int saved_errno = errno;
    long verify = X509_V_OK;
    {
      std::lock_guard lock(mu_);
      if (ssl_ != nullptr) verify = SSL_get_verify_result(ssl_.get());
    }
    std::string detail = SslErrors();
    errno = saved_errno;
    if (detail.empty()) {
      detail = err == SSL_ERROR_SYSCALL && errno != 0 ? std::strerror(errno)
                                                      : "the engine closed the connection";
    }
    std::string hint;
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      hint = absl::StrCat("the engine's certificate is not for ", host_, "; ", kHostHint);
    } else if (verify != X509_V_OK) {
      hint = absl::StrCat("the engine's certificate does not verify (",
                          X509_verify_cert_error_string(verify), "); ", kCaHint);
    } else if (RefusedClientCertificate(detail)) {
      hint = absl::StrCat("the engine refused our client certificate; ", kClientCertHint);
    } else if (err == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE)) {
      hint = absl::StrCat(kResetAfterHandshake, "; ", kClientCertHint);
    }
    return absl::UnavailableError(absl::StrCat("docker (", name_, "): console ", AsAbsl(what),
                                               " with ", host_, " failed: ", detail,
                                               hint.empty() ? "" : "; ", hint));
  }

  const std::string host_;
  std::mutex mu_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

// Connects a non-blocking socket to `addr` by `deadline`. Returns 0 or an errno value.
int ConnectBy(int fd, const sockaddr* addr, socklen_t len, Clock::time_point deadline) {
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  if (!WaitFd(fd, POLLOUT, Left(deadline))) return ETIMEDOUT;
  int error = 0;
  socklen_t size = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
  return error;
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<HijackedStream::Transport>> ConnectUnix(
    const HijackTarget& target, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (target.unix_socket.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("docker: socket path is longer than ", sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, target.unix_socket.c_str(), target.unix_socket.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("docker: socket(): ", std::strerror(errno)));
  auto transport = std::make_unique<HijackedStream::Transport>(fd, target.name);
  if (int error = ConnectBy(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr), deadline)) {
    return absl::UnavailableError(
        absl::StrCat("docker (", target.name, "): console connect: ", std::strerror(error)));
  }
  return transport;
}

[[nodiscard]] absl::StatusOr<std::unique_ptr<HijackedStream::Transport>> ConnectTcp(
    const HijackTarget& target, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(target.port);
  if (int rc = ::getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("docker (", target.name, "): cannot resolve ",
                                               target.host, ": ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, freeaddrinfo);
  int last_error = ENOENT;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    std::unique_ptr<HijackedStream::Transport> transport;
    if (target.tls) {
      transport = std::make_unique<TlsTransport>(fd, target.name, target.host);
    } else {
      transport = std::make_unique<HijackedStream::Transport>(fd, target.name);
    }
    last_error = ConnectBy(fd, a->ai_addr, a->ai_addrlen, deadline);
    if (last_error != 0) continue;
    const int one = 1;  // console keystrokes go out at once
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (target.tls) {
      LLMBOX_RETURN_IF_ERROR(
          static_cast<TlsTransport*>(transport.get())->Handshake(target, deadline));
    }
    return transport;
  }
  return absl::UnavailableError(absl::StrCat("docker (", target.name, "): console connect to ",
                                             target.host, ":", target.port, ": ",
                                             std::strerror(last_error)));
}

}  // namespace

[[nodiscard]] absl::Status ParseEngineUrl(std::string_view url, HijackTarget* target) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("docker: the engine URL \"", AsAbsl(url), "\" ",
                                                   AsAbsl(why), " (expected https://host:port)"));
  };
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("is not https://");
  std::string_view rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t colon;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return bad("has no port");
    }
    target->host = std::string(rest.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("has no port");
    target->host = std::string(rest.substr(0, colon));
  }
  int port = 0;
  if (target->host.empty() || target->host.find('/') != std::string::npos)
    return bad("has no host");
  if (!absl::SimpleAtoi(AsAbsl(rest.substr(colon + 1)), &port) || port < 1 || port > 65535) {
    return bad("has no valid port");
  }
  target->port = port;
  target->tls = true;
  return absl::OkStatus();
}

HijackedStream::HijackedStream(std::unique_ptr<Transport> transport, std::string name, bool tty)
    : transport_(std::move(transport)), name_(std::move(name)), decoder_(tty) {}

HijackedStream::~HijackedStream() = default;

absl::StatusOr<std::unique_ptr<HijackedStream>> HijackedStream::Open(const HijackTarget& target,
                                                                     const std::string& path,
                                                                     const std::string& body,
                                                                     bool tty,
                                                                     milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::unique_ptr<Transport> transport;
  if (!target.unix_socket.empty()) {
    LLMBOX_ASSIGN_OR_RETURN(transport, ConnectUnix(target, deadline));
  } else {
    LLMBOX_ASSIGN_OR_RETURN(transport, ConnectTcp(target, deadline));
  }
  std::unique_ptr<HijackedStream> conn(new HijackedStream(std::move(transport), target.name, tty));
  const std::string host = target.unix_socket.empty() ? target.host : "docker";
  LLMBOX_RETURN_IF_ERROR(conn->transport_->Send(absl::StrCat(
      "POST ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n",
      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body)));

  std::string head;
  size_t end = std::string::npos;
  char buf[4096];
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (Left(deadline).count() == 0) {
      return absl::DeadlineExceededError(absl::StrCat("docker (", target.name,
                                                      "): no reply to the console upgrade within ",
                                                      timeout.count(), " ms"));
    }
    auto n = conn->transport_->Recv(buf, sizeof(buf), Left(deadline));
    if (absl::IsOutOfRange(n.status())) {
      return absl::UnavailableError(
          absl::StrCat("docker (", target.name, "): the engine closed the console connection"));
    }
    LLMBOX_RETURN_IF_ERROR(n.status());
    head.append(buf, *n);
    if (head.size() > kMaxHeadBytes) {
      return absl::InternalError(absl::StrCat("docker (", target.name, "): oversized reply head"));
    }
  }
  // "HTTP/1.1 101 UPGRADED"
  long http = 0;
  if (head.size() > 12) absl::SimpleAtoi(head.substr(9, 3), &http);
  std::string rest = head.substr(end + 4);
  if (http != 101 && http != 200) {
    // The error body follows; read what comes quickly (it is short) for the message.
    const auto body_deadline = Clock::now() + milliseconds(500);
    while (rest.size() < 8192 && Left(body_deadline).count() > 0) {
      auto n = conn->transport_->Recv(buf, sizeof(buf), Left(body_deadline));
      if (!n.ok() || *n == 0) break;
      rest.append(buf, *n);
    }
    return StatusForHttp(http, absl::StrCat("docker (", target.name, "): ", EngineMessage(rest)));
  }
  conn->early_ = std::move(rest);
  return conn;
}

absl::Status HijackedStream::Write(std::string_view data) {
  if (transport_ == nullptr) return absl::FailedPreconditionError("docker: console is closed");
  return transport_->Send(data);
}

absl::Status HijackedStream::CloseStdin() {
  if (transport_ == nullptr) return absl::FailedPreconditionError("docker: console is closed");
  return transport_->ShutdownWrite();
}

void HijackedStream::Close() {
  closed_ = true;
  if (transport_ != nullptr) transport_->Shutdown();
}

absl::Status HijackedStream::ReadInto(milliseconds timeout, std::string* out, std::string* err) {
  if (!early_.empty()) {
    std::string early = std::exchange(early_, std::string());
    return decoder_.Feed(early, out, err);
  }
  if (eof_ || closed_ || transport_ == nullptr) {
    return absl::OutOfRangeError("docker: console stream ended");
  }
  char buf[65536];
  auto n = transport_->Recv(buf, sizeof(buf), timeout);
  // A Close on another thread ends the stream, whatever the connection said as it went.
  if (absl::IsOutOfRange(n.status()) || (!n.ok() && closed_)) {
    eof_ = true;
    return absl::OutOfRangeError("docker: console stream ended");
  }
  LLMBOX_RETURN_IF_ERROR(n.status());
  return decoder_.Feed(std::string_view(buf, *n), out, err);
}

absl::StatusOr<std::string> HijackedStream::Read(milliseconds timeout) {
  std::string out;
  absl::Status st = ReadInto(timeout, &out, &out);
  if (!st.ok() && !(absl::IsOutOfRange(st) && !out.empty())) return st;
  return out;
}

}  // namespace llmbox::spoke::docker
