// hub/metrics/metrics_endpoint.h
//
// The hub's /metrics route: who may read it (hub.metrics.allow, loopback by default), and the
// answer (the Prometheus text format).
//
//   LLMBOX_ASSIGN_OR_RETURN(MetricsEndpoint endpoint,
//                           MetricsEndpoint::Create({"127.0.0.0/8", "::1"}, render));
//   router.Exact("/metrics", [&](http::Request r, auto out) { endpoint.Handle(r, *out); });
//
// Who asks is the request's client address (after hub.trusted_proxies). A request that carries
// forwarding headers (X-Forwarded-For, Forwarded, X-Real-IP) the hub did not believe came
// through a proxy it does not trust: its TCP peer (a proxy on loopback, say) is not the
// client, so it is refused whatever that peer's address. Refused requests get 403.
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
  // entry). `render` makes the body; it runs on the request's thread.
  [[nodiscard]] static absl::StatusOr<MetricsEndpoint> Create(const std::vector<std::string>& allow,
                                                              std::function<std::string()> render);

  // Whether `request` may read the metrics.
  bool Allows(const http::Request& request) const;
  // 200 with the metrics, 403 when not allowed, 405 for a method other than GET and HEAD.
  void Handle(const http::Request& request, http::Responder& out) const;

 private:
  MetricsEndpoint(http::TrustedProxies allow, std::function<std::string()> render)
      : allow_(std::move(allow)), render_(std::move(render)) {}
  http::TrustedProxies allow_;  // a CIDR set: who may scrape, not whose headers we believe
  std::function<std::string()> render_;
};

}  // namespace llmbox::hub::metrics
