// spoke/docker/http_errors.h
//
// How the engine's HTTP answers become Status values, shared by the plain calls
// (curl_engine.cc) and the hijacked console connections (hijack.cc).
//
//   return StatusForHttp(404, "docker (unix:///run/docker.sock): " + EngineMessage(body));
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace llmbox::spoke::docker {

// The engine's {"message": ...} from an error body, or the body's first 300 bytes.
std::string EngineMessage(const std::string& body);

// 400 InvalidArgument, 401/403 PermissionDenied, 404 NotFound, 409 AlreadyExists for a name
// in use and FailedPrecondition for a conflict of state, 5xx Unavailable, else Unknown.
[[nodiscard]] absl::Status StatusForHttp(long http, std::string message);

// What to fix when TLS to a remote engine fails, in the words of the spoke's config.
inline constexpr const char* kCaHint =
    "set tls_ca_file to the CA that signed the engine's certificate";
inline constexpr const char* kHostHint =
    "reach the engine by a name or address its certificate lists";
inline constexpr const char* kClientCertHint =
    "set tls_cert_file and tls_key_file to a pair signed by the CA the engine trusts (its "
    "--tlscacert)";
// Said of a connection reset just after the handshake: with TLS 1.3 the engine checks our
// certificate after our side of the handshake is done, and may close before its alert is read.
inline constexpr const char* kResetAfterHandshake =
    "the engine closed the connection after the TLS handshake, as it does when it refuses our "
    "client certificate";

// True when OpenSSL's words say that the engine refused our client certificate (TLS 1.3
// reports it as an alert after the handshake, on the first read).
bool RefusedClientCertificate(std::string_view ssl_text);

}  // namespace llmbox::spoke::docker
