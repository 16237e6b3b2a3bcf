// hub/cluster/cluster_pki.h
//
// The cluster's trust root, kept in the hub's state directory: the cluster CA (EC P-256,
// created on first start, key 0600) and the hub's own certificate (identity
// spiffe://llmbox/hub), which the hub presents when it dials spokes and on its enrollment
// listener.
//
//   LLMBOX_ASSIGN_OR_RETURN(ClusterPki pki, LoadOrCreateClusterPki(state_dir + "/cluster", {}));
//   auto creds = common::PinnedMutualTlsChannelCredentials(pki.hub, SpokeIdentity("spoke-1"));
//
// Files in `dir`: ca.crt, ca.key (0600), hub.crt, hub.key (0600). Not thread-safe across
// processes at first creation (the hub creates them at start; the CLI only reads them).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/grpc_tls.h"
#include "common/pki.h"

namespace llmbox::hub::cluster {

struct ClusterPkiOptions {
  std::chrono::milliseconds ca_validity = std::chrono::hours(24 * 3650);
  // The hub's certificate is short-lived (docs/decisions/006-hub-identity.md): issued anew
  // for the same key at start when it has less than `hub_cert_renew_before` left, and while
  // the hub serves by HubCertificateRenewer (hub/cluster/hub_cert_renewer.h).
  std::chrono::milliseconds hub_cert_validity = std::chrono::hours(24);
  std::chrono::milliseconds hub_cert_renew_before = std::chrono::hours(8);
};

struct ClusterPki {
  common::CertifiedKey ca;
  std::string ca_sha256;  // the fingerprint join tokens carry
  common::TlsPems hub;    // the hub's certificate and key, and the CA
  // The hub keys spokes are told to accept (hex SHA-256 of each public key), the current
  // one first. Spokes pin these at join and renewal (docs/decisions/006-hub-identity.md).
  std::vector<std::string> hub_key_sha256;
};

// Reads the CA and the hub's certificate from `dir`, creating what is missing (the folder
// with mode 0700). A hub certificate near its end is issued anew for the same key, so spokes
// that pinned the key keep accepting the hub. FailedPrecondition naming the file when one is
// unreadable or only half of the CA is present.
[[nodiscard]] absl::StatusOr<ClusterPki> LoadOrCreateClusterPki(const std::string& dir,
                                                                const ClusterPkiOptions& options);

// The paths of the hub's files in a cluster directory.
std::string HubCertPath(const std::string& dir);  // hub.crt
std::string HubKeyPath(const std::string& dir);   // hub.key
std::string CaCertPath(const std::string& dir);   // ca.crt

// A certificate for the hub's key `key_pem` (identity spiffe://llmbox/hub, DNS llmbox-hub),
// signed by `ca`, valid for `validity` from `start`. FailedPrecondition when the key is not
// usable.
[[nodiscard]] absl::StatusOr<std::string> IssueHubCertificate(const common::CertifiedKey& ca,
                                                              const std::string& key_pem,
                                                              absl::Duration validity,
                                                              absl::Time start);

// Reads an existing CA (for the CLI: a token carries its fingerprint). FailedPrecondition
// saying to start the hub once when there is none yet.
[[nodiscard]] absl::StatusOr<ClusterPki> LoadClusterPki(const std::string& dir);

}  // namespace llmbox::hub::cluster
