// hub/metrics/metrics_endpoint.h
//
// The hub's /metrics route: who may read it (hub.metrics.allow, loopback by default, and the
// bearer token of hub.metrics.bearer_token_file when one is set), and the answer (the
// Prometheus text format).
//
//   LLMBOX_ASSIGN_OR_RETURN(MetricsEndpoint endpoint,
//                           MetricsEndpoint::Create({"127.0.0.0/8", "::1"}, token, render));
//   router.Exact("/metrics", [&](http::Request r, auto out) { endpoint.Handle(r, *out); });
//
// Who asks is the request's client address (after hub.trusted_proxies). A request that carries
// forwarding headers (X-Forwarded-For, Forwarded, X-Real-IP) the hub did not believe came
// through a proxy it does not trust: its TCP peer (a proxy on loopback, say) is not the
// client, so it is refused whatever that peer's address. Refused requests get 403. With a
// token, an allowed address must also send "Authorization: Bearer <token>" (compared in
// constant time, common/metrics_auth.h); without it or with another, 401 and
// WWW-Authenticate. The token is never logged or answered.
//
// Thread-safe: immutable after Create; Handle from any thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "hub/http/client_address.h"
#include "hub/http/server.h"

namespace llmbox::hub::metrics {

class MetricsEndpoint {
 public:
  // `allow`: CIDRs or bare addresses (TrustedProxies::Parse's form; InvalidArgument naming the
  // entry). `bearer_token`: the token scrapers must send; empty for none. `render` makes the
  // body; it runs on the request's thread.
  [[nodiscard]] static absl::StatusOr<MetricsEndpoint> Create(const std::vector<std::string>& allow,
                                                              std::string bearer_token,
                                                              std::function<std::string()> render);

  // Whether `request` comes from an address that may read the metrics.
  bool Allows(const http::Request& request) const;
  // Whether `request` carries the bearer token (always true without one).
  bool Authenticated(const http::Request& request) const;
  // 200 with the metrics; 403 when the address is not allowed; 401 (with WWW-Authenticate)
  // when the token is missing or wrong; 405 for a method other than GET and HEAD.
  void Handle(const http::Request& request, http::Responder& out) const;

 private:
  MetricsEndpoint(http::TrustedProxies allow, std::string bearer_token,
                  std::function<std::string()> render)
      : allow_(std::move(allow)),
        bearer_token_(std::move(bearer_token)),
        render_(std::move(render)) {}
  http::TrustedProxies allow_;  // a CIDR set: who may scrape, not whose headers we believe
  std::string bearer_token_;    // a secret: never logged
  std::function<std::string()> render_;
};

}  // namespace llmbox::hub::metrics
