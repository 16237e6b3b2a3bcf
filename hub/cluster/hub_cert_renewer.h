// hub/cluster/hub_cert_renewer.h
//
// Keeps the hub's short-lived certificate (<cluster dir>/hub.crt) fresh while the hub serves:
// every `check` it reads the certificate, and once two thirds of its life has passed (on the
// injected clock), or at once when it lives longer than `validity` (one from before short
// lives), it issues a new one for the same key (hub.key, which spokes pinned), writes
// it atomically, and hands the new pair to `on_renewed` (the hub redials its spokes with it).
// The enrollment listener reads the files itself (a watched credential). A failed renewal is
// logged and tried again at the next check; the current certificate stays valid until its end.
//
//   HubCertificateRenewer renewer(dir, pki.ca, clock, {.validity = std::chrono::hours(24)},
//                                 [&](const common::TlsPems& hub) { remote.SetHub(hub); });
//   renewer.Start();   // a thread (common::PeriodicTask); Stop() (or the destructor) ends it
//
// It also carries out `llmbox-hub cluster rotate-identity`: while a rotation's overlap runs it
// announces both keys at every check; when the overlap ends it makes the new key the hub's,
// hands it to `on_renewed`, and announces the new key alone.
//
// Why short-lived: docs/decisions/006-hub-identity.md. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "common/grpc_tls.h"
#include "common/periodic.h"
#include "common/pki.h"

namespace llmbox::hub::cluster {

struct HubCertRenewerOptions {
  std::chrono::milliseconds validity = std::chrono::hours(24);  // of each new certificate
  std::chrono::milliseconds check = std::chrono::seconds(10);   // how often to look
};

class HubCertificateRenewer {
 public:
  // `clock` must outlive the renewer. On the renewer's thread: `on_renewed` (may be empty)
  // after a new certificate or key is on disk (the hub dials with it from then on);
  // `announce` (may be empty) with the hub keys spokes must accept, at every check during a
  // rotation (both keys) and once at its end (the new key, after on_renewed).
  HubCertificateRenewer(std::string cluster_dir, common::CertifiedKey ca, common::Clock& clock,
                        HubCertRenewerOptions options,
                        std::function<void(const common::TlsPems&)> on_renewed,
                        std::function<void(const std::vector<std::string>&)> announce = nullptr);
  ~HubCertificateRenewer();  // Stop()

  HubCertificateRenewer(const HubCertificateRenewer&) = delete;
  HubCertificateRenewer& operator=(const HubCertificateRenewer&) = delete;

  // When the current certificate is due: two thirds into its life.
  static absl::Time DueAt(const common::CertInfo& cert);

  // One check: carries a rotation (hub/cluster/hub_rotation.h) forward, then renews the
  // certificate when due. True when the hub's certificate or key changed. Errors: the files'
  // (NotFound naming hub.crt or hub.key), FailedPrecondition for an unusable key, DataLoss for
  // a broken rotation, the write's.
  [[nodiscard]] absl::StatusOr<bool> CheckOnce();

  // Checks every options.check on a background thread until Stop().
  void Start();
  // Waits for a check in progress. A stopped renewer does not start again.
  void Stop();

  // Checks finished by the background thread, and a wait (through the clock) for them (tests).
  int Checks() const;
  bool WaitForChecks(int count, common::Clock::SteadyTime deadline);

 private:
  void Check();  // CheckOnce, logging a failure

  const std::string dir_;
  const common::CertifiedKey ca_;
  common::Clock& clock_;
  const HubCertRenewerOptions options_;
  const std::function<void(const common::TlsPems&)> on_renewed_;
  const std::function<void(const std::vector<std::string>&)> announce_;
  // Last, so it stops before what its checks use goes away.
  common::PeriodicTask task_;
};

}  // namespace llmbox::hub::cluster
