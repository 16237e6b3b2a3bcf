// common/grpc_tls.h
//
// Every gRPC credential of the cluster is built here: mutual TLS only, with the cluster CA,
// and peers authorized by the one URI SAN in their certificate (never the CN).
//
//   LLMBOX_ASSIGN_OR_RETURN(auto creds, MutualTlsServerCredentials(files));
//   builder.AddListeningPort("0.0.0.0:7443", creds, &port);
//   ...
//   grpc::Status Get(grpc::ServerContext* ctx, ...) override {
//     if (auto st = AuthorizePeer(*ctx->auth_context(), kHubIdentity); !st.ok()) ...
//
// Thread-safe; no state.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

namespace llmbox::common {

// The identities of the cluster.
inline constexpr std::string_view kHubIdentity = "spiffe://llmbox/hub";
std::string SpokeIdentity(std::string_view spoke_name);  // spiffe://llmbox/spoke/<name>

// PEM files of one party: its certificate (chain), its key, and the cluster CA.
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
};

// PEM contents of the same.
struct TlsPems {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;
};

// Reads the three files. NotFound / PermissionDenied naming the file that cannot be read.
absl::StatusOr<TlsPems> ReadTlsFiles(const TlsFiles& files);

// Server credentials that require a client certificate signed by the CA.
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsPems& pems);

// Channel credentials presenting our certificate and trusting only the CA.
std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsPems& pems);

// OK when the peer's certificate carries exactly the URI identity `expected`;
// Unauthenticated without a verified certificate, PermissionDenied for another identity.
absl::Status AuthorizePeer(const grpc::AuthContext& context, std::string_view expected);

}  // namespace llmbox::common
