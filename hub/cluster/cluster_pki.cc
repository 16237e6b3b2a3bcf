// hub/cluster/cluster_pki.cc
#include "hub/cluster/cluster_pki.h"

#include <filesystem>

#include "absl/time/time.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/status.h"

namespace llmbox::hub::cluster {
namespace {

struct Paths {
  explicit Paths(const std::string& dir)
      : ca_cert(dir + "/ca.crt"),
        ca_key(dir + "/ca.key"),
        hub_cert(dir + "/hub.crt"),
        hub_key(dir + "/hub.key") {}
  std::string ca_cert, ca_key, hub_cert, hub_key;
};

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

[[nodiscard]] absl::StatusOr<ClusterPki> ReadCa(const Paths& paths) {
  ClusterPki pki;
  auto cert = common::ReadSmallFile(paths.ca_cert);
  auto key = common::ReadSmallFile(paths.ca_key);
  if (!cert.ok() || !key.ok()) {
    return absl::FailedPreconditionError("cluster: cannot read the cluster CA (" + paths.ca_cert +
                                         ", " + paths.ca_key +
                                         "); both must be there and readable");
  }
  pki.ca = {.key_pem = *std::move(key), .cert_pem = *std::move(cert)};
  auto info = common::InspectCert(pki.ca.cert_pem);
  if (!info.ok() || !info->is_ca) {
    return absl::FailedPreconditionError("cluster: " + paths.ca_cert + " is not a CA certificate");
  }
  pki.ca_sha256 = info->sha256_fingerprint;
  pki.hub.ca_pem = pki.ca.cert_pem;
  return pki;
}

// The hub's certificate when both files are there and it has more than `renew_before` left.
bool ReadHubCert(const Paths& paths, std::chrono::milliseconds renew_before, ClusterPki* pki) {
  auto cert = common::ReadSmallFile(paths.hub_cert);
  auto key = common::ReadSmallFile(paths.hub_key);
  if (!cert.ok() || !key.ok()) return false;
  auto info = common::InspectCert(*cert);
  if (!info.ok() || info->not_after - absl::Now() < absl::FromChrono(renew_before)) return false;
  pki->hub.cert_pem = *std::move(cert);
  pki->hub.key_pem = *std::move(key);
  pki->hub_key_sha256 = {info->public_key_sha256};
  return true;
}

}  // namespace

std::string HubCertPath(const std::string& dir) { return Paths(dir).hub_cert; }
std::string HubKeyPath(const std::string& dir) { return Paths(dir).hub_key; }
std::string CaCertPath(const std::string& dir) { return Paths(dir).ca_cert; }

[[nodiscard]] absl::StatusOr<std::string> IssueHubCertificate(const common::CertifiedKey& ca,
                                                              const std::string& key_pem,
                                                              absl::Duration validity,
                                                              absl::Time start) {
  auto csr = common::MakeCsr(key_pem, "llmbox-hub");
  if (!csr.ok()) {
    return absl::FailedPreconditionError("cluster: the hub's key is not a usable private key: " +
                                         std::string(common::AsStd(csr.status().message())));
  }
  return common::SignCsr(
      ca, *csr, {.uri = std::string(common::kHubIdentity), .dns = {"llmbox-hub"}}, validity, start);
}

[[nodiscard]] absl::StatusOr<ClusterPki> LoadClusterPki(const std::string& dir) {
  const Paths paths(dir);
  if (!Exists(paths.ca_cert)) {
    return absl::FailedPreconditionError(
        "cluster: there is no cluster CA in " + dir +
        " yet: start the hub once with a cluster section (llmbox-hub serve), which creates it");
  }
  LLMBOX_ASSIGN_OR_RETURN(ClusterPki pki, ReadCa(paths));
  ReadHubCert(paths, std::chrono::milliseconds(0), &pki);
  return pki;
}

[[nodiscard]] absl::StatusOr<ClusterPki> LoadOrCreateClusterPki(const std::string& dir,
                                                                const ClusterPkiOptions& options) {
  const Paths paths(dir);
  if (!Exists(paths.ca_cert) && !Exists(paths.ca_key)) {
    LLMBOX_ASSIGN_OR_RETURN(
        common::CertifiedKey ca,
        common::MakeCa("llmbox cluster CA", absl::FromChrono(options.ca_validity)));
    // The key first: a crash in between leaves a key without a certificate, which is refused
    // below rather than silently replaced.
    LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(paths.ca_key, ca.key_pem, 0600));
    LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(paths.ca_cert, ca.cert_pem, 0644));
    spdlog::info("cluster: created the cluster CA in {}", dir);
  }
  LLMBOX_ASSIGN_OR_RETURN(ClusterPki pki, ReadCa(paths));
  if (!ReadHubCert(paths, options.hub_cert_renew_before, &pki)) {
    // The key spokes pinned is kept (docs/decisions/006-hub-identity.md).
    auto kept = common::ReadSmallFile(paths.hub_key);
    std::string key;
    if (kept.ok() && kept->find("-----BEGIN ") != std::string::npos) {
      key = *std::move(kept);
    } else {
      LLMBOX_ASSIGN_OR_RETURN(key, common::MakePrivateKey());
    }
    LLMBOX_ASSIGN_OR_RETURN(
        std::string cert,
        IssueHubCertificate(pki.ca, key, absl::FromChrono(options.hub_cert_validity), absl::Now()));
    LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(paths.hub_key, key, 0600));
    LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(paths.hub_cert, cert, 0644));
    LLMBOX_ASSIGN_OR_RETURN(common::CertInfo issued, common::InspectCert(cert));
    pki.hub_key_sha256 = {issued.public_key_sha256};
    pki.hub.key_pem = std::move(key);
    pki.hub.cert_pem = std::move(cert);
    spdlog::info("cluster: issued the hub's certificate ({})", common::kHubIdentity);
  }
  return pki;
}

}  // namespace llmbox::hub::cluster
