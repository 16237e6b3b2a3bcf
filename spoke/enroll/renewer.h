// spoke/enroll/renewer.h
//
// Keeps a joined spoke's certificate fresh while it serves: every `check` it reads its
// certificate's expiry, and once within the `renew_before` margin the hub asked for at join
// (<state_dir>/enrollment.json) it renews with that hub, as `llmbox-spoke renew` does. The
// server watches the files, so the new certificate is served without a restart. A failed
// renewal is logged and tried again at the next check.
//
//   CertificateRenewer renewer(config, SystemClock::Get());
//   renewer.Start();   // a thread (common::PeriodicTask); Stop() (or the destructor) ends it
//
// Thread-safe.
#pragma once

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "common/periodic.h"
#include "spoke/config/spoke_config.h"
#include "spoke/enroll/hub_pins.h"

namespace llmbox::spoke::enroll {

class CertificateRenewer {
 public:
  // `config` and `clock` must outlive the renewer; `config.renew_check` must be positive (the
  // config checks it is at least 1 s). `pins` (may be null; must outlive the renewer) is
  // reloaded from its file at every check, so pins written by a renewal, here or by
  // `llmbox-spoke renew`, take effect on the serving spoke.
  CertificateRenewer(const config::SpokeConfig& config, common::Clock& clock,
                     HubPins* pins = nullptr);
  ~CertificateRenewer();  // Stop()

  CertificateRenewer(const CertificateRenewer&) = delete;
  CertificateRenewer& operator=(const CertificateRenewer&) = delete;

  // One check: whether the certificate was renewed. Errors: NotFound when this spoke never
  // joined, the certificate file's or the hub's errors when renewing failed.
  [[nodiscard]] absl::StatusOr<bool> CheckOnce();

  // When this spoke joined a hub (its enrollment file exists), checks now and then every
  // config.renew_check on a background thread until Stop(); otherwise logs why there is no
  // automatic renewal and starts nothing.
  void Start();
  // Waits for a check in progress. A stopped renewer does not start again.
  void Stop();

  // Checks finished by the background thread, and a wait (through the clock) until at least
  // `count` have or `deadline` passes: true when they have (for tests).
  int Checks() const;
  bool WaitForChecks(int count, common::Clock::SteadyTime deadline);

 private:
  // CheckOnce, logging a failure.
  void Check();

  const config::SpokeConfig& config_;
  common::Clock& clock_;
  HubPins* const pins_;
  // Last, so it stops before what its checks use goes away.
  common::PeriodicTask task_;
};

}  // namespace llmbox::spoke::enroll
