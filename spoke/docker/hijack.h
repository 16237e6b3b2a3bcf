// spoke/docker/hijack.h
//
// The engine's hijacked connections: container attach and exec start answer an HTTP request
// with "101 UPGRADED" (or 200) and from then on the connection carries the console's bytes
// both ways. This is that connection, on the engine's unix socket, on TCP, or on TCP with TLS
// (the engine's certificate checked against our CA and its host name, our client certificate
// presented). libcurl cannot write to an upgraded connection, so this is a plain socket with
// OpenSSL on it (kept inside hijack.cc).
//
//   HijackTarget target{.host = "docker-7.example", .port = 2376, .tls = true,
//                       .tls_ca_file = "ca.pem", .tls_cert_file = "cert.pem",
//                       .tls_key_file = "key.pem", .name = "https://docker-7.example:2376"};
//   LLMBOX_ASSIGN_OR_RETURN(auto console,
//       HijackedStream::Open(target, "/v1.41/containers/abc/attach?stream=1&stdin=1&stdout=1",
//                            "", /*tty=*/true, std::chrono::seconds(10)));
//   LLMBOX_RETURN_IF_ERROR(console->Write("a-code\r"));
//   LLMBOX_ASSIGN_OR_RETURN(std::string out, console->Read(std::chrono::seconds(1)));
//   LLMBOX_RETURN_IF_ERROR(console->CloseStdin());   // the container reads EOF; output goes on
//
// Thread-safety: one reader and one writer may use a stream at the same time (Read on one
// thread while Write or CloseStdin runs on another), and Close may come from a third: it wakes
// them, and the connection's memory lives until the stream is destroyed.
// Errors name the engine (`name`) and say what to fix: a TLS handshake that fails names the
// host and whether the CA, the host name or our client certificate was refused.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "spoke/docker/engine.h"
#include "spoke/docker/stream.h"

namespace llmbox::spoke::docker {

struct HijackTarget {
  // Either a unix socket path, or a TCP host (name, IPv4 or IPv6 literal) and port.
  std::string unix_socket;
  std::string host;
  int port = 0;
  // TLS on the TCP connection. An empty CA file means the system's trust store; an empty
  // client certificate means none is presented.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // The engine as shown in messages, e.g. "https://docker-7.example:2376".
  std::string name;
};

// Splits "https://host:port" (or "https://[::1]:port") into `host` and `port` of `target`
// and sets `tls`. InvalidArgument, naming the URL, for any other shape.
[[nodiscard]] absl::Status ParseEngineUrl(std::string_view url, HijackTarget* target);

class HijackedStream final : public AttachStream {
 public:
  // Connects, sends `POST path` with the JSON `body` and the upgrade headers, and reads the
  // reply head, all within `timeout`. The engine's refusal (404 for a missing container, ...)
  // comes back as its message and code; no answer in time is DeadlineExceeded; a connection
  // or TLS failure is Unavailable.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HijackedStream>> Open(
      const HijackTarget& target, const std::string& path, const std::string& body, bool tty,
      std::chrono::milliseconds timeout);
  ~HijackedStream() override;

  [[nodiscard]] absl::Status Write(std::string_view data) override;
  [[nodiscard]] absl::StatusOr<std::string> Read(std::chrono::milliseconds timeout) override;
  [[nodiscard]] absl::Status CloseStdin() override;
  void Close() override;

  // Reads what arrives within `timeout` into `out` (stdout) and `err` (stderr; may be the same
  // string). OutOfRange at the end of the stream.
  [[nodiscard]] absl::Status ReadInto(std::chrono::milliseconds timeout, std::string* out,
                                      std::string* err);

  class Transport;  // a unix, TCP or TLS connection (hijack.cc)

 private:
  HijackedStream(std::unique_ptr<Transport> transport, std::string name, bool tty);

  std::unique_ptr<Transport> transport_;
  std::string name_;
  FrameDecoder decoder_;
  std::string early_;  // stream bytes that arrived with the upgrade reply
  bool eof_ = false;
  std::atomic<bool> closed_ = false;  // Close was called (from any thread)
};

}  // namespace llmbox::spoke::docker
