#include "hub/metrics/metrics_endpoint.h"

#include <optional>
#include <string>
#include <utility>

#include "common/metrics.h"
#include "common/metrics_auth.h"
#include "common/status.h"

namespace llmbox::hub::metrics {

absl::StatusOr<MetricsEndpoint> MetricsEndpoint::Create(const std::vector<std::string>& allow,
                                                        std::string bearer_token,
                                                        std::function<std::string()> render) {
  LLMBOX_ASSIGN_OR_RETURN(http::TrustedProxies cidrs, http::TrustedProxies::Parse(allow));
  return MetricsEndpoint(std::move(cidrs), std::move(bearer_token), std::move(render));
}

bool MetricsEndpoint::Allows(const http::Request& request) const {
  const std::optional<http::IpAddress> client = http::IpAddress::Parse(request.client_address);
  if (!client || !allow_.Contains(*client)) return false;
  const bool forwarded = request.Header("x-forwarded-for") || request.Header("forwarded") ||
                         request.Header("x-real-ip");
  // Forwarded by a proxy the hub does not trust: the peer is not the client.
  return !(forwarded && request.client_address == request.remote_address);
}

bool MetricsEndpoint::Authenticated(const http::Request& request) const {
  return bearer_token_.empty() ||
         common::MetricsBearerAllows(request.Header("authorization"), bearer_token_);
}

void MetricsEndpoint::Handle(const http::Request& request, http::Responder& out) const {
  const http::Headers text = {{"Content-Type", "text/plain; charset=utf-8"}};
  if (request.method != "GET" && request.method != "HEAD") {
    http::Headers headers = text;
    headers.emplace_back("Allow", "GET, HEAD");
    out.Respond({.status = 405, .headers = std::move(headers), .body = "GET only\n"});
    return;
  }
  if (!Allows(request)) {
    out.Respond({.status = 403,
                 .headers = text,
                 .body = "metrics are served only to the addresses in hub.metrics.allow\n"});
    return;
  }
  if (!Authenticated(request)) {
    http::Headers headers = text;
    headers.emplace_back("WWW-Authenticate", common::kMetricsWwwAuthenticate);
    out.Respond({.status = 401,
                 .headers = std::move(headers),
                 .body = "metrics want Authorization: Bearer <the token of "
                         "hub.metrics.bearer_token_file>\n"});
    return;
  }
  out.Respond(
      {.status = 200,
       .headers = {{"Content-Type", common::kMetricsContentType}, {"Cache-Control", "no-store"}},
       .body = request.method == "HEAD" ? std::string() : render_()});
}

}  // namespace llmbox::hub::metrics
