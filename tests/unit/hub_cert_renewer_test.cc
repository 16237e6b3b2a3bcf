// The hub's short-lived certificate on a fake clock: renewed for the same key two thirds into
// its life (not before), written over hub.crt, handed to the hub to redial with, checked at
// start and then every check interval, and a failed renewal leaves the certificate in place.

#include "hub/cluster/hub_cert_renewer.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/files.h"
#include "common/pki.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/hub_rotation.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScratchDir;

// A cluster directory whose hub certificate (24 h) starts at the fake clock's now.
struct Cluster {
  Cluster(const ScratchDir& scratch, FakeClock& clock)
      : dir((scratch.path() / "cluster").string()) {
    auto made = LoadOrCreateClusterPki(dir, {});
    REQUIRE(made.ok());
    pki = *std::move(made);
    auto cert = IssueHubCertificate(pki.ca, pki.hub.key_pem, absl::Hours(24),
                                    absl::FromChrono(clock.Now()));
    REQUIRE(cert.ok());
    REQUIRE(common::WriteFileAtomic(HubCertPath(dir), *cert, 0644).ok());
    first_cert = *cert;
  }
  std::string HubCert() const {
    auto pem = common::ReadSmallFile(HubCertPath(dir));
    REQUIRE(pem.ok());
    return *pem;
  }
  std::string dir;
  ClusterPki pki;
  std::string first_cert;
};

common::CertInfo Inspect(const std::string& pem) {
  auto info = common::InspectCert(pem);
  REQUIRE(info.ok());
  return *info;
}

TEST_CASE("the hub renews its certificate for the same key two thirds into its life, not before",
          "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-cert-renew");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  std::optional<common::TlsPems> handed;
  HubCertificateRenewer renewer(cluster.dir, cluster.pki.ca, clock, {.validity = 24h},
                                [&](const common::TlsPems& hub) { handed = hub; });

  auto early = renewer.CheckOnce();
  REQUIRE(early.ok());
  CHECK_FALSE(*early);
  // Backdated a minute: two thirds of 24 h + 1 min from one minute before the start.
  clock.Advance(16h - 2min);
  early = renewer.CheckOnce();
  REQUIRE(early.ok());
  CHECK_FALSE(*early);
  CHECK(cluster.HubCert() == cluster.first_cert);
  CHECK_FALSE(handed.has_value());

  clock.Advance(2min);
  auto due = renewer.CheckOnce();
  INFO(due.status().ToString());
  REQUIRE(due.ok());
  CHECK(*due);
  const std::string renewed = cluster.HubCert();
  CHECK(renewed != cluster.first_cert);
  const common::CertInfo before = Inspect(cluster.first_cert);
  const common::CertInfo after = Inspect(renewed);
  CHECK(after.public_key_sha256 == before.public_key_sha256);  // the pinned key
  CHECK(after.uris == std::vector<std::string>{std::string(common::kHubIdentity)});
  CHECK(after.not_after - after.not_before == absl::Hours(24) + absl::Minutes(1));
  CHECK(after.not_before == absl::FromChrono(clock.Now()) - absl::Minutes(1));
  REQUIRE(handed.has_value());
  CHECK(handed->cert_pem == renewed);
  CHECK(handed->key_pem == cluster.pki.hub.key_pem);
  CHECK(handed->ca_pem == cluster.pki.ca.cert_pem);

  // The new certificate is not due for another two thirds of a day.
  auto again = renewer.CheckOnce();
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("the hub's certificate renewer checks at start and then every check interval",
          "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-cert-periodic");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  int renewals = 0;
  HubCertificateRenewer renewer(cluster.dir, cluster.pki.ca, clock,
                                {.validity = 24h, .check = 1min},
                                [&](const common::TlsPems&) { ++renewals; });
  renewer.Start();
  REQUIRE(renewer.WaitForChecks(1, clock.SteadyNow() + 1h));
  CHECK(renewals == 0);
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(1min);
  REQUIRE(renewer.WaitForChecks(2, clock.SteadyNow() + 1h));
  CHECK(renewals == 0);
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(16h);  // one wake-up, past the due time
  REQUIRE(renewer.WaitForChecks(3, clock.SteadyNow() + 1h));
  CHECK(renewals == 1);
  renewer.Stop();
  CHECK(cluster.HubCert() != cluster.first_cert);
}

TEST_CASE("a hub certificate renewal that fails leaves the certificate in place",
          "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-cert-fail");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  REQUIRE(common::WriteFileAtomic(HubKeyPath(cluster.dir), "not a key", 0600).ok());
  HubCertificateRenewer renewer(cluster.dir, cluster.pki.ca, clock, {}, nullptr);
  clock.Advance(20h);
  auto failed = renewer.CheckOnce();
  CHECK(failed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(cluster.HubCert() == cluster.first_cert);
}

TEST_CASE(
    "a rotation announces both keys during its overlap, then switches to the new key and "
    "announces it alone",
    "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-rotate");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  const std::string old_key = Inspect(cluster.first_cert).public_key_sha256;
  auto rotation = StartRotation(cluster.dir, cluster.pki.ca, absl::Minutes(10),
                                absl::FromChrono(clock.Now()), absl::Hours(24));
  REQUIRE(rotation.ok());
  CHECK(rotation->key_sha256 != old_key);
  // One rotation at a time, with a sane overlap.
  CHECK(StartRotation(cluster.dir, cluster.pki.ca, absl::Minutes(10), absl::Now(), absl::Hours(24))
            .status()
            .code() == absl::StatusCode::kAlreadyExists);

  std::vector<std::vector<std::string>> announced;
  std::optional<common::TlsPems> handed;
  HubCertificateRenewer renewer(
      cluster.dir, cluster.pki.ca, clock, {}, [&](const common::TlsPems& hub) { handed = hub; },
      [&](const std::vector<std::string>& keys) { announced.push_back(keys); });
  const std::vector<std::string> both = {old_key, rotation->key_sha256};

  auto first = renewer.CheckOnce();
  REQUIRE(first.ok());
  CHECK_FALSE(*first);
  REQUIRE(announced.size() == 1);
  CHECK(announced[0] == both);
  auto pending = ReadRotation(cluster.dir);
  REQUIRE(pending.ok());
  REQUIRE(pending->has_value());
  CHECK((*pending)->started == absl::FromChrono(clock.Now()));

  clock.Advance(10min - 1s);  // still in the overlap: announced again (for spokes that were down)
  auto during = renewer.CheckOnce();
  REQUIRE(during.ok());
  CHECK_FALSE(*during);
  REQUIRE(announced.size() == 2);
  CHECK(announced[1] == both);
  CHECK_FALSE(handed.has_value());
  auto key_during = common::ReadSmallFile(HubKeyPath(cluster.dir));
  REQUIRE(key_during.ok());
  CHECK(*key_during == cluster.pki.hub.key_pem);

  clock.Advance(1s);
  auto switched = renewer.CheckOnce();
  INFO(switched.status().ToString());
  REQUIRE(switched.ok());
  CHECK(*switched);
  REQUIRE(handed.has_value());
  CHECK(handed->key_pem == rotation->key_pem);
  CHECK(handed->cert_pem == rotation->cert_pem);
  REQUIRE(announced.size() == 3);
  CHECK(announced[2] == std::vector<std::string>{rotation->key_sha256});
  auto key_after = common::ReadSmallFile(HubKeyPath(cluster.dir));
  REQUIRE(key_after.ok());
  CHECK(*key_after == rotation->key_pem);
  CHECK(cluster.HubCert() == rotation->cert_pem);
  auto none = ReadRotation(cluster.dir);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  // Nothing more to announce.
  auto after = renewer.CheckOnce();
  REQUIRE(after.ok());
  CHECK_FALSE(*after);
  CHECK(announced.size() == 3);
  CHECK(Inspect(cluster.HubCert()).public_key_sha256 == rotation->key_sha256);
}

TEST_CASE("a rotation's overlap must be 1s..23h and a broken rotation is reported",
          "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-rotate-bad");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  const absl::Time now = absl::FromChrono(clock.Now());
  CHECK(StartRotation(cluster.dir, cluster.pki.ca, absl::ZeroDuration(), now, absl::Hours(24))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(StartRotation(cluster.dir, cluster.pki.ca, absl::Hours(24), now, absl::Hours(24))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(StartRotation(cluster.dir, cluster.pki.ca, absl::Seconds(1), now, absl::Hours(24)).ok());
  std::filesystem::remove(cluster.dir + "/hub.next.key");
  HubCertificateRenewer renewer(cluster.dir, cluster.pki.ca, clock, {}, nullptr);
  CHECK(renewer.CheckOnce().status().code() == absl::StatusCode::kDataLoss);
  CHECK(cluster.HubCert() == cluster.first_cert);
}

TEST_CASE("a hub certificate that lives longer than the hub now issues is replaced at once",
          "[hub_cert_renewer]") {
  ScratchDir scratch("hubid-hub-cert-long");
  FakeClock clock;
  Cluster cluster(scratch, clock);
  auto year = IssueHubCertificate(cluster.pki.ca, cluster.pki.hub.key_pem, absl::Hours(24 * 365),
                                  absl::FromChrono(clock.Now()));
  REQUIRE(year.ok());
  REQUIRE(common::WriteFileAtomic(HubCertPath(cluster.dir), *year, 0644).ok());
  HubCertificateRenewer renewer(cluster.dir, cluster.pki.ca, clock, {.validity = 24h}, nullptr);
  auto renewed = renewer.CheckOnce();
  REQUIRE(renewed.ok());
  CHECK(*renewed);
  const common::CertInfo after = Inspect(cluster.HubCert());
  CHECK(after.not_after - after.not_before == absl::Hours(24) + absl::Minutes(1));
  CHECK(after.public_key_sha256 == Inspect(*year).public_key_sha256);
}

}  // namespace
}  // namespace llmbox::hub::cluster
