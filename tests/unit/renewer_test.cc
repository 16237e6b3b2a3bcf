// The spoke's certificate renewer as a periodic task on the clock: a joined spoke checks its
// certificate when it starts and then every renew_check; a spoke that never joined starts no
// check at all. (Renewing against a real hub is in enrollment_test.cc.)

#include "spoke/enroll/renewer.h"

#include <chrono>

#include <catch2/catch.hpp>

#include "common/pki.h"
#include "spoke/enroll/join.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::enroll {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScratchDir;

// A spoke with a fresh certificate (valid for an hour) in `dir`.
config::SpokeConfig SpokeWithCertificate(const ScratchDir& dir) {
  auto ca = common::MakeCa("renewer test", absl::Hours(1));
  REQUIRE(ca.ok());
  const common::TlsPems pems =
      testing::IssueForTest(*ca, common::SpokeIdentity("spoke-1"), "spoke-1");
  config::SpokeConfig config;
  config.name = "spoke-1";
  config.state_dir = (dir.path() / "state").string();
  config.renew_check = 10min;
  config.tls = {.cert_file = dir.Write("spoke.crt", pems.cert_pem),
                .key_file = dir.Write("spoke.key", pems.key_pem),
                .ca_file = dir.Write("ca.crt", ca->cert_pem)};
  return config;
}

TEST_CASE("a joined spoke's renewer checks when it starts and then every renew_check",
          "[renewer]") {
  ScratchDir dir("renewer-periodic");
  FakeClock clock;
  const config::SpokeConfig config = SpokeWithCertificate(dir);
  // Nothing is due within the margin, so no check dials the (absent) hub.
  REQUIRE(WriteEnrollment(config, {.hub_address = "127.0.0.1:1", .renew_before = absl::Minutes(5)})
              .ok());
  CertificateRenewer renewer(config, clock);
  auto due = renewer.CheckOnce();
  INFO(due.status().ToString());
  REQUIRE(due.ok());
  CHECK_FALSE(*due);

  renewer.Start();
  REQUIRE(renewer.WaitForChecks(1, clock.SteadyNow() + 1h));  // at once, without the clock
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(10min - 1s);
  CHECK(renewer.Checks() == 1);
  clock.Advance(1s);
  REQUIRE(renewer.WaitForChecks(2, clock.SteadyNow() + 1h));
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(10min);
  REQUIRE(renewer.WaitForChecks(3, clock.SteadyNow() + 1h));

  renewer.Stop();
  clock.Advance(1h);
  CHECK(renewer.Checks() == 3);
}

TEST_CASE("a spoke that never joined a hub starts no certificate checks", "[renewer]") {
  ScratchDir dir("renewer-not-joined");
  FakeClock clock;
  const config::SpokeConfig config = SpokeWithCertificate(dir);
  CertificateRenewer renewer(config, clock);
  CHECK(absl::IsNotFound(renewer.CheckOnce().status()));
  renewer.Start();
  clock.Advance(1h);
  CHECK(renewer.Checks() == 0);
  renewer.Stop();
}

}  // namespace
}  // namespace llmbox::spoke::enroll
