// The real CimdFetcher (clients.h): https only, and a connection only to a public address
// (public_address.h). An IP-literal host is vetted before curl starts; a name is resolved by
// curl within the fetch's timeout, and each address it would connect to is vetted right before
// its socket opens (CurlHttpFetcher::GetVetted), so a name that later resolves elsewhere (DNS
// rebinding) cannot reach the hub's own network.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include <sys/socket.h>

#include "common/absl_compat.h"
#include "common/status.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/public_address.h"
#include "hub/oauth/redirect_uri.h"

namespace llmbox::hub::oauth {
namespace {

class CurlCimdFetcher final : public CimdFetcher {
 public:
  CurlCimdFetcher(std::chrono::milliseconds timeout, std::size_t max_bytes, bool allow_loopback,
                  std::string ca_file)
      : allow_loopback_(allow_loopback),
        http_({.connect_timeout = timeout,
               .total_timeout = timeout,
               .max_response_bytes = max_bytes,
               .protocols = allow_loopback ? "http,https" : "https",
               .ca_file = std::move(ca_file),
               .what = "client metadata document",
               .timeout_setting = "auth.oauth.cimd_timeout"}) {}

  absl::StatusOr<std::string> Fetch(const std::string& url) override {
    absl::StatusOr<UriParts> parts = ParseRedirectUri(url);
    if (!parts.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the client id is not a usable URL: ", parts.status().message()));
    }
    if (parts->scheme != "https" && !(allow_loopback_ && IsLoopbackRedirectHost(parts->host))) {
      return absl::InvalidArgumentError("a client metadata document must be fetched over https");
    }
    const std::string& host = parts->host;
    auto vet = [&](const IpAddress& address) -> std::optional<std::string> {
      std::optional<std::string_view> why = NonPublicAddressReason(address, allow_loopback_);
      if (!why.has_value()) return std::nullopt;
      return absl::StrCat(host, " is at ", address.ToString(), " (", common::AsAbsl(*why),
                          "): the hub fetches client metadata documents from public addresses "
                          "only");
    };
    if (std::optional<IpAddress> literal = IpAddress::Parse(host)) {
      if (std::optional<std::string> why = vet(*literal)) {
        return absl::PermissionDeniedError(*why);
      }
    }
    LLMBOX_ASSIGN_OR_RETURN(
        activation::HttpResponse response,
        http_.GetVetted(url, [&](const sockaddr& address) -> std::optional<std::string> {
          std::optional<IpAddress> ip = IpAddress::FromSockaddr(&address);
          if (!ip.has_value()) return "not an IP address";
          return vet(*ip);
        }));
    if (response.status >= 300 && response.status < 400) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the document answered with a redirect (HTTP ", response.status, "), not followed"));
    }
    if (response.status != 200) {
      return absl::UnavailableError(
          absl::StrCat("the document answered HTTP ", response.status, ", not 200"));
    }
    return std::move(response.body);
  }

 private:
  const bool allow_loopback_;
  activation::CurlHttpFetcher http_;
};

}  // namespace

std::unique_ptr<CimdFetcher> MakeCurlCimdFetcher(std::chrono::milliseconds timeout,
                                                 std::size_t max_bytes, bool allow_loopback,
                                                 std::string ca_file) {
  return std::make_unique<CurlCimdFetcher>(timeout, max_bytes, allow_loopback, std::move(ca_file));
}

}  // namespace llmbox::hub::oauth
