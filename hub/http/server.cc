// hub/http/server.cc
//
// One coroutine per connection on a strand of a shared io_context. The coroutine reads a
// request, hands it to the worker pool and then only waits: the Responder's calls run as small
// coroutines on the same strand (so they never race the connection's own I/O), and the
// worker blocks until its bytes are written, which gives streams backpressure for free.
#include "hub/http/server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/absl_compat.h"
#include "common/status.h"

namespace llmbox::hub::http {

namespace {

using common::AsAbsl;

// Debian's Abseil takes absl::string_view only; Beast hands out boost string_views.
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(AsAbsl(a), AsAbsl(b));
}

}  // namespace

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// After an error answer we stop sending but keep reading for a while: closing a socket with
// unread input makes the kernel send RST, which can destroy the answer before the client
// reads it. Clients that upload a whole oversized body before reading (Node's fetch does)
// fail with EPIPE unless the rest of the body is drained, so drain up to 16 MiB (bounded by
// the timeout too).
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr std::size_t kLingerBytes = 16 << 20;
constexpr std::size_t kReadChunk = 4096;
// Connections beyond max_connections get a 503; these bound how many such answers are in
// flight, so a flood cannot turn the 503s themselves into an unbounded cost.
constexpr int kMaxRejecting = 64;
// How long Stop waits for force-closed connections to unwind (they only need to observe
// errors on closed sockets).
constexpr std::chrono::seconds kUnwindWait{5};

// Responders may outlive the server. `alive` turns false before the io_context goes away;
// a Responder call holds `mu` shared while it touches the io_context.
struct Life {
  std::shared_mutex mu;
  bool alive = true;
};

enum class Framing { kContentLength, kChunked, kUntilClose };

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Handler-supplied headers go on the wire verbatim, so CR/LF in them would let a value
// smuggle headers or a second response.
bool IsSafeHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsTokenChar(c)) return false;
  }
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// The status line and headers of a response. `close` is in/out: true when the server will
// close after this response; the handler can set it with `Connection: close`.
std::string SerializeHead(int status, const Headers& headers, Framing framing,
                          std::size_t content_length, bool& close) {
  if (status < 200 || status > 999) {
    spdlog::warn("http: handler answered with status {}; sending 500 instead", status);
    status = 500;
  }
  const std::string_view reason = bhttp::obsolete_reason(bhttp::int_to_status(status));
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ",
                                 AsAbsl(reason == "<unknown-status>" ? "" : reason), "\r\n");
  bool has_server = false;
  for (const auto& [name, value] : headers) {
    if (!IsSafeHeader(name, value)) {
      spdlog::warn("http: dropping response header '{}': not a token or CR/LF in the value",
                   absl::CEscape(AsAbsl(name)));
      continue;
    }
    // Framing is the server's job; a handler's own Content-Length could contradict the body.
    if (EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding")) {
      continue;
    }
    if (EqualsIgnoreCase(name, "connection")) {
      if (EqualsIgnoreCase(value, "close")) close = true;
      continue;
    }
    if (EqualsIgnoreCase(name, "server")) has_server = true;
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (!has_server) out += "Server: llmbox\r\n";
  switch (framing) {
    case Framing::kContentLength:
      // RFC 9110 8.6: no Content-Length on 204.
      if (status != 204) absl::StrAppend(&out, "Content-Length: ", content_length, "\r\n");
      break;
    case Framing::kChunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
    case Framing::kUntilClose:
      close = true;
      break;
  }
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string HostPort(std::string_view address, int port) {
  if (address.find(':') != std::string_view::npos) {
    return absl::StrCat("[", AsAbsl(address), "]:", port);
  }
  return absl::StrCat(AsAbsl(address), ":", port);
}

// The status a failed request read deserves, or 0 to close without answering (the peer left,
// timed out, or the TLS layer failed: there is nobody to read an answer).
int StatusForReadError(const beast::error_code& ec, std::string& reason) {
  if (ec == bhttp::error::body_limit) {
    reason = "request body too large";
    return 413;
  }
  if (ec == bhttp::error::header_limit) {
    reason = "request header fields too large";
    return 431;
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
      ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) {
    return 0;
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
    reason = absl::StrCat("malformed request: ", ec.message());
    return 400;
  }
  return 0;
}

class Connection;

// Everything HttpServer::Impl is; a separate class because Connection must name it and
// HttpServer::Impl is private.
class Server {
 public:
  Server(ServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {
    if (!options_.error_response) {
      options_.error_response = [](int status, std::string_view reason) {
        return Response{.status = status,
                        .headers = {{"Content-Type", "text/plain; charset=utf-8"}},
                        .body = absl::StrCat(AsAbsl(reason), "\n")};
      };
    }
  }
  ~Server() { Stop(std::chrono::milliseconds(0)); }

  absl::Status Start();
  int BoundPort() const { return bound_port_.load(); }
  void Stop(std::chrono::milliseconds grace);

  // For connections.
  const ServerOptions& options() const { return options_; }
  const std::shared_ptr<Life>& life() const { return life_; }
  bool stopping() const { return stopping_.load(); }
  Response ErrorResponse(int status, std::string_view reason) const {
    return options_.error_response(status, reason);
  }
  // `line` names the request in log lines (ServerOptions::loggable_path).
  void Dispatch(Request request, std::shared_ptr<Responder> responder, std::string line);
  void Unregister(Connection* connection, bool counted);

 private:
  absl::Status LoadTls();
  asio::awaitable<void> AcceptLoop();
  bool Register(const std::shared_ptr<Connection>& connection, bool counted);
  // Posts `fn` onto every live connection's strand.
  template <typename Fn>
  void ForEachConnection(Fn fn);

  ServerOptions options_;
  Handler handler_;
  std::shared_ptr<Life> life_ = std::make_shared<Life>();

  // Declared before everything that holds its executors, so it is destroyed after them.
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::ssl::context> tls_;
  std::unique_ptr<asio::thread_pool> workers_;
  std::unique_ptr<asio::thread_pool> priority_workers_;  // ServerOptions::priority_paths
  std::vector<std::thread> io_threads_;

  std::atomic<int> bound_port_{0};
  std::atomic<bool> stopping_{false};
  std::mutex state_mu_;  // Start and Stop
  bool started_ = false;
  bool stopped_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  int active_ = 0;     // counted toward max_connections; accept loop reads it
  int rejecting_ = 0;  // connections answering 503
};

using Stream = std::variant<beast::tcp_stream, beast::ssl_stream<beast::tcp_stream>>;

Stream MakeStream(tcp::socket socket, asio::ssl::context* tls) {
  if (tls != nullptr) return Stream(std::in_place_index<1>, std::move(socket), *tls);
  return Stream(std::in_place_index<0>, std::move(socket));
}

std::string PeerAddress(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "";
  asio::ip::address address = peer.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

// One accepted socket. Everything but the constructor and `gone_` runs on the strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket, asio::ssl::context* tls, bool reject)
      : server_(server),
        remote_address_(PeerAddress(socket)),
        done_signal_(socket.get_executor()),
        stream_(MakeStream(std::move(socket), tls)),
        reject_(reject) {}

  asio::any_io_executor executor() { return Tcp().get_executor(); }
  const std::shared_ptr<std::atomic<bool>>& gone() const { return gone_; }

  static asio::awaitable<void> Run(std::shared_ptr<Connection> self) {
    try {
      co_await self->Serve();
    } catch (const std::exception& e) {
      spdlog::warn("http: connection from {}: {}", self->remote_address_, e.what());
    }
    self->MarkGone();
    self->Tcp().close();
    self->server_.Unregister(self.get(), !self->reject_);
  }

  // Stop: a connection waiting for its next request, or only lingering after its last
  // answer, has nothing in flight.
  void CloseIfIdle() {
    if (phase_ == Phase::kIdle || phase_ == Phase::kClosing) Tcp().close();
  }
  // Stop after the grace period.
  void ForceClose() {
    MarkGone();
    Tcp().close();
  }

  // The Responder's operations. Each checks that its exchange is still the current one, so a
  // late call from a stale Responder cannot write into another request's answer.
  static asio::awaitable<bool> DoRespond(std::shared_ptr<Connection> self, std::uint64_t id,
                                         Response response) {
    if (!self->IsCurrent(id) || self->head_sent_) co_return false;
    self->head_sent_ = true;
    bool close = self->close_after_ || self->server_.stopping();
    const std::string head = SerializeHead(response.status, response.headers,
                                           Framing::kContentLength, response.body.size(), close);
    self->close_after_ = close;
    std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head),
        self->head_request_ ? asio::const_buffer() : asio::buffer(response.body)};
    const bool ok = co_await self->Send(buffers);
    self->EndExchange();
    co_return ok;
  }

  static asio::awaitable<bool> DoStartStream(std::shared_ptr<Connection> self, std::uint64_t id,
                                             int status, Headers headers) {
    if (!self->IsCurrent(id) || self->head_sent_) co_return false;
    self->head_sent_ = true;
    self->streaming_ = true;
    bool close = self->close_after_ || self->server_.stopping();
    // HTTP/1.0 has no chunked encoding: the body ends where the connection does.
    const Framing framing = self->version_ < 11 ? Framing::kUntilClose : Framing::kChunked;
    const std::string head = SerializeHead(status, headers, framing, 0, close);
    self->close_after_ = close;
    co_return co_await self->Send(asio::buffer(head));
  }

  static asio::awaitable<bool> DoWrite(std::shared_ptr<Connection> self, std::uint64_t id,
                                       std::string chunk) {
    if (!self->IsCurrent(id) || !self->streaming_) co_return false;
    // An empty chunk would end the stream.
    if (chunk.empty() || self->head_request_) co_return true;
    if (self->version_ < 11) co_return co_await self->Send(asio::buffer(chunk));
    const std::string size = absl::StrCat(absl::Hex(chunk.size()), "\r\n");
    std::array<asio::const_buffer, 3> buffers{asio::buffer(size), asio::buffer(chunk),
                                              asio::buffer("\r\n", 2)};
    co_return co_await self->Send(buffers);
  }

  static asio::awaitable<bool> DoFinish(std::shared_ptr<Connection> self, std::uint64_t id) {
    if (!self->IsCurrent(id) || !self->streaming_) co_return false;
    bool ok = true;
    if (self->version_ >= 11 && !self->head_request_) {
      ok = co_await self->Send(asio::buffer("0\r\n\r\n", 5));
    }
    self->EndExchange();
    co_return ok;
  }

  // The handler let go of its Responder without finishing the answer.
  static asio::awaitable<bool> DoAbandon(std::shared_ptr<Connection> self, std::uint64_t id) {
    if (!self->IsCurrent(id)) co_return false;
    self->close_after_ = true;
    if (self->streaming_) {
      // A terminating chunk would make a truncated stream look complete; closing does not.
      spdlog::warn("http: handler for {} dropped its stream without Finish", self->request_line_);
      self->EndExchange();
      co_return false;
    }
    spdlog::error("http: handler for {} dropped its Responder without answering",
                  self->request_line_);
    self->head_sent_ = true;
    const bool ok = co_await self->SendError(500, "the handler did not answer");
    self->EndExchange();
    co_return ok;
  }

 private:
  enum class Phase { kHandshake, kIdle, kReading, kHandling, kClosing };

  beast::tcp_stream& Tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream_);
  }
  bool IsTls() const { return stream_.index() == 1; }
  bool IsCurrent(std::uint64_t id) const {
    return id == exchange_ && !exchange_done_ && !gone_->load();
  }
  void EndExchange() {
    exchange_done_ = true;
    done_signal_.cancel();
  }
  void MarkGone() {
    gone_->store(true);
    done_signal_.cancel();
  }

  // Writes all of `buffers`; a client that accepts nothing for idle_timeout is gone.
  template <typename Buffers>
  asio::awaitable<bool> Send(const Buffers& buffers) {
    Tcp().expires_after(server_.options().idle_timeout);
    auto [ec, n] = co_await std::visit(
        [&](auto& s) { return asio::async_write(s, buffers, kAwait); }, stream_);
    Tcp().expires_never();
    if (ec) {
      MarkGone();
      co_return false;
    }
    co_return true;
  }

  // A server-made answer; the connection closes after it.
  asio::awaitable<bool> SendError(int status, std::string_view reason) {
    const Response response = server_.ErrorResponse(status, reason);
    bool close = true;
    const std::string bytes = SerializeHead(response.status, response.headers,
                                            Framing::kContentLength, response.body.size(), close) +
                              response.body;
    close_after_ = true;
    co_return co_await Send(asio::buffer(bytes));
  }

  asio::awaitable<void> CloseGracefully() {
    phase_ = Phase::kClosing;
    if (server_.stopping()) {
      Tcp().close();
      co_return;
    }
    beast::error_code ec;
    Tcp().expires_after(kLingerTimeout);
    if (auto* tls = std::get_if<1>(&stream_)) {
      co_await tls->async_shutdown(kAwait);
    } else {
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
      std::array<char, 4096> sink;
      std::size_t drained = 0;
      while (drained < kLingerBytes) {
        auto [read_ec, n] = co_await Tcp().async_read_some(asio::buffer(sink), kAwait);
        if (read_ec) break;
        drained += n;
      }
    }
    Tcp().close();
  }

  // Returns when the current exchange ended or the client went away.
  asio::awaitable<void> WaitExchange() {
    while (!exchange_done_ && !gone_->load()) {
      // Cancelled by operator|| when the peer watch finishes first. A named local on purpose
      // (here and for every co_await result below): with a co_await inside an if condition,
      // GCC 12 built a frame that crashed (SIGSEGV) when destroyed.
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) co_return;
      done_signal_.expires_at(asio::steady_timer::time_point::max());
      co_await done_signal_.async_wait(kAwait);
    }
  }

  // While a handler runs nobody reads the socket, so a client that hangs up would only be
  // noticed at the next write. Peeking tells a hang-up (EOF) from the next request (bytes)
  // without consuming anything. Once bytes are waiting only a failed write can tell.
  asio::awaitable<void> WatchPeer() {
    auto& socket = Tcp().socket();
    for (;;) {
      auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, kAwait);
      if (ec) co_return;
      char byte;
      const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) co_return;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        MarkGone();
        co_return;
      }
    }
  }

  asio::awaitable<void> Serve() {
    const ServerOptions& options = server_.options();
    beast::error_code ec;
    // Stream events must leave at once; whole responses go out in one write anyway.
    Tcp().socket().set_option(tcp::no_delay(true), ec);
    if (auto* tls = std::get_if<1>(&stream_)) {
      phase_ = Phase::kHandshake;
      Tcp().expires_after(options.header_timeout);
      auto [handshake_ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, kAwait);
      if (handshake_ec) {
        spdlog::debug("http: TLS handshake with {}: {}", remote_address_, handshake_ec.message());
        co_return;
      }
    }
    if (reject_) {
      const bool sent = co_await SendError(503, "too many connections");
      if (sent) co_await CloseGracefully();
      co_return;
    }
    bool first = true;
    for (;;) {
      if (server_.stopping()) co_return;
      if (buffer_.size() == 0) {
        phase_ = Phase::kIdle;
        Tcp().expires_after(first ? options.header_timeout : options.idle_timeout);
        auto [read_ec, n] = co_await std::visit(
            [&](auto& s) { return s.async_read_some(buffer_.prepare(kReadChunk), kAwait); },
            stream_);
        // Closed, idle too long, or Stop: keep-alive connections close silently.
        if (read_ec) co_return;
        buffer_.commit(n);
      }
      first = false;
      phase_ = Phase::kReading;
      Tcp().expires_after(options.header_timeout);
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(
          static_cast<std::uint32_t>(std::min<std::size_t>(options.max_header_bytes, UINT32_MAX)));
      parser.body_limit(options.max_body_bytes);
      auto [read_ec, n] = co_await std::visit(
          [&](auto& s) { return bhttp::async_read_header(s, buffer_, parser, kAwait); }, stream_);
      if (!read_ec && !parser.is_done()) {
        // curl and others wait (a second, for curl) for this before sending a large body.
        if (EqualsIgnoreCase(parser.get()[bhttp::field::expect], "100-continue")) {
          const bool sent = co_await Send(asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25));
          if (!sent) co_return;
          Tcp().expires_after(options.header_timeout);
        }
        std::tie(read_ec, n) = co_await std::visit(
            [&](auto& s) { return bhttp::async_read(s, buffer_, parser, kAwait); }, stream_);
      }
      if (read_ec) {
        std::string reason;
        const int status = StatusForReadError(read_ec, reason);
        if (status == 0) co_return;
        const bool sent = co_await SendError(status, reason);
        if (sent) co_await CloseGracefully();
        co_return;
      }
      Tcp().expires_never();

      bhttp::request<bhttp::string_body> message = parser.release();
      Request request;
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      const std::size_t question = request.target.find('?');
      request.path = request.target.substr(0, question);
      if (question != std::string::npos) request.query = request.target.substr(question + 1);
      for (const auto& field : message) {
        request.headers.emplace_back(absl::AsciiStrToLower(AsAbsl(field.name_string())),
                                     std::string(field.value()));
      }
      request.body = std::move(message.body());
      request.remote_address = remote_address_;
      request.client_address =
          ClientAddress(remote_address_, request.headers, server_.options().trusted_proxies);
      request.tls = IsTls();

      version_ = message.version();
      close_after_ = !message.keep_alive() || version_ < 11 || server_.stopping();
      head_request_ = message.method() == bhttp::verb::head;
      request_line_ = absl::StrCat(
          AsAbsl(request.method), " ",
          AsAbsl(server_.options().loggable_path ? server_.options().loggable_path(request.path)
                                                 : request.path),
          " from ", request.client_address);
      ++exchange_;
      exchange_done_ = false;
      head_sent_ = false;
      streaming_ = false;
      phase_ = Phase::kHandling;
      server_.Dispatch(std::move(request), MakeResponder(), request_line_);

      co_await (WaitExchange() || WatchPeer());
      co_await WaitExchange();
      if (gone_->load()) co_return;
      if (close_after_) {
        co_await CloseGracefully();
        co_return;
      }
    }
  }

  std::shared_ptr<Responder> MakeResponder();

  Server& server_;
  const std::string remote_address_;
  asio::steady_timer done_signal_;  // cancelled when the exchange ends or the client leaves
  Stream stream_;
  const bool reject_;
  std::shared_ptr<std::atomic<bool>> gone_ = std::make_shared<std::atomic<bool>>(false);
  beast::flat_buffer buffer_;

  Phase phase_ = Phase::kHandshake;
  std::uint64_t exchange_ = 0;
  bool exchange_done_ = true;
  bool head_sent_ = false;
  bool streaming_ = false;
  bool close_after_ = false;
  bool head_request_ = false;
  unsigned version_ = 11;
  std::string request_line_;  // for logs
};

// The handler's side of one exchange. Calls are serialized and each waits for its bytes to
// be written, so they must not be made from the server's I/O threads.
class ExchangeResponder final : public Responder {
 public:
  ExchangeResponder(std::shared_ptr<Life> life, std::weak_ptr<Connection> connection,
                    std::shared_ptr<std::atomic<bool>> gone, std::uint64_t id)
      : life_(std::move(life)),
        connection_(std::move(connection)),
        gone_(std::move(gone)),
        id_(id) {}

  ~ExchangeResponder() override {
    // Does not wait: the last reference may go away anywhere, even on an I/O thread.
    if (answered_ || gone_->load()) return;
    std::shared_lock life(life_->mu);
    if (!life_->alive) return;
    if (std::shared_ptr<Connection> connection = connection_.lock()) {
      asio::co_spawn(connection->executor(), Connection::DoAbandon(connection, id_),
                     asio::detached);
    }
  }

  bool Respond(Response response) override {
    answered_ = true;
    return Call([&](std::shared_ptr<Connection> c) {
      return Connection::DoRespond(std::move(c), id_, std::move(response));
    });
  }
  bool StartStream(int status, Headers headers) override {
    return Call([&](std::shared_ptr<Connection> c) {
      return Connection::DoStartStream(std::move(c), id_, status, std::move(headers));
    });
  }
  bool Write(std::string chunk) override {
    return Call([&](std::shared_ptr<Connection> c) {
      return Connection::DoWrite(std::move(c), id_, std::move(chunk));
    });
  }
  void Finish() override {
    answered_ = true;
    Call([&](std::shared_ptr<Connection> c) { return Connection::DoFinish(std::move(c), id_); });
  }
  bool ClientGone() const override { return gone_->load(); }

 private:
  template <typename MakeOp>
  bool Call(MakeOp make_op) {
    std::lock_guard call(call_mu_);
    if (gone_->load()) return false;
    std::shared_lock life(life_->mu);
    if (!life_->alive) return false;
    std::future<bool> done;
    {
      std::shared_ptr<Connection> connection = connection_.lock();
      if (!connection) return false;
      asio::any_io_executor executor = connection->executor();
      done = asio::co_spawn(executor, make_op(std::move(connection)), asio::use_future);
    }
    try {
      return done.get();
    } catch (const std::exception& e) {
      spdlog::warn("http: response write: {}", e.what());
      return false;
    }
  }

  std::mutex call_mu_;
  // Set by the calls that end an answer; the destructor then has nothing to clean up.
  std::atomic<bool> answered_{false};
  const std::shared_ptr<Life> life_;
  const std::weak_ptr<Connection> connection_;
  const std::shared_ptr<std::atomic<bool>> gone_;
  const std::uint64_t id_;
};

std::shared_ptr<Responder> Connection::MakeResponder() {
  return std::make_shared<ExchangeResponder>(server_.life(), weak_from_this(), gone_, exchange_);
}

absl::Status Server::LoadTls() {
  const std::string& cert = options_.tls_cert_file;
  const std::string& key = options_.tls_key_file;
  if (cert.empty() && key.empty()) return absl::OkStatus();
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError("http: tls_cert_file and tls_key_file must be set together");
  }
  tls_.emplace(asio::ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION) != 1) {
    return absl::InternalError("http: cannot require TLS 1.2");
  }
  tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                    asio::ssl::context::single_dh_use);
  beast::error_code ec;
  tls_->use_certificate_chain_file(cert, ec);
  if (ec) {
    tls_.reset();
    return absl::InvalidArgumentError(absl::StrCat(
        "http: tls_cert_file ", cert, ": not a readable PEM certificate (", ec.message(), ")"));
  }
  tls_->use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) {
    tls_.reset();
    return absl::InvalidArgumentError(absl::StrCat(
        "http: tls_key_file ", key, ": not a readable PEM private key (", ec.message(), ")"));
  }
  if (SSL_CTX_check_private_key(tls_->native_handle()) != 1) {
    tls_.reset();
    return absl::InvalidArgumentError(
        absl::StrCat("http: tls_key_file ", key, " does not match tls_cert_file ", cert));
  }
  return absl::OkStatus();
}

absl::Status Server::Start() {
  std::lock_guard state(state_mu_);
  if (started_) return absl::FailedPreconditionError("http: server already started");
  if (options_.io_threads < 1 || options_.worker_threads < 1 || options_.max_connections < 1 ||
      options_.priority_threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http: io_threads, worker_threads, priority_threads and max_connections must be at "
        "least 1, got ",
        options_.io_threads, ", ", options_.worker_threads, ", ", options_.priority_threads, ", ",
        options_.max_connections));
  }
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: port must be 0..65535, got ", options_.port));
  }
  LLMBOX_RETURN_IF_ERROR(LoadTls());

  beast::error_code ec;
  asio::ip::address address;
  if (options_.address == "localhost") {
    address = asio::ip::address_v4::loopback();
  } else {
    address = asio::ip::make_address(options_.address, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("http: address '", options_.address,
                                                     "' is not an IP literal or \"localhost\""));
    }
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
  acceptor_.emplace(asio::make_strand(io_));
  const auto fail = [&](std::string_view what) {
    acceptor_.reset();
    return absl::UnavailableError(absl::StrCat("http: cannot ", AsAbsl(what), " ",
                                               HostPort(options_.address, options_.port), ": ",
                                               ec.message()));
  };
  acceptor_->open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail("configure");
  acceptor_->bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  bound_port_ = acceptor_->local_endpoint(ec).port();

  workers_ = std::make_unique<asio::thread_pool>(options_.worker_threads);
  priority_workers_ = std::make_unique<asio::thread_pool>(options_.priority_threads);
  work_.emplace(io_.get_executor());
  asio::co_spawn(acceptor_->get_executor(), AcceptLoop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& error) {
      spdlog::error("http: accept loop ended: {}", error.what());
    }
  });
  for (int i = 0; i < options_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread: {}", e.what());
        }
      }
    });
  }
  started_ = true;
  spdlog::info("http: listening on {}{}", HostPort(options_.address, bound_port_.load()),
               tls_ ? " (TLS)" : "");
  return absl::OkStatus();
}

asio::awaitable<void> Server::AcceptLoop() {
  for (;;) {
    asio::any_io_executor strand = asio::make_strand(io_);
    auto [ec, socket] = co_await acceptor_->async_accept(strand, kAwait);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      spdlog::warn("http: accept on port {}: {}", bound_port_.load(), ec.message());
      // Out of descriptors and the like: pause instead of spinning on the error.
      asio::steady_timer pause(acceptor_->get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kAwait);
      continue;
    }
    bool reject;
    {
      std::lock_guard lock(mu_);
      reject = active_ >= options_.max_connections;
      // Past even the 503 budget: dropping the socket is the only bounded answer.
      if (reject && rejecting_ >= kMaxRejecting) continue;
    }
    auto connection =
        std::make_shared<Connection>(*this, std::move(socket), tls_ ? &*tls_ : nullptr, reject);
    if (!Register(connection, !reject)) continue;
    asio::co_spawn(connection->executor(), Connection::Run(connection), asio::detached);
  }
}

bool Server::Register(const std::shared_ptr<Connection>& connection, bool counted) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  connections_.emplace(connection.get(), connection);
  ++(counted ? active_ : rejecting_);
  return true;
}

void Server::Unregister(Connection* connection, bool counted) {
  std::lock_guard lock(mu_);
  connections_.erase(connection);
  --(counted ? active_ : rejecting_);
  cv_.notify_all();
}

template <typename Fn>
void Server::ForEachConnection(Fn fn) {
  std::lock_guard lock(mu_);
  for (const auto& [raw, weak] : connections_) {
    if (std::shared_ptr<Connection> connection = weak.lock()) {
      asio::post(connection->executor(), [connection, fn] { fn(*connection); });
    }
  }
}

void Server::Dispatch(Request request, std::shared_ptr<Responder> responder, std::string line) {
  const auto& priority = options_.priority_paths;
  const bool first = std::find(priority.begin(), priority.end(), request.path) != priority.end();
  asio::post(first ? *priority_workers_ : *workers_,
             [this, request = std::move(request), responder = std::move(responder),
              line = std::move(line)]() mutable {
               try {
                 handler_(std::move(request), std::move(responder));
               } catch (const std::exception& e) {
                 spdlog::error("http: handler for {} threw: {}", line, e.what());
               }
             });
}

void Server::Stop(std::chrono::milliseconds grace) {
  std::lock_guard state(state_mu_);
  if (!started_ || stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  std::promise<void> closed;
  asio::post(acceptor_->get_executor(), [&] {
    beast::error_code ec;
    acceptor_->close(ec);
    closed.set_value();
  });
  closed.get_future().wait();

  ForEachConnection([](Connection& c) { c.CloseIfIdle(); });
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, grace, [&] { return connections_.empty(); });
  }
  ForEachConnection([](Connection& c) { c.ForceClose(); });
  bool unwound;
  {
    std::unique_lock lock(mu_);
    unwound = cv_.wait_for(lock, kUnwindWait, [&] { return connections_.empty(); });
  }
  if (!unwound) spdlog::error("http: connections still open after Stop closed them");

  // Handler calls still running see ClientGone and fail fast; they must return on their own.
  workers_->join();
  priority_workers_->join();
  {
    std::unique_lock life(life_->mu);
    life_->alive = false;
  }
  work_.reset();
  if (!unwound) io_.stop();
  for (std::thread& thread : io_threads_) thread.join();
  io_threads_.clear();
}

}  // namespace

class HttpServer::Impl final : public Server {
 public:
  using Server::Server;
};

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() = default;

absl::Status HttpServer::Start() { return impl_->Start(); }

int HttpServer::BoundPort() const { return impl_->BoundPort(); }

void HttpServer::Stop(std::chrono::milliseconds grace) { impl_->Stop(grace); }

}  // namespace llmbox::hub::http
