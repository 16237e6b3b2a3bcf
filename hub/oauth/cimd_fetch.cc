// The real CimdFetcher (clients.h): resolves the URL's host itself, refuses every address that
// is not public (public_address.h), then fetches through CurlHttpFetcher pinned to the vetted
// address, so curl neither resolves the name again nor follows a redirect anywhere.
#include <netdb.h>

#include <memory>
#include <vector>

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
    const int port = parts->port.value_or(parts->scheme == "https" ? 443 : 80);
    LLMBOX_ASSIGN_OR_RETURN(IpAddress address, Vet(parts->host));
    LLMBOX_ASSIGN_OR_RETURN(activation::HttpResponse response,
                            http_.GetPinned(url, parts->host, port, address.ToString()));
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
  // The address to connect to for `host`: the literal itself, or the first address the name
  // resolves to, when every address it resolves to is public. One non-public answer refuses the
  // name (a name that mixes public and private addresses is an attack or a misconfiguration).
  absl::StatusOr<IpAddress> Vet(const std::string& host) {
    std::vector<IpAddress> addresses;
    if (std::optional<IpAddress> literal = IpAddress::Parse(host)) {
      addresses.push_back(*literal);
    } else {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
      if (rc != 0) {
        return absl::UnavailableError(
            absl::StrCat("cannot resolve ", host, ": ", ::gai_strerror(rc)));
      }
      std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, ::freeaddrinfo);
      for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        if (std::optional<IpAddress> address = IpAddress::FromSockaddr(a->ai_addr)) {
          addresses.push_back(*address);
        }
      }
      if (addresses.empty()) return absl::UnavailableError(absl::StrCat(host, " has no address"));
    }
    for (const IpAddress& address : addresses) {
      if (std::optional<std::string_view> why = NonPublicAddressReason(address, allow_loopback_)) {
        return absl::PermissionDeniedError(absl::StrCat(
            host, " is at ", address.ToString(), " (", common::AsAbsl(*why),
            "): the hub fetches client metadata documents from public addresses only"));
      }
    }
    return addresses.front();
  }

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
