// spoke/enroll/renewer.cc
#include "spoke/enroll/renewer.h"

#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/pki.h"
#include "common/status.h"
#include "spoke/enroll/join.h"

namespace llmbox::spoke::enroll {

CertificateRenewer::CertificateRenewer(const config::SpokeConfig& config, common::Clock& clock,
                                       HubPins* pins)
    : config_(config),
      clock_(clock),
      pins_(pins),
      task_(clock, config.renew_check, [this] { Check(); }) {}

CertificateRenewer::~CertificateRenewer() { Stop(); }

absl::StatusOr<bool> CertificateRenewer::CheckOnce() {
  if (pins_ != nullptr) LLMBOX_RETURN_IF_ERROR(pins_->Load());
  LLMBOX_ASSIGN_OR_RETURN(Enrollment enrollment, ReadEnrollment(config_));
  LLMBOX_ASSIGN_OR_RETURN(std::string pem, common::ReadSmallFile(config_.tls.cert_file));
  LLMBOX_ASSIGN_OR_RETURN(common::CertInfo cert, common::InspectCert(pem));
  const absl::Time now = absl::FromChrono(clock_.Now());
  if (now < cert.not_after - enrollment.renew_before) return false;
  LLMBOX_ASSIGN_OR_RETURN(JoinResult renewed, RenewCertificate(enrollment.hub_address, config_));
  if (pins_ != nullptr) LLMBOX_RETURN_IF_ERROR(pins_->Load());
  spdlog::info("spoke {}: renewed its certificate with the hub at {}; valid until {}",
               renewed.spoke_name, enrollment.hub_address,
               absl::FormatTime(absl::RFC3339_sec, renewed.not_after, absl::UTCTimeZone()));
  return true;
}

void CertificateRenewer::Start() {
  if (auto enrollment = ReadEnrollment(config_); !enrollment.ok()) {
    spdlog::info("spoke {}: no automatic certificate renewal ({})", config_.name,
                 common::AsStd(enrollment.status().message()));
    return;
  }
  spdlog::info("spoke {}: checks its certificate every {} s and renews it before it expires",
               config_.name,
               std::chrono::duration_cast<std::chrono::seconds>(config_.renew_check).count());
  task_.Start();
  // A certificate may have run out while the spoke was down: check now, not one interval on.
  task_.RunNow();
}

void CertificateRenewer::Stop() { task_.Stop(); }

int CertificateRenewer::Checks() const { return task_.runs(); }

bool CertificateRenewer::WaitForChecks(int count, common::Clock::SteadyTime deadline) {
  return task_.WaitForRuns(count, deadline);
}

void CertificateRenewer::Check() {
  if (auto renewed = CheckOnce(); !renewed.ok()) {
    spdlog::warn("spoke {}: could not renew its certificate (tried again in {} s): {}",
                 config_.name,
                 std::chrono::duration_cast<std::chrono::seconds>(config_.renew_check).count(),
                 common::AsStd(renewed.status().message()));
  }
}

}  // namespace llmbox::spoke::enroll
