// hub/cluster/hub_rotation.h
//
// A rotation of the hub's key (docs/decisions/006-hub-identity.md), as files in the cluster
// directory, so `llmbox-hub cluster rotate-identity` (a separate process) can start one that
// the serving hub (HubCertificateRenewer) carries out:
//
//   hub.next.key (0600), hub.next.crt   the new key and its certificate
//   hub.next.json                       {"overlap_seconds": N, "started_unix_ms": M}; M is
//                                       written by the hub when it first announces the key
//
//   LLMBOX_RETURN_IF_ERROR(StartRotation(dir, ca, absl::Minutes(10), absl::Now()));  // CLI
//   LLMBOX_ASSIGN_OR_RETURN(std::optional<PendingRotation> r, ReadRotation(dir));     // hub
//
// Not thread-safe across processes beyond this: the CLI only creates the files (refusing when
// a rotation is pending), the hub only marks and finishes it.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "common/pki.h"

namespace llmbox::hub::cluster {

// The overlap may be 1 s .. 24 h (a longer one would outlive the new key's first certificate).
inline constexpr absl::Duration kMinRotationOverlap = absl::Seconds(1);
inline constexpr absl::Duration kMaxRotationOverlap = absl::Hours(23);

struct PendingRotation {
  std::string key_pem;
  std::string cert_pem;
  std::string key_sha256;  // of the new key
  absl::Duration overlap;
  std::optional<absl::Time> started;  // when the hub first announced the new key
};

// Makes a new key and a certificate for it (valid `validity` from `now`) and writes the
// rotation's files. AlreadyExists when a rotation is pending; InvalidArgument for an overlap
// outside 1s..23h; the write's errors.
[[nodiscard]] absl::StatusOr<PendingRotation> StartRotation(const std::string& dir,
                                                            const common::CertifiedKey& ca,
                                                            absl::Duration overlap, absl::Time now,
                                                            absl::Duration validity);

// The pending rotation, or nullopt. DataLoss naming the file when its files are incomplete or
// unreadable.
[[nodiscard]] absl::StatusOr<std::optional<PendingRotation>> ReadRotation(const std::string& dir);

// Records when the hub first announced the new key.
[[nodiscard]] absl::Status MarkRotationStarted(const std::string& dir,
                                               const PendingRotation& rotation, absl::Time now);

// Makes the new key the hub's (hub.key, hub.crt) and removes the rotation's files.
[[nodiscard]] absl::Status FinishRotation(const std::string& dir, const PendingRotation& rotation);

}  // namespace llmbox::hub::cluster
