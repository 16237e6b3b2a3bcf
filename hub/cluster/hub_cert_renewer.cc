// hub/cluster/hub_cert_renewer.cc
#include "hub/cluster/hub_cert_renewer.h"

#include <optional>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/status.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/hub_rotation.h"

namespace llmbox::hub::cluster {

HubCertificateRenewer::HubCertificateRenewer(
    std::string cluster_dir, common::CertifiedKey ca, common::Clock& clock,
    HubCertRenewerOptions options, std::function<void(const common::TlsPems&)> on_renewed,
    std::function<void(const std::vector<std::string>&)> announce)
    : dir_(std::move(cluster_dir)),
      ca_(std::move(ca)),
      clock_(clock),
      options_(options),
      on_renewed_(std::move(on_renewed)),
      announce_(std::move(announce)),
      task_(clock, options.check, [this] { Check(); }) {}

HubCertificateRenewer::~HubCertificateRenewer() { Stop(); }

absl::Time HubCertificateRenewer::DueAt(const common::CertInfo& cert) {
  return cert.not_before + (cert.not_after - cert.not_before) * 2 / 3;
}

absl::StatusOr<bool> HubCertificateRenewer::CheckOnce() {
  LLMBOX_ASSIGN_OR_RETURN(std::string pem, common::ReadSmallFile(HubCertPath(dir_)));
  LLMBOX_ASSIGN_OR_RETURN(common::CertInfo current, common::InspectCert(pem));
  const absl::Time now = absl::FromChrono(clock_.Now());
  LLMBOX_ASSIGN_OR_RETURN(std::optional<PendingRotation> rotation, ReadRotation(dir_));
  if (rotation) {
    if (!rotation->started) {
      LLMBOX_RETURN_IF_ERROR(MarkRotationStarted(dir_, *rotation, now));
      rotation->started = now;
      spdlog::info(
          "cluster: rotating the hub's key: spokes accept the new key sha256:{} beside the old "
          "one for {} s, then only the new one",
          rotation->key_sha256, absl::ToInt64Seconds(rotation->overlap));
    }
    if (now < *rotation->started + rotation->overlap) {
      if (announce_) announce_({current.public_key_sha256, rotation->key_sha256});
    } else {
      LLMBOX_RETURN_IF_ERROR(FinishRotation(dir_, *rotation));
      spdlog::info(
          "cluster: switched to the new hub key sha256:{}; the old key sha256:{} is "
          "dropped and its last certificate expires {}",
          rotation->key_sha256, current.public_key_sha256,
          absl::FormatTime(absl::RFC3339_sec, current.not_after, absl::UTCTimeZone()));
      if (on_renewed_) {
        on_renewed_(common::TlsPems{
            .cert_pem = rotation->cert_pem, .key_pem = rotation->key_pem, .ca_pem = ca_.cert_pem});
      }
      if (announce_) announce_({rotation->key_sha256});
      return true;
    }
  }
  // A certificate longer-lived than the hub now issues (a year, before 006) is replaced at once.
  const bool too_long =
      current.not_after - current.not_before > absl::FromChrono(options_.validity) + absl::Hours(1);
  if (now < DueAt(current) && !too_long) return false;
  LLMBOX_ASSIGN_OR_RETURN(std::string key, common::ReadSmallFile(HubKeyPath(dir_)));
  LLMBOX_ASSIGN_OR_RETURN(std::string cert,
                          IssueHubCertificate(ca_, key, absl::FromChrono(options_.validity), now));
  LLMBOX_RETURN_IF_ERROR(common::WriteFileAtomic(HubCertPath(dir_), cert, 0644));
  LLMBOX_ASSIGN_OR_RETURN(common::CertInfo renewed, common::InspectCert(cert));
  spdlog::info("cluster: renewed the hub's certificate for the same key (until {})",
               absl::FormatTime(absl::RFC3339_sec, renewed.not_after, absl::UTCTimeZone()));
  if (on_renewed_) {
    on_renewed_(common::TlsPems{
        .cert_pem = std::move(cert), .key_pem = std::move(key), .ca_pem = ca_.cert_pem});
  }
  return true;
}

void HubCertificateRenewer::Start() {
  spdlog::info("cluster: renews the hub's certificate two thirds into its {} h life",
               std::chrono::duration_cast<std::chrono::hours>(options_.validity).count());
  task_.Start();
  // The certificate may be due already (a hub that was down).
  task_.RunNow();
}

void HubCertificateRenewer::Stop() { task_.Stop(); }

int HubCertificateRenewer::Checks() const { return task_.runs(); }

bool HubCertificateRenewer::WaitForChecks(int count, common::Clock::SteadyTime deadline) {
  return task_.WaitForRuns(count, deadline);
}

void HubCertificateRenewer::Check() {
  if (auto renewed = CheckOnce(); !renewed.ok()) {
    spdlog::warn("cluster: could not renew the hub's certificate (tried again in {} s): {}",
                 std::chrono::duration_cast<std::chrono::seconds>(options_.check).count(),
                 common::AsStd(renewed.status().message()));
  }
}

}  // namespace llmbox::hub::cluster
