// spoke/docker/curl_engine.h
//
// The real DockerEngine: the Engine API over libcurl, on the engine's unix socket or on TCP
// with TLS client certificates (a remote engine). Console attach and exec use a hijacked
// connection (spoke/docker/hijack.h) on the same endpoint: the unix socket, or TCP with TLS.
//
//   EngineEndpoint endpoint;
//   endpoint.unix_socket = "/run/docker.sock";
//   LLMBOX_ASSIGN_OR_RETURN(std::unique_ptr<DockerEngine> engine,
//                           CurlDockerEngine::Create(endpoint));
//
// The API version is negotiated on the first call through /_ping: the lower of the engine's
// and ours (1.47), refused below 1.41. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "spoke/docker/engine.h"

namespace llmbox::spoke::docker {

struct EngineEndpoint {
  // Exactly one of these.
  std::string unix_socket;  // e.g. "/run/docker.sock" (at most 107 bytes)
  std::string tcp_url;      // e.g. "https://docker-7.example:2376"
  // TLS to a TCP engine: the CA that signed the engine's certificate (empty: the system's
  // trust store), our client pair (both or neither). The engine's certificate must name the
  // URL's host.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Bound on one plain call (not on waits, stops and streams, which carry their own).
  std::chrono::milliseconds call_timeout{60'000};
};

class CurlDockerEngine {
 public:
  // Checks the endpoint's shape (not whether the engine answers: Ping() does that):
  // InvalidArgument for both or neither of socket and URL, a URL that is not
  // https://host:port, or a client certificate without its key.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DockerEngine>> Create(
      const EngineEndpoint& endpoint);
};

}  // namespace llmbox::spoke::docker
