#include "common/grpc_tls.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include <grpc/grpc_security_constants.h>

#include "common/absl_compat.h"

namespace llmbox::common {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("tls: cannot read the ", AsAbsl(what), " file ", path));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls: the ", AsAbsl(what), " file ", path, " holds no PEM block"));
  }
  return out.str();
}

}  // namespace

std::string SpokeIdentity(std::string_view spoke_name) {
  return absl::StrCat("spiffe://llmbox/spoke/", AsAbsl(spoke_name));
}

absl::StatusOr<TlsPems> ReadTlsFiles(const TlsFiles& files) {
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

std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsPems& pems) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems.ca_pem;
  options.pem_private_key = pems.key_pem;
  options.pem_cert_chain = pems.cert_pem;
  return grpc::SslCredentials(options);
}

absl::Status AuthorizePeer(const grpc::AuthContext& context, std::string_view expected) {
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
