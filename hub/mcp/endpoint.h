// hub/mcp/endpoint.h
//
// MCP over streamable HTTP (protocol 2025-11-25, negotiated down to 2025-06-18, 2025-03-26 and
// 2024-11-05) on one HTTP endpoint. It speaks JSON-RPC and the transport rules, and runs the
// tools of a ToolSet; it knows nothing of boxes. The behaviour follows the MCP notes
// (shared/notes/mcp.md): lenient with what real clients send, strict where the spec says MUST.
//
//   McpEndpoint mcp({.session_key = key, .allowed_hosts = {"127.0.0.1:8080"}}, tools, clock);
//   http_server_handler = [&](Request r, std::shared_ptr<Responder> out) {
//     mcp.Handle(std::move(r), std::move(out));
//   };
//
// POST carries one JSON-RPC message (or a batch); a request is answered with JSON, or, for a
// tools/call that has something to send before its response (progress notifications, a
// keep-alive comment every keepalive_interval) and a client that accepts it, with an SSE
// stream that ends with the response. Notifications get 202. GET gets
// 405, DELETE ends a session (its id gets 404 afterwards), OPTIONS answers CORS preflight for
// allowed origins. Session ids are HMAC-signed, so they survive a hub restart (and so does
// their ending, through ended_sessions / on_session_ended); they carry no tool state.
//
// Thread-safe: Handle runs on many worker threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/auth/principal.h"
#include "hub/http/server.h"
#include "hub/mcp/tools.h"

namespace llmbox::hub::mcp {

// Protocol revisions we speak, newest first.
inline constexpr std::string_view kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                         "2024-11-05"};

struct EndpointOptions {
  std::string server_name = "llmbox";
  std::string server_title = "llmbox hub";
  std::string server_version = "0.0.0";
  std::string instructions;  // returned by initialize when not empty
  // Signs session ids (at least 32 random bytes; keep it in the state dir so ids survive a
  // restart).
  std::string session_key;
  // Host header values accepted ("host" or "host:port", lowercase); empty accepts any Host.
  std::vector<std::string> allowed_hosts;
  // Origin header values accepted ("scheme://host[:port]", lowercase). A request without an
  // Origin is accepted (server-side clients send none).
  std::vector<std::string> allowed_origins;
  std::size_t max_json_depth = 64;
  std::size_t max_batch = 32;
  std::chrono::milliseconds keepalive_interval{15'000};
  std::size_t max_deleted_sessions = 100'000;
  // A session id is good for this long after initialize; then 404, and the client starts a
  // new session (as the protocol requires of it).
  std::chrono::seconds session_ttl{std::chrono::hours(24 * 30)};
  // Sessions ended (DELETE) before this start, by SHA-256 hex of the id, and where to record
  // the ones ended now (hash, and when the id expires anyway): with both, an ended session
  // stays ended across a restart. Called outside the endpoint's lock.
  std::vector<std::string> ended_sessions;
  std::function<void(const std::string& id_hash, std::int64_t expires_at_ms)> on_session_ended;
  // Authentication; empty turns it off (every caller is then auth::Principal::Anonymous()).
  // Gets the Authorization header (nullopt when absent) and returns the caller, or
  // Unauthenticated (401) / PermissionDenied (403). A session id is bound to the principal's
  // id: another principal presenting it gets 404.
  std::function<absl::StatusOr<auth::Principal>(std::optional<std::string_view>)> authenticate;
  // Sent with 401 answers, with `, error="invalid_token"` appended when the request carried an
  // Authorization header.
  std::string www_authenticate = "Bearer realm=\"llmbox\"";
  // Tool calls one principal may have running at once (0: no limit). Each holds one of the HTTP
  // server's workers, so one caller with slow execs cannot hold them all: a call beyond the
  // limit is a tool error that names it.
  int max_calls_per_principal = 0;
  // Told of every request answered (/metrics): its JSON-RPC method and, for tools/call, the
  // tool named, both as the client sent them (the listener maps them to a closed set), and
  // "ok", "error" (a JSON-RPC error) or "tool_error" (a tool result with isError). Runs on
  // the request's thread; may be empty.
  std::function<void(std::string_view method, std::string_view tool, std::string_view outcome)>
      on_request;
};

class McpEndpoint {
 public:
  // `tools` and `clock` must outlive the endpoint.
  McpEndpoint(EndpointOptions options, ToolSet& tools, common::Clock& clock);
  ~McpEndpoint();
  McpEndpoint(const McpEndpoint&) = delete;
  McpEndpoint& operator=(const McpEndpoint&) = delete;

  void Handle(http::Request request, std::shared_ptr<http::Responder> responder);

  // An HTTP error answer in MCP's shape (a JSON-RPC error without id), for errors the HTTP
  // server makes itself (413, 431, ...).
  static http::Response HttpError(int status, std::string_view message);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmbox::hub::mcp
