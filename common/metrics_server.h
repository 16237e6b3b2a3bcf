// common/metrics_server.h
//
// A tiny HTTP/1.1 listener that answers GET /metrics and nothing else, for a process without
// an HTTP server of its own (the spoke: `metrics.listen`). It serves one connection at a time
// and closes each after its answer: a scraper every few seconds, not a web server.
//
//   LLMBOX_ASSIGN_OR_RETURN(auto server, MetricsServer::Start("127.0.0.1:9464",
//                                                            [&] { return metrics.Render(); }));
//   ... server->port() ...
//   server->Stop();   // or the destructor
//
// Bounds: a request head of at most 8 KiB, read within 5 s (a slower or larger one is closed
// unanswered); the body is never read. Other paths get 404, other methods 405. Who may scrape
// is decided by the address it listens on (loopback by default in the spoke's config) and,
// when one is given, a bearer token (common/metrics_auth.h): a request without
// "Authorization: Bearer <token>" gets 401 with WWW-Authenticate.
//
// Thread-safety: Start and Stop from one thread; `render` runs on the server's own thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace llmbox::common {

// A listen address split: "127.0.0.1:9464" → {"127.0.0.1", 9464}; "[::1]:9464" → {"::1",
// 9464}. The host must be an IP literal or "localhost"; the port 0..65535 (0 picks one).
struct ListenAddress {
  std::string host;
  int port = 0;
};
// InvalidArgument naming the text and the rule it broke.
[[nodiscard]] absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

class MetricsServer {
 public:
  // Binds `address` (ParseListenAddress's form) and starts serving `render()` at /metrics, to
  // requests that carry `bearer_token` (empty: to every request). Errors: InvalidArgument for
  // a malformed address, Unavailable naming the address when it cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      std::string_view address, std::function<std::string()> render, std::string bearer_token = "");
  ~MetricsServer();  // Stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return port_; }
  // Stops accepting and waits for the answer in progress. Idempotent.
  void Stop();

 private:
  struct Loop;
  MetricsServer(std::unique_ptr<Loop> loop, int port);
  std::unique_ptr<Loop> loop_;
  int port_ = 0;
};

}  // namespace llmbox::common
