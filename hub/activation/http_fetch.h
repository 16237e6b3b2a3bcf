// hub/activation/http_fetch.h
//
// The HTTP requests sign-in gating makes to an OpenID Connect provider: GET of the discovery
// document and the JWKS, and the form POST to the token endpoint. One real implementation on
// libcurl (CurlHttpFetcher); tests give OidcClient a double. The OAuth clients' metadata
// documents (hub/oauth/cimd_fetch.cc) are fetched with it too, through GetVetted.
//
//   CurlHttpFetcher http({.total_timeout = std::chrono::seconds(10)});
//   LLMBOX_ASSIGN_OR_RETURN(HttpResponse r, http.Get("https://idp.example.com/jwks"));
//
// Thread-safe: calls may come from several threads at once.
// Errors: DeadlineExceeded when the connect or total timeout passes, ResourceExhausted when
// the body exceeds the cap, PermissionDenied when GetVetted's vet refused the address,
// Unavailable for any other transport failure (the message names the URL, never a request body
// or credential). Any HTTP status is a response, not an error.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

struct sockaddr;

namespace llmbox::hub::activation {

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpFetcher {
 public:
  virtual ~HttpFetcher() = default;

  [[nodiscard]] virtual absl::StatusOr<HttpResponse> Get(const std::string& url) = 0;

  // POSTs `form` (application/x-www-form-urlencoded) with extra `headers` ("Name: value").
  [[nodiscard]] virtual absl::StatusOr<HttpResponse> PostForm(
      const std::string& url, const std::string& form, const std::vector<std::string>& headers) = 0;
};

class CurlHttpFetcher final : public HttpFetcher {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{5'000};
    std::chrono::milliseconds total_timeout{10'000};
    size_t max_response_bytes = 1024 * 1024;
    // What may be fetched: "http,https" or "https" (curl's CURLOPT_PROTOCOLS_STR).
    std::string protocols = "http,https";
    // PEM file of the CAs to trust instead of the system's (tests); "" for the system's.
    std::string ca_file;
    // The prefix of error messages, and the config setting a timeout message names.
    std::string what = "oidc";
    std::string timeout_setting = "activation.oidc.http_timeout";
  };

  // Why a connection to `address` must not be made, or nullopt when it may.
  using AddressVet = std::function<std::optional<std::string>(const sockaddr& address)>;

  // Certificates are always verified; redirects are not followed; only Options::protocols.
  explicit CurlHttpFetcher(Options options);

  [[nodiscard]] absl::StatusOr<HttpResponse> Get(const std::string& url) override;
  [[nodiscard]] absl::StatusOr<HttpResponse> PostForm(
      const std::string& url, const std::string& form,
      const std::vector<std::string>& headers) override;

  // GETs `url` with no proxy from the environment, opening a socket only to an address `vet`
  // admits. curl resolves the name (within the timeouts) and asks `vet` about each address
  // right before opening the socket it connects with that very address, so no later answer
  // for the name (DNS rebinding) can slip past. PermissionDenied with vet's reason when it
  // refused an address and no connection was made.
  [[nodiscard]] absl::StatusOr<HttpResponse> GetVetted(const std::string& url,
                                                       const AddressVet& vet);

 private:
  [[nodiscard]] absl::StatusOr<HttpResponse> Perform(const std::string& url,
                                                     const std::string* form,
                                                     const std::vector<std::string>& headers,
                                                     const AddressVet* vet = nullptr);

  Options options_;
};

}  // namespace llmbox::hub::activation
