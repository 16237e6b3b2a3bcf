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
#include <vector>

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
[[nodiscard]] absl::StatusOr<TlsPems> ReadTlsFiles(const TlsFiles& files);

// Server credentials that require a client certificate signed by the CA.
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsPems& pems);

// The same, read from the files and read again every `refresh_seconds`, so a renewed
// certificate (written over the files) serves new connections without a restart. The files
// must be readable when this is called (check with ReadTlsFiles for a clear error).
std::shared_ptr<grpc::ServerCredentials> WatchedMutualTlsServerCredentials(
    const TlsFiles& files, unsigned int refresh_seconds = 60);

// Channel credentials presenting our certificate and trusting only the CA.
std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsPems& pems);

// Channel credentials presenting our certificate, trusting only the CA, and accepting only a
// server whose one URI SAN is `peer_identity`. The host name dialed is not checked against
// the certificate (the identity is what is authorized, so a spoke can be dialed by any
// address): the hub dials spokes with this, pinned to spiffe://llmbox/spoke/<name>. With
// `fingerprints` (hex SHA-256 of the DER, as CertInfo::sha256_fingerprint), the server's
// certificate must also be one of them: the hub pins each spoke to the certificates it
// issued for the spoke's current enrollment, so a removed spoke's certificate is refused.
// With PinBy::kPublicKey the fingerprints are of the certificate's key
// (CertInfo::public_key_sha256): a spoke pins the hub's keys, which outlive its short-lived
// certificates (docs/decisions/006-hub-identity.md).
enum class PinBy { kCertificate, kPublicKey };
std::shared_ptr<grpc::ChannelCredentials> PinnedMutualTlsChannelCredentials(
    const TlsPems& pems, std::string_view peer_identity, std::vector<std::string> fingerprints = {},
    PinBy pin_by = PinBy::kCertificate);

// OK when `cert_pem`'s key is one of `key_sha256` (hex SHA-256 of the DER public key, as
// CertInfo::public_key_sha256) or when `key_sha256` is empty (nothing pinned). Unauthenticated
// naming the key otherwise, or when the certificate cannot be read.
[[nodiscard]] absl::Status CheckPinnedKey(std::string_view cert_pem,
                                          const std::vector<std::string>& key_sha256);

// Server-authenticated TLS without a client certificate: trusts only `ca_pem` and accepts
// only a server whose one URI SAN is `peer_identity` (a joining spoke, before it has a
// certificate, calling the hub's enrollment service).
std::shared_ptr<grpc::ChannelCredentials> PinnedTlsChannelCredentials(
    std::string_view ca_pem, std::string_view peer_identity);

// TLS that does not verify the server at all. Only for fetching a CA certificate that is then
// checked against a pinned fingerprint (common/join_token.h) before anything is trusted or
// sent; never for anything else.
std::shared_ptr<grpc::ChannelCredentials> UnverifiedTlsChannelCredentials();

// Server credentials that ask for a client certificate but do not require one; one that is
// presented must be signed by the CA. Handlers decide with AuthorizePeer / PeerUri (the hub's
// enrollment service: Join comes without a certificate, Renew with one).
std::shared_ptr<grpc::ServerCredentials> OptionalClientTlsServerCredentials(const TlsPems& pems);

// The same, read from the files and read again every `refresh_seconds` (the hub's enrollment
// listener, whose short-lived certificate the hub renews on disk). The files must be readable
// when this is called.
std::shared_ptr<grpc::ServerCredentials> WatchedOptionalClientTlsServerCredentials(
    const TlsFiles& files, unsigned int refresh_seconds = 60);

// The verified peer's one URI SAN and its certificate (PEM). Unauthenticated when the peer
// presented no verified certificate or not exactly one URI SAN.
struct PeerCertificate {
  std::string uri;
  std::string cert_pem;
};
[[nodiscard]] absl::StatusOr<PeerCertificate> VerifiedPeer(const grpc::AuthContext& context);

// OK when the peer's certificate carries exactly the URI identity `expected`;
// Unauthenticated without a verified certificate, PermissionDenied for another identity.
[[nodiscard]] absl::Status AuthorizePeer(const grpc::AuthContext& context,
                                         std::string_view expected);

}  // namespace llmbox::common
