// The hub's enrollment service and `llmbox-spoke join` against each other over real gRPC on
// loopback, with real certificates from the cluster CA: tokens work once and expire (fake
// clock), the CA pin is checked before anything is sent, the CSR must be for the token's
// name, Renew needs the spoke's current certificate, and the hub dials a joined spoke with
// the identity it enrolled.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "common/files.h"
#include "common/grpc_tls.h"
#include "common/join_token.h"
#include "common/pki.h"
#include "common/secrets.h"
#include "hub/audit/audit_log.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/cluster_pki.h"
#include "hub/cluster/enrollment_service.h"
#include "hub/cluster/join_tokens.h"
#include "hub/cluster/remote_spokes.h"
#include "hub/config/hub_config.h"
#include "hub/store/sqlite_store.h"
#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/enroll/hub_pins.h"
#include "spoke/enroll/join.h"
#include "spoke/node/spoke_node.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/json_lines.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::hub::cluster {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScratchDir;

std::int64_t Ms(common::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.Now().time_since_epoch())
      .count();
}

// A hub's cluster side: store, CA, and the enrollment service on 127.0.0.1:<port>.
struct TestHub {
  explicit TestHub(const ScratchDir& dir, audit::AuditLog* audit = nullptr) {
    auto opened = store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    store = *std::move(opened);
    auto loaded = LoadOrCreateClusterPki((dir.path() / "cluster").string(), {});
    INFO(loaded.status().ToString());
    REQUIRE(loaded.ok());
    pki = *std::move(loaded);
    service = std::make_unique<EnrollmentServiceImpl>(
        *store, pki, clock,
        EnrollmentOptions{.cert_validity = std::chrono::hours(24), .audit = audit},
        [this](const store::SpokeRecord&) { ++joined; });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", common::OptionalClientTlsServerCredentials(pki.hub),
                             &port);
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    REQUIRE(server != nullptr);
    address = "127.0.0.1:" + std::to_string(port);
  }
  ~TestHub() { server->Shutdown(); }

  std::string Token(const std::string& name, std::chrono::milliseconds ttl = 1h) {
    auto token = IssueJoinToken(*store, pki.ca_sha256, name, ttl, Ms(clock));
    INFO(token.status().ToString());
    REQUIRE(token.ok());
    return *token;
  }

  FakeClock clock;
  std::unique_ptr<store::SqliteStore> store;
  ClusterPki pki;
  std::unique_ptr<EnrollmentServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
  int joined = 0;
};

// A spoke config whose tls files live in `dir`/tls (not there yet).
spoke::config::SpokeConfig SpokeConfig(const ScratchDir& dir, const std::string& name) {
  spoke::config::SpokeConfig config;
  config.name = name;
  config.state_dir = (dir.path() / "state").string();
  config.tls = {.cert_file = (dir.path() / "tls/spoke.crt").string(),
                .key_file = (dir.path() / "tls/spoke.key").string(),
                .ca_file = (dir.path() / "tls/ca.crt").string()};
  return config;
}

[[nodiscard]] absl::StatusOr<spoke::enroll::JoinResult> Join(
    const TestHub& hub, const std::string& token, const spoke::config::SpokeConfig& config) {
  return spoke::enroll::JoinCluster({.hub_address = hub.address,
                                     .token = token,
                                     .advertise_address = "127.0.0.1:7443",
                                     .labels = {{"zone", "test-1"}},
                                     .timeout = 10s},
                                    config);
}

TEST_CASE("a join token is kept by hash, enrolls its spoke once, and writes the spoke's files",
          "[enroll]") {
  ScratchDir dir("enroll");
  TestHub hub(dir);
  const std::string token = hub.Token("worker-1");
  auto parsed = common::ParseJoinToken(token);
  REQUIRE(parsed.ok());
  CHECK(parsed->ca_sha256 == hub.pki.ca_sha256);
  auto tokens = hub.store->ListJoinTokens();
  REQUIRE(tokens.ok());
  REQUIRE(tokens->size() == 1);
  CHECK((*tokens)[0].hash == common::Sha256Hex(parsed->secret));
  CHECK((*tokens)[0].hash.find(parsed->secret) == std::string::npos);

  const auto config = SpokeConfig(dir, "worker-1");
  auto joined = Join(hub, token, config);
  INFO(joined.status().ToString());
  REQUIRE(joined.ok());
  CHECK(joined->spoke_name == "worker-1");
  CHECK(hub.joined == 1);

  // The files serve reads: a key only the owner reads, a certificate for the spoke's
  // identity signed by the cluster CA, and that CA.
  struct stat st {};
  REQUIRE(::stat(config.tls.key_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto pems = common::ReadTlsFiles(config.tls);
  REQUIRE(pems.ok());
  CHECK(pems->ca_pem == hub.pki.ca.cert_pem);
  auto cert = common::InspectCert(pems->cert_pem);
  REQUIRE(cert.ok());
  CHECK(cert->uris == std::vector<std::string>{"spiffe://llmbox/spoke/worker-1"});
  auto spoke = hub.store->GetSpoke("worker-1");
  REQUIRE(spoke.ok());
  CHECK(spoke->advertise_address == "127.0.0.1:7443");
  CHECK(spoke->cert_sha256 == cert->sha256_fingerprint);
  CHECK(spoke->labels == std::map<std::string, std::string>{{"zone", "test-1"}});

  SECTION("the same token a second time is refused, with the hub's reason") {
    ScratchDir other("enroll-again");
    auto again = Join(hub, token, SpokeConfig(other, "worker-1"));
    CHECK(again.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(again.status().message().find("already used") != std::string::npos);
    CHECK(hub.joined == 1);
  }
  SECTION("a spoke that joined cannot get a second token under its name") {
    auto second = IssueJoinToken(*hub.store, hub.pki.ca_sha256, "worker-1", 1h, Ms(hub.clock));
    CHECK(second.status().code() == absl::StatusCode::kAlreadyExists);
    CHECK(second.status().message().find("spoke remove --name worker-1") != std::string::npos);
  }
}

TEST_CASE("an expired or unknown join token is refused and names the fix", "[enroll]") {
  ScratchDir dir("enroll-expiry");
  TestHub hub(dir);
  const std::string token = hub.Token("worker-2", 10min);
  hub.clock.Advance(10min);
  auto expired = Join(hub, token, SpokeConfig(dir, "worker-2"));
  CHECK(expired.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(expired.status().message().find("expired") != std::string::npos);
  CHECK(expired.status().message().find("spoke token create --name worker-2") != std::string::npos);

  auto secret = common::RandomToken(32);
  REQUIRE(secret.ok());
  const std::string unknown =
      common::FormatJoinToken({.secret = *secret, .ca_sha256 = hub.pki.ca_sha256});
  auto refused = Join(hub, unknown, SpokeConfig(dir, "worker-2"));
  CHECK(refused.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(refused.status().message().find("unknown") != std::string::npos);

  auto malformed = Join(hub, "not-a-token", SpokeConfig(dir, "worker-2"));
  CHECK(malformed.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(hub.joined == 0);
}

TEST_CASE("a join token made with a ttl outside 1s..168h or for the local spoke is refused",
          "[enroll]") {
  ScratchDir dir("enroll-ttl");
  TestHub hub(dir);
  CHECK(IssueJoinToken(*hub.store, hub.pki.ca_sha256, "w", 169h, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(IssueJoinToken(*hub.store, hub.pki.ca_sha256, "local", 1h, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(IssueJoinToken(*hub.store, hub.pki.ca_sha256, "Bad Name", 1h, 0).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a spoke refuses a hub whose CA does not match the token's pin and sends nothing",
          "[enroll]") {
  ScratchDir dir("enroll-pin");
  TestHub hub(dir);
  const std::string token = hub.Token("worker-3");
  auto parsed = common::ParseJoinToken(token);
  REQUIRE(parsed.ok());
  auto other_ca = common::MakeCa("someone else", absl::Hours(1));
  REQUIRE(other_ca.ok());
  auto other_info = common::InspectCert(other_ca->cert_pem);
  REQUIRE(other_info.ok());
  // The same secret, pinned to another CA: the hub that answers is not the one pinned.
  const std::string pinned_elsewhere = common::FormatJoinToken(
      {.secret = parsed->secret, .ca_sha256 = other_info->sha256_fingerprint});
  const auto config = SpokeConfig(dir, "worker-3");
  auto refused = Join(hub, pinned_elsewhere, config);
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(refused.status().message().find("pins sha256:" + other_info->sha256_fingerprint) !=
        std::string::npos);
  CHECK(hub.joined == 0);
  CHECK_FALSE(std::filesystem::exists(config.tls.key_file));
  // The real token was never sent, so it still works.
  CHECK(Join(hub, token, config).ok());
}

TEST_CASE("the hub refuses a CSR for another identity and the token stays usable", "[enroll]") {
  ScratchDir dir("enroll-csr");
  TestHub hub(dir);
  const std::string token = hub.Token("worker-4");
  auto refused = Join(hub, token, SpokeConfig(dir, "worker-5"));
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(refused.status().message().find("set spoke.name: worker-4") != std::string::npos);

  // A CSR asking for another spoke's URI identity, straight to the service.
  auto key = common::MakePrivateKey();
  REQUIRE(key.ok());
  auto ca = common::MakeCa("csr", absl::Hours(1));
  REQUIRE(ca.ok());
  auto stub = v1::Enrollment::NewStub(grpc::CreateChannel(
      hub.address, common::PinnedTlsChannelCredentials(hub.pki.ca.cert_pem, common::kHubIdentity)));
  v1::JoinRequest request;
  request.set_token(token);
  auto csr = common::MakeCsr(*key, "worker-4");
  REQUIRE(csr.ok());
  request.set_csr_pem(*csr);
  request.set_advertise_address("0.0.0.0:7443");
  v1::JoinResponse response;
  grpc::ClientContext context;
  grpc::Status status = stub->Join(&context, request, &response);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("wildcard") != std::string::npos);

  CHECK(hub.joined == 0);
  CHECK(Join(hub, token, SpokeConfig(dir, "worker-4")).ok());
}

// Calls Renew presenting `pems` (or no certificate), asking for a certificate for its key.
grpc::Status Renew(const TestHub& hub, const common::TlsPems* pems, const std::string& name,
                   v1::RenewResponse* response) {
  auto credentials =
      pems ? common::PinnedMutualTlsChannelCredentials(*pems, common::kHubIdentity)
           : common::PinnedTlsChannelCredentials(hub.pki.ca.cert_pem, common::kHubIdentity);
  auto stub = v1::Enrollment::NewStub(grpc::CreateChannel(hub.address, credentials));
  // A CSR for the same key (the proto allows it), so the renewed pair can be used next.
  auto key = pems ? absl::StatusOr<std::string>(pems->key_pem) : common::MakePrivateKey();
  auto csr = common::MakeCsr(*key, name);
  v1::RenewRequest request;
  request.set_csr_pem(*csr);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub->Renew(&context, request, response);
}

TEST_CASE("Renew needs the spoke's current certificate and keeps its identity", "[enroll]") {
  ScratchDir dir("enroll-renew");
  TestHub hub(dir);
  const auto config = SpokeConfig(dir, "worker-6");
  REQUIRE(Join(hub, hub.Token("worker-6"), config).ok());
  auto current = common::ReadTlsFiles(config.tls);
  REQUIRE(current.ok());
  v1::RenewResponse response;

  CHECK(Renew(hub, nullptr, "worker-6", &response).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(Renew(hub, &hub.pki.hub, "worker-6", &response).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
  // A certificate from the cluster CA for the same name, but not the one the hub issued.
  const common::TlsPems forged =
      testing::IssueForTest(hub.pki.ca, common::SpokeIdentity("worker-6"), "worker-6");
  CHECK(Renew(hub, &forged, "worker-6", &response).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);

  grpc::Status renewed = Renew(hub, &*current, "worker-6", &response);
  INFO(renewed.error_message());
  REQUIRE(renewed.ok());
  auto info = common::InspectCert(response.certificate_pem());
  REQUIRE(info.ok());
  CHECK(info->uris == std::vector<std::string>{"spiffe://llmbox/spoke/worker-6"});
  auto stored = hub.store->GetSpoke("worker-6");
  REQUIRE(stored.ok());
  CHECK(stored->cert_sha256 == info->sha256_fingerprint);

  // The certificate it replaced no longer renews.
  grpc::Status old = Renew(hub, &*current, "worker-6", &response);
  CHECK(old.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(old.error_message().find("not its current certificate") != std::string::npos);

  // A removed spoke cannot renew at all.
  common::TlsPems next = *current;
  next.cert_pem = response.certificate_pem();
  REQUIRE(hub.store->DeleteSpoke("worker-6").ok());
  grpc::Status removed = Renew(hub, &next, "worker-6", &response);
  CHECK(removed.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(removed.error_message().find("join again") != std::string::npos);
}

TEST_CASE("a spoke renews its certificate with a fresh key and keeps its name", "[enroll]") {
  ScratchDir dir("enroll-spoke-renew");
  TestHub hub(dir);
  const auto config = SpokeConfig(dir, "worker-8");
  REQUIRE(Join(hub, hub.Token("worker-8"), config).ok());
  auto before = common::ReadTlsFiles(config.tls);
  REQUIRE(before.ok());

  auto renewed = spoke::enroll::RenewCertificate(hub.address, config, 10s);
  INFO(renewed.status().ToString());
  REQUIRE(renewed.ok());
  CHECK(renewed->spoke_name == "worker-8");
  auto after = common::ReadTlsFiles(config.tls);
  REQUIRE(after.ok());
  CHECK(after->key_pem != before->key_pem);
  CHECK(after->cert_pem != before->cert_pem);
  auto cert = common::InspectCert(after->cert_pem);
  REQUIRE(cert.ok());
  CHECK(cert->uris == std::vector<std::string>{"spiffe://llmbox/spoke/worker-8"});
  struct stat st {};
  REQUIRE(::stat(config.tls.key_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // Renewing again works from the new files; a hub that forgot the spoke refuses.
  CHECK(spoke::enroll::RenewCertificate(hub.address, config, 10s).ok());
  REQUIRE(hub.store->DeleteSpoke("worker-8").ok());
  auto refused = spoke::enroll::RenewCertificate(hub.address, config, 10s);
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(refused.status().message().find("join again") != std::string::npos);
}

// Answers Health only, to whoever the server's credentials let in and the hub identity.
class HealthOnly final : public v1::BoxService::Service {
 public:
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest*,
                      v1::HealthResponse* response) override {
    auto st = common::AuthorizePeer(*context->auth_context(), common::kHubIdentity);
    if (!st.ok()) return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not the hub");
    response->mutable_capacity()->set_max_boxes(7);
    if (auto peer = common::VerifiedPeer(*context->auth_context()); peer.ok()) {
      std::lock_guard lock(mu_);
      last_peer_cert_ = peer->cert_pem;
    }
    return grpc::Status::OK;
  }
  // The certificate the last caller presented.
  std::string LastPeerCert() {
    std::lock_guard lock(mu_);
    return last_peer_cert_;
  }

 private:
  std::mutex mu_;
  std::string last_peer_cert_;
};

// A server on a free loopback port presenting `pems` (mutual TLS) with `service`.
std::unique_ptr<grpc::Server> ServeHealth(const common::TlsPems& pems, HealthOnly* service,
                                          int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", common::MutualTlsServerCredentials(pems), port);
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

TEST_CASE("the hub dials a joined spoke pinned to the identity it enrolled", "[enroll]") {
  ScratchDir dir("enroll-dial");
  TestHub hub(dir);
  const auto config = SpokeConfig(dir, "worker-7");
  REQUIRE(Join(hub, hub.Token("worker-7"), config).ok());
  auto spoke_pems = common::ReadTlsFiles(config.tls);
  REQUIRE(spoke_pems.ok());

  // The spoke serves with its certificate; a second server holds another spoke's identity.
  HealthOnly real, impostor;
  int real_port = 0, impostor_port = 0;
  auto real_server = ServeHealth(*spoke_pems, &real, &real_port);
  const common::TlsPems other =
      testing::IssueForTest(hub.pki.ca, common::SpokeIdentity("someone-else"), "x");
  auto impostor_server = ServeHealth(other, &impostor, &impostor_port);

  // Point the record at the real port, then at the impostor's.
  auto record = hub.store->GetSpoke("worker-7");
  REQUIRE(record.ok());
  boxes::SpokeDirectory directory;
  RemoteSpokes remote(*hub.store, directory, hub.pki.hub);
  auto health = [&](int port) {
    REQUIRE(hub.store->DeleteSpoke("worker-7").ok());
    const std::string token = hub.Token("worker-7");
    auto parsed = common::ParseJoinToken(token);
    store::SpokeRecord moved = *record;
    moved.advertise_address = "127.0.0.1:" + std::to_string(port);  // dialed again
    REQUIRE(
        hub.store->ConsumeJoinToken(common::Sha256Hex(parsed->secret), Ms(hub.clock), moved).ok());
    REQUIRE(remote.Sync().ok());
    auto spoke = directory.Find("worker-7");
    REQUIRE(spoke != nullptr);
    return spoke->Health(10s).status();
  };
  absl::Status ok = health(real_port);
  INFO(ok.message());
  CHECK(ok.ok());
  CHECK_FALSE(health(impostor_port).ok());

  REQUIRE(hub.store->DeleteSpoke("worker-7").ok());
  REQUIRE(remote.Sync().ok());
  CHECK(directory.Find("worker-7") == nullptr);
  real_server->Shutdown();
  impostor_server->Shutdown();
}

TEST_CASE("the hub accepts only the certificates it issued for a spoke's current enrollment",
          "[enroll]") {
  ScratchDir dir("enroll-revoke");
  TestHub hub(dir);
  boxes::SpokeDirectory directory;
  RemoteSpokes remote(*hub.store, directory, hub.pki.hub);
  // Points worker-9's record at `port`, as a join with that advertise address would.
  auto repoint = [&](int port) {
    auto record = hub.store->GetSpoke("worker-9");
    REQUIRE(record.ok());
    REQUIRE(hub.store->DeleteSpoke("worker-9").ok());
    auto parsed = common::ParseJoinToken(hub.Token("worker-9"));
    store::SpokeRecord moved = *record;
    moved.advertise_address = "127.0.0.1:" + std::to_string(port);
    REQUIRE(
        hub.store->ConsumeJoinToken(common::Sha256Hex(parsed->secret), Ms(hub.clock), moved).ok());
  };
  auto health = [&] {
    REQUIRE(remote.Sync().ok());
    auto spoke = directory.Find("worker-9");
    REQUIRE(spoke != nullptr);
    return spoke->Health(10s).status();
  };

  // The first enrollment of worker-9, serving its certificate.
  ScratchDir first_dir("enroll-revoke-first");
  const auto first = SpokeConfig(first_dir, "worker-9");
  REQUIRE(Join(hub, hub.Token("worker-9"), first).ok());
  auto first_pems = common::ReadTlsFiles(first.tls);
  REQUIRE(first_pems.ok());
  HealthOnly old_machine;
  int old_port = 0;
  auto old_server = ServeHealth(*first_pems, &old_machine, &old_port);
  repoint(old_port);
  CHECK(health().ok());

  // A certificate of the right identity from the cluster CA that enrollment never issued.
  const common::TlsPems forged =
      testing::IssueForTest(hub.pki.ca, common::SpokeIdentity("worker-9"), "worker-9");
  HealthOnly impostor;
  int impostor_port = 0;
  auto impostor_server = ServeHealth(forged, &impostor, &impostor_port);
  repoint(impostor_port);
  CHECK_FALSE(health().ok());

  // Removed, and the name joins again from another machine: the old machine's certificate,
  // still valid by its dates, is refused at its old address.
  REQUIRE(hub.store->DeleteSpoke("worker-9").ok());
  REQUIRE(remote.Sync().ok());
  CHECK(directory.Find("worker-9") == nullptr);
  ScratchDir second_dir("enroll-revoke-second");
  const auto second = SpokeConfig(second_dir, "worker-9");
  REQUIRE(Join(hub, hub.Token("worker-9"), second).ok());
  repoint(old_port);
  CHECK_FALSE(health().ok());
  auto second_pems = common::ReadTlsFiles(second.tls);
  REQUIRE(second_pems.ok());
  HealthOnly new_machine;
  int new_port = 0;
  auto new_server = ServeHealth(*second_pems, &new_machine, &new_port);
  repoint(new_port);
  absl::Status reached = health();
  INFO(reached.message());
  CHECK(reached.ok());

  // Renewed: until it rereads its files the spoke still serves the certificate it replaced,
  // which this hub goes on accepting.
  REQUIRE(spoke::enroll::RenewCertificate(hub.address, second, 10s).ok());
  absl::Status during_renewal = health();
  INFO(during_renewal.message());
  CHECK(during_renewal.ok());

  old_server->Shutdown();
  impostor_server->Shutdown();
  new_server->Shutdown();
}

TEST_CASE("the hub's cluster section is off by default and checked when given", "[enroll]") {
  auto parse = [](const std::string& yaml) {
    return config::ParseHubConfig(yaml, "hub.yaml", "/etc/llmbox");
  };
  auto defaults = parse("hub:\n  listen: 127.0.0.1:8080\n");
  REQUIRE(defaults.ok());
  CHECK(defaults->cluster_listen.empty());
  auto on = parse("cluster:\n  listen: 0.0.0.0:7444\n  cert_validity: 48h\n  renew_before: 12h\n");
  REQUIRE(on.ok());
  CHECK(on->cluster_listen == "0.0.0.0:7444");
  CHECK(on->cert_validity == std::chrono::hours(48));
  CHECK(on->renew_before == std::chrono::hours(12));
  CHECK(parse("cluster:\n  listen: 7444\n").status().message() ==
        "config: cluster.listen (line 2): must be host:port (0.0.0.0:7444, 127.0.0.1:0), or "
        "empty for off");
  CHECK(
      parse("cluster:\n  cert_validity: 2h\n  renew_before: 2h\n")
          .status()
          .message()
          .find("cluster.renew_before (line 3): must be more than 0 and less than cert_validity") !=
      std::string::npos);
  CHECK_FALSE(parse("cluster:\n  lsiten: 0.0.0.0:7444\n").ok());
}

// A spoke's box service (SpokeNode on a fake engine) answering Health to `hub`.
grpc::Status SpokeHealth(int port, const common::TlsPems& hub) {
  auto stub = v1::BoxService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), common::MutualTlsChannelCredentials(hub)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::HealthResponse response;
  return stub->Health(&context, v1::HealthRequest(), &response);
}

TEST_CASE(
    "a joined spoke pins the hub's key and refuses a hub certificate from the cluster CA it "
    "was not told about, also after a restart",
    "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-pin");
  TestHub hub(dir);
  auto config = SpokeConfig(dir, "hubid-pin-1");
  config.listen = "127.0.0.1:0";
  config.docker.unix_socket = (dir.path() / "docker.sock").string();
  REQUIRE(Join(hub, hub.Token("hubid-pin-1"), config).ok());
  auto pinned = spoke::enroll::ReadHubPins(spoke::enroll::HubPinsPath(config));
  INFO(pinned.status().ToString());
  REQUIRE(pinned.ok());
  CHECK(*pinned == hub.pki.hub_key_sha256);

  // The hub's name, from the cluster CA, but a key the hub never told the spoke about.
  const common::TlsPems rogue =
      testing::IssueForTest(hub.pki.ca, std::string(common::kHubIdentity), "llmbox-hub");
  testing::FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  for (int start = 0; start < 2; ++start) {  // the second start reads the pins from disk
    auto node =
        spoke::node::SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, hub.clock);
    INFO(node.status().ToString());
    REQUIRE(node.ok());
    grpc::Status as_hub = SpokeHealth((*node)->port(), hub.pki.hub);
    INFO(as_hub.error_message());
    CHECK(as_hub.ok());
    grpc::Status as_rogue = SpokeHealth((*node)->port(), rogue);
    CHECK(as_rogue.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(as_rogue.error_message().find("not one this spoke was told about") != std::string::npos);
    (*node)->Stop();
  }
}

TEST_CASE(
    "a joined spoke renews only with a hub whose key it pinned, and takes the pins it is "
    "told at renewal",
    "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-renew-pin");
  TestHub hub(dir);
  const auto config = SpokeConfig(dir, "hubid-pin-2");
  REQUIRE(Join(hub, hub.Token("hubid-pin-2"), config).ok());
  auto before = common::ReadTlsFiles(config.tls);
  REQUIRE(before.ok());

  // An enrollment service with the hub's name from the same CA, but another key.
  ClusterPki rogue_pki = hub.pki;
  rogue_pki.hub = testing::IssueForTest(hub.pki.ca, std::string(common::kHubIdentity), "x");
  EnrollmentServiceImpl rogue_service(*hub.store, rogue_pki, hub.clock, {});
  int rogue_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", common::OptionalClientTlsServerCredentials(rogue_pki.hub),
                           &rogue_port);
  builder.RegisterService(&rogue_service);
  auto rogue_server = builder.BuildAndStart();
  REQUIRE(rogue_server != nullptr);
  auto refused =
      spoke::enroll::RenewCertificate("127.0.0.1:" + std::to_string(rogue_port), config, 10s);
  CHECK_FALSE(refused.ok());
  auto unchanged = common::ReadTlsFiles(config.tls);
  REQUIRE(unchanged.ok());
  CHECK(unchanged->cert_pem == before->cert_pem);
  rogue_server->Shutdown();

  // The real hub, now naming a second key (a rotation's overlap): the spoke pins both.
  const common::TlsPems next =
      testing::IssueForTest(hub.pki.ca, std::string(common::kHubIdentity), "x");
  auto next_info = common::InspectCert(next.cert_pem);
  REQUIRE(next_info.ok());
  const std::vector<std::string> both = {hub.pki.hub_key_sha256[0], next_info->public_key_sha256};
  hub.service->SetHubKeys(both);
  auto renewed = spoke::enroll::RenewCertificate(hub.address, config, 10s);
  INFO(renewed.status().ToString());
  REQUIRE(renewed.ok());
  auto pinned = spoke::enroll::ReadHubPins(spoke::enroll::HubPinsPath(config));
  REQUIRE(pinned.ok());
  CHECK(*pinned == both);
  CHECK(pinned->size() == 2);
}

TEST_CASE("a pinned spoke accepts the hub's renewed certificate for the same key",
          "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-renewed-hub");
  TestHub hub(dir);
  auto config = SpokeConfig(dir, "hubid-pin-3");
  config.listen = "127.0.0.1:0";
  REQUIRE(Join(hub, hub.Token("hubid-pin-3"), config).ok());
  testing::FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto node =
      spoke::node::SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, hub.clock);
  REQUIRE(node.ok());

  auto renewed = IssueHubCertificate(hub.pki.ca, hub.pki.hub.key_pem, absl::Hours(1), absl::Now());
  REQUIRE(renewed.ok());
  REQUIRE(*renewed != hub.pki.hub.cert_pem);
  common::TlsPems hub_now = hub.pki.hub;
  hub_now.cert_pem = *renewed;
  grpc::Status status = SpokeHealth((*node)->port(), hub_now);
  INFO(status.error_message());
  CHECK(status.ok());
  (*node)->Stop();
}

TEST_CASE("after the hub renews its certificate it dials its spokes with the new one",
          "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-redial");
  TestHub hub(dir);
  const auto config = SpokeConfig(dir, "hubid-pin-4");
  REQUIRE(Join(hub, hub.Token("hubid-pin-4"), config).ok());
  auto spoke_pems = common::ReadTlsFiles(config.tls);
  REQUIRE(spoke_pems.ok());
  HealthOnly spoke;
  int spoke_port = 0;
  auto server = ServeHealth(*spoke_pems, &spoke, &spoke_port);
  // The record, pointed at the server's port (a join with that advertise address).
  auto record = hub.store->GetSpoke("hubid-pin-4");
  REQUIRE(record.ok());
  REQUIRE(hub.store->DeleteSpoke("hubid-pin-4").ok());
  auto parsed = common::ParseJoinToken(hub.Token("hubid-pin-4"));
  store::SpokeRecord moved = *record;
  moved.advertise_address = "127.0.0.1:" + std::to_string(spoke_port);
  REQUIRE(
      hub.store->ConsumeJoinToken(common::Sha256Hex(parsed->secret), Ms(hub.clock), moved).ok());

  boxes::SpokeDirectory directory;
  RemoteSpokes remote(*hub.store, directory, hub.pki.hub);
  REQUIRE(remote.Sync().ok());
  auto health = [&] {
    auto client = directory.Find("hubid-pin-4");
    REQUIRE(client != nullptr);
    return client->Health(10s).status();
  };
  REQUIRE(health().ok());
  CHECK(spoke.LastPeerCert() == hub.pki.hub.cert_pem);

  auto renewed = IssueHubCertificate(hub.pki.ca, hub.pki.hub.key_pem, absl::Hours(1), absl::Now());
  REQUIRE(renewed.ok());
  common::TlsPems hub_now = hub.pki.hub;
  hub_now.cert_pem = *renewed;
  remote.SetHubCredentials(hub_now);
  REQUIRE(remote.Sync().ok());
  absl::Status after = health();
  INFO(after.message());
  REQUIRE(after.ok());
  CHECK(spoke.LastPeerCert() == *renewed);
  server->Shutdown();
}

// SetHubKeys on the spoke at `port`, as `hub`.
grpc::Status PushKeys(int port, const common::TlsPems& hub, const std::vector<std::string>& keys) {
  auto stub = v1::BoxService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), common::MutualTlsChannelCredentials(hub)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::SetHubKeysRequest request;
  for (const auto& key : keys) request.add_hub_key_sha256(key);
  v1::SetHubKeysResponse response;
  return stub->SetHubKeys(&context, request, &response);
}

TEST_CASE(
    "a rotation of the hub's key keeps a joined spoke working throughout, and afterwards the "
    "spoke refuses the old key, also after a restart",
    "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-rotate");
  TestHub hub(dir);
  auto config = SpokeConfig(dir, "hubid-pin-5");
  config.listen = "127.0.0.1:0";
  REQUIRE(Join(hub, hub.Token("hubid-pin-5"), config).ok());
  testing::FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto node =
      spoke::node::SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, hub.clock);
  REQUIRE(node.ok());
  const int port = (*node)->port();
  // The spoke's record, pointed at the node's port.
  auto record = hub.store->GetSpoke("hubid-pin-5");
  REQUIRE(record.ok());
  REQUIRE(hub.store->DeleteSpoke("hubid-pin-5").ok());
  auto parsed = common::ParseJoinToken(hub.Token("hubid-pin-5"));
  store::SpokeRecord moved = *record;
  moved.advertise_address = "127.0.0.1:" + std::to_string(port);
  REQUIRE(
      hub.store->ConsumeJoinToken(common::Sha256Hex(parsed->secret), Ms(hub.clock), moved).ok());
  boxes::SpokeDirectory directory;
  RemoteSpokes remote(*hub.store, directory, hub.pki.hub);
  REQUIRE(remote.Sync().ok());
  auto hub_health = [&] {
    auto client = directory.Find("hubid-pin-5");
    REQUIRE(client != nullptr);
    return client->Health(10s).status();
  };
  REQUIRE(hub_health().ok());

  const common::TlsPems old_hub = hub.pki.hub;
  const std::string old_key = hub.pki.hub_key_sha256[0];
  auto next_key = common::MakePrivateKey();
  REQUIRE(next_key.ok());
  auto next_cert = IssueHubCertificate(hub.pki.ca, *next_key, absl::Hours(1), absl::Now());
  REQUIRE(next_cert.ok());
  const common::TlsPems new_hub{
      .cert_pem = *next_cert, .key_pem = *next_key, .ca_pem = hub.pki.ca.cert_pem};
  const std::string new_key = common::InspectCert(*next_cert)->public_key_sha256;

  // Before the announcement the new key is refused; a list without the caller's key is too.
  CHECK(SpokeHealth(port, new_hub).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(PushKeys(port, old_hub, {new_key}).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(PushKeys(port, old_hub, {"not hex"}).error_code() == grpc::StatusCode::INVALID_ARGUMENT);

  // The overlap: both keys work.
  CHECK(remote.PushHubKeys({old_key, new_key}, 10s) == 0);
  CHECK(SpokeHealth(port, old_hub).ok());
  CHECK(SpokeHealth(port, new_hub).ok());
  CHECK(hub_health().ok());
  // The switch: the hub dials with the new key and drops the old one.
  remote.SetHubCredentials(new_hub);
  REQUIRE(remote.Sync().ok());
  CHECK(hub_health().ok());
  CHECK(remote.PushHubKeys({new_key}, 10s) == 0);
  CHECK(hub_health().ok());
  auto pinned = spoke::enroll::ReadHubPins(spoke::enroll::HubPinsPath(config));
  REQUIRE(pinned.ok());
  CHECK(*pinned == std::vector<std::string>{new_key});
  grpc::Status as_old = SpokeHealth(port, old_hub);
  CHECK(as_old.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(PushKeys(port, old_hub, {old_key}).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  (*node)->Stop();

  // A restarted spoke keeps refusing the old key.
  auto restarted =
      spoke::node::SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, hub.clock);
  REQUIRE(restarted.ok());
  CHECK(SpokeHealth((*restarted)->port(), old_hub).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(SpokeHealth((*restarted)->port(), new_hub).ok());
  (*restarted)->Stop();
}

TEST_CASE("a hub certificate of a pinned key is refused once it has expired",
          "[enroll][hub_pins]") {
  ScratchDir dir("hubid-enroll-expired-hub");
  TestHub hub(dir);
  auto config = SpokeConfig(dir, "hubid-pin-6");
  config.listen = "127.0.0.1:0";
  REQUIRE(Join(hub, hub.Token("hubid-pin-6"), config).ok());
  testing::FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto node =
      spoke::node::SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, hub.clock);
  REQUIRE(node.ok());
  // The key's last certificate, a day old and valid for an hour: what a leaked key holder keeps
  // after the hub stopped renewing for that key.
  auto expired = IssueHubCertificate(hub.pki.ca, hub.pki.hub.key_pem, absl::Hours(1),
                                     absl::Now() - absl::Hours(24));
  REQUIRE(expired.ok());
  common::TlsPems stale = hub.pki.hub;
  stale.cert_pem = *expired;
  CHECK_FALSE(SpokeHealth((*node)->port(), stale).ok());
  CHECK(SpokeHealth((*node)->port(), hub.pki.hub).ok());
  (*node)->Stop();
}

TEST_CASE(
    "joins and refused joins of a known token are audited with the peer's address and never the "
    "token",
    "[enroll][audit]") {
  ScratchDir dir("enroll-audit");
  const auto path = dir.path() / "audit.log";
  FakeClock audit_clock;
  audit::AuditLog log({.path = path.string()}, audit_clock);
  TestHub hub(dir, &log);
  const std::string token = hub.Token("worker-a");
  REQUIRE(Join(hub, token, SpokeConfig(dir, "worker-a")).ok());
  auto secret = common::RandomToken(32);
  REQUIRE(secret.ok());
  const std::string unknown =
      common::FormatJoinToken({.secret = *secret, .ca_sha256 = hub.pki.ca_sha256});
  // A token that names no spoke is anybody's: logged, never audited (a flood of them must not
  // rotate the real records away).
  CHECK_FALSE(Join(hub, unknown, SpokeConfig(dir, "worker-b")).ok());
  // A used token names its spoke: its refusal is audited.
  CHECK_FALSE(Join(hub, token, SpokeConfig(dir, "worker-c")).ok());

  const auto records = testing::ReadJsonLines(path);
  const std::string text = common::ReadSmallFile(path.string()).value();
  REQUIRE(records.size() == 2);
  CHECK(records[0]["event"] == "spoke.join");
  CHECK(records[0]["principal"] == "spoke:worker-a");
  CHECK(records[0]["spoke"] == "worker-a");
  CHECK(records[0]["client"] == "127.0.0.1");
  CHECK(records[0]["advertise"] == "127.0.0.1:7443");
  CHECK(records[0]["outcome"] == "ok");
  CHECK(records[1]["event"] == "spoke.join");
  CHECK(records[1]["spoke"] == "worker-a");
  CHECK(records[1]["client"] == "127.0.0.1");
  CHECK(records[1]["outcome"] != "ok");
  CHECK(text.find(token) == std::string::npos);
  CHECK(text.find(unknown) == std::string::npos);
  CHECK(text.find(*secret) == std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::cluster
