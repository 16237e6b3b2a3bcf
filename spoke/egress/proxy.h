// spoke/egress/proxy.h
//
// The spoke's egress proxy: the only way out of a box's network (docs/decisions/007). One
// listening socket per box, on its network's gateway address (the box's HTTP_PROXY and
// HTTPS_PROXY point there); the listener a connection came in on says whose policy applies.
// It speaks HTTP/1.1 proxying: CONNECT host:port (any TCP, TLS or not), and absolute-form
// requests ("GET http://host/path HTTP/1.1") forwarded in origin form with Connection: close.
// Each connection: the request head is read with a size and time limit, the name is checked
// (DecideName), resolved by the proxy itself (never the box's DNS: a Resolver, static names
// from config first), every address checked (DecideAddress; one denied address refuses the
// name), connected with a timeout, then bytes are copied both ways until either side closes
// or the idle timeout passes. A refusal answers 403 with a one-line reason and is recorded
// (Refusals) and logged; a name that does not resolve answers 502 and is recorded too.
//
//   EgressProxy proxy({.port = 3128, .policy = spoke_policy}, clock);
//   LLMBOX_RETURN_IF_ERROR(proxy.AddBox("my-box", "10.213.5.1", box_policy));
//   ... proxy.SetPolicy("my-box", wider);   // applies to the next connection
//   for (const Refusal& r : proxy.Refusals("my-box")) ...
//   proxy.RemoveBox("my-box");              // closes its listener and its connections
//
// Request heads: one per connection, CRLF or LF lines, no obsolete line folding, no
// ambiguous framing (Content-Length with Transfer-Encoding, differing lengths, a
// Transfer-Encoding not ending in chunked): 400. An absolute-form request is forwarded with
// Host set from its URL, Connection/Keep-Alive/Upgrade/TE/Trailer and Proxy-* removed,
// "Connection: close" added, and its body passed through as it comes. Answers: 200
// "Connection established" (CONNECT), 400, 403 (policy; a one-line text body naming the
// rule), 408 (head too slow), 431 (head over 16 KiB), 502 (did not resolve: recorded as
// "name did not resolve"; could not connect: only logged, unless the host's rules refused the
// connect, EPERM/EACCES, which is recorded), 503 (over a connection cap). Logged through
// spdlog: every allowed connection (info) and every refusal (warn), never request headers or
// bodies.
//
// Bounded: request heads (16 KiB), connections per box and in all, connect and idle timeouts,
// resolver lookups in flight (64; getaddrinfo runs on a thread of its own with a time limit).
// Threads: one accept thread per box and one per connection. A relayed connection holds
// seven fds (two sockets, an eventfd, two pipes for splice(2)): the spoke's RLIMIT_NOFILE must
// allow 7 * max_connections plus its own. Socket timeouts (head, connect, idle) are real time
// (poll); the Clock stamps refusals.
// Thread-safe; Stop() (and the destructor) close everything and join every thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "spoke/egress/policy.h"
#include "spoke/egress/refusal.h"

struct sockaddr;

namespace llmbox::spoke::egress {

// The address in a socket address (AF_INET or AF_INET6); nullopt for any other family.
std::optional<IpAddress> IpAddressOf(const sockaddr* address);

// Names to addresses, as the proxy sees them.
class Resolver {
 public:
  virtual ~Resolver() = default;
  // NotFound when the name has no address; Unavailable when resolution failed.
  [[nodiscard]] virtual absl::StatusOr<std::vector<IpAddress>> Resolve(const std::string& name) = 0;
};

// `static_hosts` first (name -> addresses, exact, lower case), then the system resolver
// (getaddrinfo, A and AAAA, with a time limit).
std::unique_ptr<Resolver> MakeSystemResolver(
    std::map<std::string, std::vector<IpAddress>> static_hosts,
    std::chrono::milliseconds timeout = std::chrono::seconds(5));

struct ProxyOptions {
  int port = 3128;
  SpokePolicy policy;
  Resolver* resolver = nullptr;  // not owned; null: MakeSystemResolver({})
  int max_connections_per_box = 256;
  int max_connections = 4096;
  std::chrono::milliseconds head_timeout{10'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  size_t refusals_kept = 32;         // per box, newest kept
  std::string spoke_name = "local";  // in log lines
};

class EgressProxy {
 public:
  EgressProxy(ProxyOptions options, common::Clock& clock);
  ~EgressProxy();  // Stop()
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // Listens on listen_ip:port for the box (replacing a listener it had on another address,
  // and keeping its refusals; on the same address only the policy changes). Unavailable naming
  // the address when it cannot be bound; InvalidArgument when listen_ip is not an address;
  // FailedPrecondition after Stop(). `peers` (a range, e.g. the box network's subnet): only
  // connections from there are served, others closed unanswered; empty: any peer (tests).
  [[nodiscard]] absl::Status AddBox(const std::string& box_id, const std::string& listen_ip,
                                    BoxPolicy policy, const std::string& peers = "");
  // NotFound for a box it does not serve.
  [[nodiscard]] absl::Status SetPolicy(const std::string& box_id, BoxPolicy policy);
  // Closes the box's listener and connections (their sockets shut down); forgets its
  // refusals. Returns once none of the box's threads runs (a connection waiting for the
  // resolver is waited for, up to the resolver's time limit). No-op when unknown.
  void RemoveBox(const std::string& box_id);
  // The box's latest refusals, oldest first.
  std::vector<Refusal> Refusals(const std::string& box_id) const;
  // How many refusals were recorded for the box since it was added (0 when unknown).
  std::uint64_t RefusalCount(const std::string& box_id) const;
  // The port it listens on for boxes (options.port; the bound one when that was 0 and a box
  // was added: tests).
  int port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmbox::spoke::egress
