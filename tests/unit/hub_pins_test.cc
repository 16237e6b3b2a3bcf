// The spoke's pins of the hub's keys without gRPC: a key's hash is the same for every
// certificate of the key, pins are checked against it, written atomically into the state
// directory and read back after a restart, malformed pin files and pin lists are refused, and
// the hub keeps its key when it reissues its own certificate. The pins over real gRPC are in
// enrollment_test.cc.

#include "spoke/enroll/hub_pins.h"

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/files.h"
#include "common/grpc_tls.h"
#include "common/pki.h"
#include "hub/cluster/cluster_pki.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::enroll {
namespace {

using testing::ScratchDir;

std::string KeyHash(const std::string& cert_pem) {
  auto info = common::InspectCert(cert_pem);
  REQUIRE(info.ok());
  return info->public_key_sha256;
}

common::CertifiedKey Ca() {
  auto ca = common::MakeCa("hub pins test", absl::Hours(1));
  REQUIRE(ca.ok());
  return *std::move(ca);
}

// A second certificate for the key of `pems`, from `ca`.
std::string Reissue(const common::CertifiedKey& ca, const common::TlsPems& pems) {
  auto csr = common::MakeCsr(pems.key_pem, "llmbox-hub");
  REQUIRE(csr.ok());
  auto cert =
      common::SignCsr(ca, *csr, {.uri = std::string(common::kHubIdentity)}, absl::Minutes(5));
  REQUIRE(cert.ok());
  return *std::move(cert);
}

TEST_CASE("a key's hash is the same for every certificate of the key and differs across keys",
          "[hub_pins]") {
  const common::CertifiedKey ca = Ca();
  const common::TlsPems hub = testing::IssueForTest(ca, std::string(common::kHubIdentity), "h");
  const std::string again = Reissue(ca, hub);
  REQUIRE(again != hub.cert_pem);
  CHECK(KeyHash(again) == KeyHash(hub.cert_pem));
  CHECK(KeyHash(hub.cert_pem).size() == 64);
  auto first = common::InspectCert(hub.cert_pem);
  REQUIRE(first.ok());
  CHECK(first->public_key_sha256 != first->sha256_fingerprint);
  const common::TlsPems other = testing::IssueForTest(ca, std::string(common::kHubIdentity), "h");
  CHECK(KeyHash(other.cert_pem) != KeyHash(hub.cert_pem));
}

TEST_CASE("a spoke with no pins accepts any hub key, and with pins only a pinned one",
          "[hub_pins]") {
  ScratchDir dir("hub-pins-check");
  const common::CertifiedKey ca = Ca();
  const common::TlsPems current = testing::IssueForTest(ca, std::string(common::kHubIdentity), "h");
  const common::TlsPems next = testing::IssueForTest(ca, std::string(common::kHubIdentity), "h");
  const common::TlsPems rogue = testing::IssueForTest(ca, std::string(common::kHubIdentity), "h");

  HubPins pins((dir.path() / "hub_pins.json").string());
  REQUIRE(pins.Load().ok());  // no file: not joined
  CHECK(pins.Get().empty());
  CHECK(pins.Check(rogue.cert_pem).ok());

  REQUIRE(pins.Replace({KeyHash(current.cert_pem)}).ok());
  CHECK(pins.Check(current.cert_pem).ok());
  CHECK(pins.Check(Reissue(ca, current)).ok());  // a renewed certificate of the pinned key
  const absl::Status refused = pins.Check(rogue.cert_pem);
  CHECK(refused.code() == absl::StatusCode::kUnauthenticated);
  CHECK(refused.message().find(KeyHash(rogue.cert_pem)) != std::string::npos);
  CHECK(pins.Check("not a certificate").code() == absl::StatusCode::kUnauthenticated);

  // Two keys during an overlap, then only the new one: the old key is refused.
  REQUIRE(pins.Replace({KeyHash(current.cert_pem), KeyHash(next.cert_pem)}).ok());
  CHECK(pins.Check(current.cert_pem).ok());
  CHECK(pins.Check(next.cert_pem).ok());
  REQUIRE(pins.Replace({KeyHash(next.cert_pem)}).ok());
  CHECK(pins.Check(next.cert_pem).ok());
  CHECK(pins.Check(current.cert_pem).code() == absl::StatusCode::kUnauthenticated);
}

TEST_CASE("hub key pins are written into the state directory and survive a restart", "[hub_pins]") {
  ScratchDir dir("hub-pins-persist");
  config::SpokeConfig config;
  config.state_dir = dir.path().string();
  const std::string path = HubPinsPath(config);
  CHECK(path == dir.path().string() + "/hub_pins.json");
  const std::vector<std::string> pinned = {std::string(64, 'a'), std::string(64, 'b')};
  {
    HubPins before(path);
    REQUIRE(before.Replace(pinned).ok());
  }
  HubPins after(path);  // a restarted spoke
  REQUIRE(after.Load().ok());
  CHECK(after.Get() == pinned);
  auto read = ReadHubPins(path);
  REQUIRE(read.ok());
  CHECK(*read == pinned);

  SECTION("a malformed file is refused, and what was pinned stays") {
    const std::string bad_json = dir.Write("hub_pins.json", "{\"hub_key_sha256\": [\"zz\"]}");
    CHECK(ReadHubPins(bad_json).status().code() == absl::StatusCode::kDataLoss);
    CHECK(after.Load().code() == absl::StatusCode::kDataLoss);
    CHECK(after.Get() == pinned);
    dir.Write("hub_pins.json", "[not json");
    CHECK(after.Load().code() == absl::StatusCode::kDataLoss);
    std::string many = "{\"hub_key_sha256\": [";
    for (int i = 0; i < 9; ++i)
      many += (i ? ",\"" : "\"") + std::string(63, 'a') + char('0' + i) + "\"";
    dir.Write("hub_pins.json", many + "]}");
    CHECK(after.Load().code() == absl::StatusCode::kDataLoss);
    CHECK(after.Get() == pinned);
  }
  SECTION("a removed file unpins (a spoke that is no longer joined)") {
    std::filesystem::remove(path);
    REQUIRE(after.Load().ok());
    CHECK(after.Get().empty());
  }
}

TEST_CASE("a pin list from the hub must be 1 to 8 distinct lowercase SHA-256 hex strings",
          "[hub_pins]") {
  const std::string a(64, 'a');
  CHECK(ValidateHubPins({a}).ok());
  CHECK(ValidateHubPins({}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateHubPins({a, a}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateHubPins({std::string(64, 'A')}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateHubPins({std::string(63, 'a')}).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ValidateHubPins({std::string(65, 'a')}).code() == absl::StatusCode::kInvalidArgument);
  std::vector<std::string> nine;
  for (char c : std::string("012345678")) nine.push_back(std::string(63, 'a') + c);
  CHECK(ValidateHubPins(nine).code() == absl::StatusCode::kInvalidArgument);
  nine.pop_back();
  CHECK(ValidateHubPins(nine).ok());
  ScratchDir dir("hub-pins-invalid");
  CHECK(WriteHubPins((dir.path() / "p.json").string(), {"x"}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "p.json"));
}

TEST_CASE("the hub reissues its certificate for the same key, so pinned spokes keep accepting it",
          "[hub_pins]") {
  ScratchDir dir("hub-pins-reissue");
  const std::string cluster = (dir.path() / "cluster").string();
  auto first = hub::cluster::LoadOrCreateClusterPki(cluster, {});
  REQUIRE(first.ok());
  REQUIRE(first->hub_key_sha256.size() == 1);
  CHECK(first->hub_key_sha256[0] == KeyHash(first->hub.cert_pem));

  // A margin longer than the certificate's life: it is reissued at once.
  auto reissued = hub::cluster::LoadOrCreateClusterPki(
      cluster, {.hub_cert_renew_before = std::chrono::hours(24 * 400)});
  REQUIRE(reissued.ok());
  CHECK(reissued->hub.cert_pem != first->hub.cert_pem);
  CHECK(reissued->hub.key_pem == first->hub.key_pem);
  CHECK(reissued->hub_key_sha256 == first->hub_key_sha256);
  auto read = hub::cluster::LoadClusterPki(cluster);
  REQUIRE(read.ok());
  CHECK(read->hub_key_sha256 == first->hub_key_sha256);
}

}  // namespace
}  // namespace llmbox::spoke::enroll
