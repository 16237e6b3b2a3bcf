// spoke/enroll/join.h
//
// `llmbox-spoke join`: enrolls this spoke with a hub using a one-time join token, and writes
// the spoke's key (0600), its certificate and the cluster CA into the files the config's tls
// section names, so `llmbox-spoke serve` then serves mutual TLS the hub accepts.
//
//   LLMBOX_ASSIGN_OR_RETURN(JoinResult joined,
//       JoinCluster({.hub_address = "hub.lan:7444", .token = token,
//                    .advertise_address = "10.0.0.5:7443"}, config));
//
// Trust: the token pins the cluster CA by fingerprint. The CA is fetched over TLS without
// verification, checked against the pin (nothing is sent before), and only then is the token
// sent, over TLS verified against that CA alone with the hub's identity required. The key is
// made here and never leaves the spoke. The hub's answer names the hub keys to accept from
// then on; they are pinned in <state_dir>/hub_pins.json (spoke/enroll/hub_pins.h), and every
// renewal replaces them with what the hub says then.
//
// Errors: InvalidArgument for a malformed token or address; Unavailable naming the hub's
// address when it cannot be reached; PermissionDenied when the CA does not match the token;
// the hub's own code and message when it refuses (unknown, used or expired token, bad CSR);
// FailedPrecondition naming the file that cannot be written. Thread-compatible.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "spoke/config/spoke_config.h"

namespace llmbox::spoke::enroll {

struct JoinOptions {
  std::string hub_address;        // host:port of the hub's enrollment listener
  std::string token;              // secret: never logged
  std::string advertise_address;  // host:port the hub will dial this spoke at
  std::map<std::string, std::string> labels;
  std::chrono::seconds timeout{30};  // per call to the hub
};

struct JoinResult {
  std::string spoke_name;
  absl::Time not_after;
  absl::Duration renew_before;
};

// Where join and renew leave the hub's enrollment address and the renewal margin the hub
// asked for (<state_dir>/enrollment.json), so `serve` can renew by itself.
struct Enrollment {
  std::string hub_address;
  absl::Duration renew_before;
};
[[nodiscard]] absl::Status WriteEnrollment(const config::SpokeConfig& config,
                                           const Enrollment& enrollment);
// NotFound when this spoke never joined; DataLoss for a file join did not write.
[[nodiscard]] absl::StatusOr<Enrollment> ReadEnrollment(const config::SpokeConfig& config);

[[nodiscard]] absl::StatusOr<JoinResult> JoinCluster(const JoinOptions& options,
                                                     const config::SpokeConfig& config);

// `llmbox-spoke renew`: asks the hub at `hub_address` for a new certificate for a fresh key,
// over mutual TLS with the current certificate from the config's tls files (the hub must be
// spiffe://llmbox/hub under the cluster CA, with a pinned key when this spoke has pins), and
// replaces the key, certificate and CA files and the hub key pins.
// A serving spoke picks the new files up by itself (they are watched). Errors as JoinCluster,
// and NotFound naming a tls file that cannot be read.
[[nodiscard]] absl::StatusOr<JoinResult> RenewCertificate(
    const std::string& hub_address, const config::SpokeConfig& config,
    std::chrono::seconds timeout = std::chrono::seconds(30));

}  // namespace llmbox::spoke::enroll
