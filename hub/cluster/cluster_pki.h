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

#include "common/grpc_tls.h"
#include "common/pki.h"

namespace llmbox::hub::cluster {

struct ClusterPkiOptions {
  std::chrono::milliseconds ca_validity = std::chrono::hours(24 * 3650);
  // The hub's certificate is issued anew at start when it has less than this left.
  std::chrono::milliseconds hub_cert_validity = std::chrono::hours(24 * 365);
  std::chrono::milliseconds hub_cert_renew_before = std::chrono::hours(24 * 30);
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

// Reads an existing CA (for the CLI: a token carries its fingerprint). FailedPrecondition
// saying to start the hub once when there is none yet.
[[nodiscard]] absl::StatusOr<ClusterPki> LoadClusterPki(const std::string& dir);

}  // namespace llmbox::hub::cluster
