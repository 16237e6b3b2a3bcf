// spoke/enroll/renewer.h
//
// Keeps a joined spoke's certificate fresh while it serves: every `check` it reads its
// certificate's expiry, and once within the `renew_before` margin the hub asked for at join
// (<state_dir>/enrollment.json) it renews with that hub, as `llmbox-spoke renew` does. The
// server watches the files, so the new certificate is served without a restart. A failed
// renewal is logged and tried again at the next check.
//
//   CertificateRenewer renewer(config, SystemClock::Get());
//   renewer.Start();   // a thread; Stop() (or the destructor) ends it
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "spoke/config/spoke_config.h"

namespace llmbox::spoke::enroll {

class CertificateRenewer {
 public:
  // `config` and `clock` must outlive the renewer.
  CertificateRenewer(const config::SpokeConfig& config, common::Clock& clock);
  ~CertificateRenewer();

  // One check: whether the certificate was renewed. Errors: NotFound when this spoke never
  // joined, the certificate file's or the hub's errors when renewing failed.
  absl::StatusOr<bool> CheckOnce();

  void Start();
  void Stop();

 private:
  void Run();

  const config::SpokeConfig& config_;
  common::Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmbox::spoke::enroll
