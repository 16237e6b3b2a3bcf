#include "common/grpc_tls.h"

#include "absl/strings/str_cat.h"
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/pki.h"
#include "common/secrets.h"

namespace llmbox::common {
namespace {

[[nodiscard]] absl::StatusOr<std::string> ReadPem(const std::string& path, std::string_view what) {
  absl::StatusOr<std::string> pem = ReadSmallFile(path);
  if (absl::IsFailedPrecondition(pem.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: the ", AsAbsl(what), " file ", pem.status().message()));
  }
  if (!pem.ok()) {
    return absl::NotFoundError(absl::StrCat("tls: cannot read the ", AsAbsl(what), " file ", path));
  }
  if (pem->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: the ", AsAbsl(what), " file ", path, " holds no PEM block"));
  }
  return pem;
}

// Accepts a peer whose certificate (already verified against the CA by gRPC) has exactly one
// URI SAN, equal to the pinned identity, and (when given) one of the pinned fingerprints.
class PinnedIdentityVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  PinnedIdentityVerifier(std::string identity, std::vector<std::string> fingerprints, PinBy pin_by)
      : identity_(std::move(identity)), fingerprints_(std::move(fingerprints)), pin_by_(pin_by) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    const auto uris = request->uri_names();
    if (uris.size() == 1 && std::string_view(uris[0].data(), uris[0].size()) == identity_) {
      *sync_status = CheckFingerprint(request->peer_cert());
    } else {
      std::string seen = uris.empty() ? "no URI identity" : "";
      for (const auto& uri : uris) {
        if (!seen.empty()) seen += ", ";
        seen.append(uri.data(), uri.size());
      }
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  "the peer is " + seen + ", not " + identity_);
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  grpc::Status CheckFingerprint(grpc::string_ref peer_pem) const {
    if (fingerprints_.empty()) return grpc::Status::OK;
    const std::string_view pem(peer_pem.data(), peer_pem.size());
    if (pin_by_ == PinBy::kPublicKey) {
      const absl::Status pinned = CheckPinnedKey(pem, fingerprints_);
      if (pinned.ok()) return grpc::Status::OK;
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "the peer " + identity_ + ": " + std::string(AsStd(pinned.message())));
    }
    auto info = InspectCert(pem);
    if (!info.ok()) {
      return grpc::Status(
          grpc::StatusCode::UNAUTHENTICATED,
          "the peer's certificate cannot be read: " + std::string(AsStd(info.status().message())));
    }
    for (const auto& allowed : fingerprints_) {
      if (ConstantTimeEquals(info->sha256_fingerprint, allowed)) return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the peer " + identity_ +
                            " presents certificate sha256:" + info->sha256_fingerprint +
                            ", not the one enrolled for it (replaced, or revoked when the "
                            "spoke was removed)");
  }

  const std::string identity_;
  const std::vector<std::string> fingerprints_;  // empty: any certificate of the identity
  const PinBy pin_by_;
};

std::shared_ptr<grpc::ChannelCredentials> PinnedChannelCredentials(
    std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider, bool identity,
    std::string_view peer_identity, std::vector<std::string> fingerprints = {},
    PinBy pin_by = PinBy::kCertificate) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(std::move(provider));
  options.watch_root_certs();
  if (identity) options.watch_identity_key_cert_pairs();
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<PinnedIdentityVerifier>(
          std::string(peer_identity), std::move(fingerprints), pin_by));
  options.set_check_call_host(false);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace

[[nodiscard]] absl::Status CheckPinnedKey(std::string_view cert_pem,
                                          const std::vector<std::string>& key_sha256) {
  if (key_sha256.empty()) return absl::OkStatus();
  auto info = InspectCert(cert_pem);
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("the certificate cannot be read: ", info.status().message()));
  }
  bool pinned = false;
  for (const auto& allowed : key_sha256) {
    pinned |= ConstantTimeEquals(info->public_key_sha256, allowed);
  }
  if (pinned) return absl::OkStatus();
  return absl::UnauthenticatedError(
      absl::StrCat("the certificate's key sha256:", info->public_key_sha256,
                   " is not one this spoke was told about at join or renewal (a rotated-out or "
                   "unknown hub key)"));
}

std::shared_ptr<grpc::ChannelCredentials> PinnedMutualTlsChannelCredentials(
    const TlsPems& pems, std::string_view peer_identity, std::vector<std::string> fingerprints,
    PinBy pin_by) {
  auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      pems.ca_pem, std::vector<grpc::experimental::IdentityKeyCertPair>{
                       {.private_key = pems.key_pem, .certificate_chain = pems.cert_pem}});
  return PinnedChannelCredentials(std::move(provider), /*identity=*/true, peer_identity,
                                  std::move(fingerprints), pin_by);
}

std::shared_ptr<grpc::ChannelCredentials> PinnedTlsChannelCredentials(
    std::string_view ca_pem, std::string_view peer_identity) {
  auto provider =
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(std::string(ca_pem));
  return PinnedChannelCredentials(std::move(provider), /*identity=*/false, peer_identity);
}

std::shared_ptr<grpc::ChannelCredentials> UnverifiedTlsChannelCredentials() {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

std::shared_ptr<grpc::ServerCredentials> OptionalClientTlsServerCredentials(const TlsPems& pems) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems.ca_pem;
  options.pem_key_cert_pairs.push_back({pems.key_pem, pems.cert_pem});
  return grpc::SslServerCredentials(options);
}

[[nodiscard]] absl::StatusOr<PeerCertificate> VerifiedPeer(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("a verified client certificate is required");
  }
  const auto uris = context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME);
  const auto certs = context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (uris.size() != 1 || certs.size() != 1) {
    return absl::UnauthenticatedError("the client certificate must carry exactly one URI identity");
  }
  return PeerCertificate{.uri = std::string(uris[0].data(), uris[0].size()),
                         .cert_pem = std::string(certs[0].data(), certs[0].size())};
}

std::string SpokeIdentity(std::string_view spoke_name) {
  return absl::StrCat("spiffe://llmbox/spoke/", AsAbsl(spoke_name));
}

[[nodiscard]] absl::StatusOr<TlsPems> ReadTlsFiles(const TlsFiles& files) {
  TlsPems pems;
  auto cert = ReadPem(files.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(files.key_file, "private key");
  if (!key.ok()) return key.status();
  auto ca = ReadPem(files.ca_file, "cluster CA");
  if (!ca.ok()) return ca.status();
  return TlsPems{*std::move(cert), *std::move(key), *std::move(ca)};
}

std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsPems& pems) {
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems.ca_pem;
  options.pem_key_cert_pairs.push_back({pems.key_pem, pems.cert_pem});
  return grpc::SslServerCredentials(options);
}

namespace {

std::shared_ptr<grpc::ServerCredentials> WatchedServerCredentials(
    const TlsFiles& files, unsigned int refresh_seconds,
    grpc_ssl_client_certificate_request_type request) {
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, refresh_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(request);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> WatchedMutualTlsServerCredentials(
    const TlsFiles& files, unsigned int refresh_seconds) {
  return WatchedServerCredentials(files, refresh_seconds,
                                  GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
}

std::shared_ptr<grpc::ServerCredentials> WatchedOptionalClientTlsServerCredentials(
    const TlsFiles& files, unsigned int refresh_seconds) {
  return WatchedServerCredentials(files, refresh_seconds,
                                  GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
}

std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsPems& pems) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems.ca_pem;
  options.pem_private_key = pems.key_pem;
  options.pem_cert_chain = pems.cert_pem;
  return grpc::SslCredentials(options);
}

[[nodiscard]] absl::Status AuthorizePeer(const grpc::AuthContext& context,
                                         std::string_view expected) {
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("a verified client certificate is required");
  }
  // peer_uri is set per URI SAN; exactly one, equal to the expected identity.
  const auto uris = context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME);
  if (uris.size() == 1 && std::string_view(uris[0].data(), uris[0].size()) == expected) {
    return absl::OkStatus();
  }
  std::string seen = uris.empty() ? "no URI identity" : "";
  for (const auto& uri : uris) {
    if (!seen.empty()) seen += ", ";
    seen.append(uri.data(), uri.size());
  }
  return absl::PermissionDeniedError(
      absl::StrCat("only ", AsAbsl(expected), " may call this service; the peer is ", seen));
}

}  // namespace llmbox::common
