// hub/http/server.h
//
// The hub's HTTP/1.1 server. Boost.Beast on Asio lives behind this header (pimpl), so only
// hub/http/*.cc pays Beast's compile cost.
//
//   HttpServer server(options, [](Request request, std::shared_ptr<Responder> out) {
//     out->Respond({.status = 200, .headers = {{"Content-Type", "text/plain"}}, .body = "ok"});
//   });
//   LLMBOX_RETURN_IF_ERROR(server.Start());   // binds; BoundPort() tells the port
//   ...
//   server.Stop(std::chrono::seconds(10));   // graceful: stop accepting, let requests finish
//
// Threading: the I/O threads only parse and write. Every handler call runs on a worker pool,
// so a handler may block (gRPC to a spoke, SQLite); it must answer through its Responder
// exactly once (Respond, or StartStream + Write... + Finish). A Responder is thread-safe and
// may outlive the handler call (answer later from another thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "hub/http/client_address.h"

namespace llmbox::hub::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;          // "GET", "POST", ... as sent
  std::string target;          // path and query as sent ("/auth/abc?x=1")
  std::string path;            // target without the query
  std::string query;           // after '?', undecoded; empty when none
  Headers headers;             // names lowercased, in arrival order
  std::string body;            // at most ServerOptions::max_body_bytes
  std::string remote_address;  // the TCP peer's IP, no port
  bool tls = false;            // arrived over the server's own TLS
  // The client's IP (client_address.h): the TCP peer's, or, when the peer is one of
  // ServerOptions::trusted_proxies, the one its forwarding headers name. What limits and logs
  // use.
  std::string client_address;

  // The first header with this name (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;  // Content-Length is set by the server
  std::string body;
};

// How a handler answers. Every method is thread-safe. Respond, StartStream, Write and Finish
// return once their bytes are written (or the write failed), which paces a stream to its
// client; a client that takes nothing for ServerOptions::idle_timeout counts as gone. So they
// block, and must not be called on the server's own I/O threads (handlers never run there).
// Dropping the last reference without answering makes the server answer 500 (or close a
// started stream, so a truncated stream does not look complete).
class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response. Returns false when the client is gone (the response is dropped).
  virtual bool Respond(Response response) = 0;
  // Starts a chunked response (for text/event-stream); then Write any number of times and
  // Finish once. Returns false when the client is gone.
  virtual bool StartStream(int status, Headers headers) = 0;
  virtual bool Write(std::string chunk) = 0;
  virtual void Finish() = 0;
  // True once the peer closed the connection or a write failed.
  virtual bool ClientGone() const = 0;
};

using Handler = std::function<void(Request request, std::shared_ptr<Responder> responder)>;

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal, or "localhost"
  int port = 8080;                    // 0 picks a free port (see BoundPort)
  int io_threads = 2;
  int worker_threads = 32;  // handler pool; creates block a worker for seconds
  // Exact paths whose handler calls run on a small pool of their own (health endpoints), so
  // they answer even while every worker is busy. Their handlers must not block for long.
  std::vector<std::string> priority_paths;
  int priority_threads = 2;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 << 10;
  int max_connections = 1024;  // beyond this, new connections are closed at once
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive connection with no request
  std::chrono::milliseconds header_timeout{10'000};  // to receive a whole request head+body
  // Answers the server makes itself (400 unparsable request, 413 body too large, 431 headers
  // too large, 503 too many connections): status and a one-line reason in, response out.
  // Default: text/plain with the reason. The server adds `Connection: close`.
  std::function<Response(int status, std::string_view reason)> error_response;
  // Native TLS (1.2+) when both are set; PEM files.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Peers whose X-Forwarded-For / Forwarded headers name the client (Request::client_address).
  TrustedProxies trusted_proxies;
  // How the server's own log lines name a request's path (a handler that failed to answer):
  // the path as sent by default; the hub replaces the secrets its paths carry.
  std::function<std::string(std::string_view path)> loggable_path;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler);
  ~HttpServer();  // Stop()s with a zero grace period if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the threads. InvalidArgument for a bad address or unreadable TLS files,
  // Unavailable when the port cannot be bound (the message names address and port).
  [[nodiscard]] absl::Status Start();
  int BoundPort() const;
  // Stops accepting, waits up to `grace` for in-flight requests and streams, then closes the
  // rest. Idempotent. Returns once running handler calls have returned (after the close their
  // Responders report ClientGone), so a handler must not block forever; never call Stop from
  // a handler.
  void Stop(std::chrono::milliseconds grace);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmbox::hub::http
