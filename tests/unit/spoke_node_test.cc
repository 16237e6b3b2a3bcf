// The spoke's assembly without Docker: a SpokeNode on the fake engine serves its box service
// over mutual TLS (to the hub's identity only) or on an in-process channel (the hub's local
// spoke), and one that cannot start says why and leaves no thread behind. The wiring against
// a real engine is covered by tests/e2e/spoke_process_test.cc.

#include "spoke/node/spoke_node.h"

#include <chrono>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "common/grpc_tls.h"
#include "common/pki.h"
#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/box/manager.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/oauth_http.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::node {
namespace {

using namespace std::chrono_literals;
using testing::FakeClock;
using testing::FakeDockerEngine;
using testing::HttpResult;
using testing::PlainHttp;
using testing::ScratchDir;

// Threads of this process, from /proc (gRPC's own pollers included).
int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  FAIL("no Threads: line in /proc/self/status");
  return 0;
}

config::SpokeConfig InProcessConfig(const ScratchDir& dir) {
  config::SpokeConfig config;
  config.name = "ignored-in-process";
  config.state_dir = (dir.path() / "state").string();
  config.docker.unix_socket = (dir.path() / "docker.sock").string();
  return config;
}

// A spoke's config with its TLS files (for "spoke-1", from `ca`) written into `dir`.
config::SpokeConfig MutualTlsConfig(const ScratchDir& dir, const common::CertifiedKey& ca) {
  const common::TlsPems pems =
      testing::IssueForTest(ca, common::SpokeIdentity("spoke-1"), "spoke-1");
  config::SpokeConfig config;
  config.name = "spoke-1";
  config.listen = "127.0.0.1:0";
  config.state_dir = (dir.path() / "state").string();
  config.docker.unix_socket = (dir.path() / "docker.sock").string();
  config.tls = {.cert_file = dir.Write("spoke.crt", pems.cert_pem),
                .key_file = dir.Write("spoke.key", pems.key_pem),
                .ca_file = dir.Write("ca.crt", ca.cert_pem)};
  return config;
}

grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel, v1::HealthResponse* response) {
  auto stub = v1::BoxService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 10s);
  return stub->Health(&context, v1::HealthRequest(), response);
}

TEST_CASE("a spoke node whose engine does not answer fails with Unavailable naming the socket",
          "[spoke_node]") {
  ScratchDir dir("spoke-node-no-engine");
  FakeClock clock;
  const config::SpokeConfig config = InProcessConfig(dir);
  const int threads_before = ThreadCount();
  auto node = SpokeNode::Start(config, {.transport = SpokeTransport::kInProcess}, clock);
  REQUIRE_FALSE(node.ok());
  INFO(node.status().ToString());
  CHECK(absl::IsUnavailable(node.status()));
  CHECK(node.status().message().find(config.docker.unix_socket) != std::string::npos);
  // Nothing was started that could outlive the failure.
  CHECK(ThreadCount() <= threads_before);
}

TEST_CASE("a spoke node whose TLS files are missing fails naming the file before the engine",
          "[spoke_node]") {
  ScratchDir dir("spoke-node-no-tls");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  config::SpokeConfig config = InProcessConfig(dir);
  config.tls = {.cert_file = (dir.path() / "spoke.crt").string(),
                .key_file = (dir.path() / "spoke.key").string(),
                .ca_file = (dir.path() / "ca.crt").string()};
  const int threads_before = ThreadCount();
  auto node = SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, clock);
  REQUIRE_FALSE(node.ok());
  INFO(node.status().ToString());
  CHECK(node.status().message().find(config.tls.cert_file) != std::string::npos);
  CHECK(ThreadCount() <= threads_before);
}

TEST_CASE("an in-process spoke node serves its box service on the in-process channel only",
          "[spoke_node]") {
  ScratchDir dir("spoke-node-in-process");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  const config::SpokeConfig config = InProcessConfig(dir);
  auto node = SpokeNode::Start(
      config, {.transport = SpokeTransport::kInProcess, .engine = &engine, .egress = &egress},
      clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  CHECK((*node)->port() == 0);

  // Its state directory is made, for the owner alone.
  struct stat st {};
  REQUIRE(::stat(config.state_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  // No TLS and no peer check on a channel that never leaves the process; the spoke is "local"
  // whatever its config calls it.
  const std::shared_ptr<grpc::Channel> channel = (*node)->InProcessChannel();
  REQUIRE(channel != nullptr);
  v1::HealthResponse health;
  grpc::Status status = Health(channel, &health);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(health.spoke_name() == "local");
  CHECK(health.engine().reachable());
  CHECK(health.capacity().max_boxes() == static_cast<uint32_t>(config.boxes.max_boxes));

  // A second Stop does nothing. (The channel is not called after Stop: see the header.)
  (*node)->Stop();
  (*node)->Stop();
}

TEST_CASE("a spoke node serves over mutual TLS on the port it bound, to the hub identity only",
          "[spoke_node]") {
  ScratchDir dir("spoke-node-mtls");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto ca = common::MakeCa("spoke node test", absl::Hours(1));
  REQUIRE(ca.ok());
  const config::SpokeConfig config = MutualTlsConfig(dir, *ca);
  auto node = SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  REQUIRE((*node)->port() > 0);
  CHECK((*node)->InProcessChannel() == nullptr);

  const std::string address = "127.0.0.1:" + std::to_string((*node)->port());
  auto dial_as = [&](const std::string& identity) {
    return grpc::CreateChannel(
        address, common::MutualTlsChannelCredentials(testing::IssueForTest(*ca, identity, "x")));
  };
  v1::HealthResponse health;
  grpc::Status as_hub = Health(dial_as(std::string(common::kHubIdentity)), &health);
  INFO(as_hub.error_message());
  REQUIRE(as_hub.ok());
  CHECK(health.spoke_name() == "spoke-1");
  CHECK(Health(dial_as(common::SpokeIdentity("spoke-2")), &health).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);

  (*node)->Stop();
  CHECK_FALSE(Health(dial_as(std::string(common::kHubIdentity)), &health).ok());
}

TEST_CASE("a spoke node counts its engine calls in its metrics", "[spoke_node][metrics]") {
  ScratchDir dir("spoke-node-metrics");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto node = SpokeNode::Start(
      InProcessConfig(dir),
      {.transport = SpokeTransport::kInProcess, .engine = &engine, .egress = &egress}, clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  CHECK((*node)->metrics_port() == 0);  // in process: the hub serves them
  const std::string text = (*node)->MetricsText();
  // Start pinged the engine once.
  CHECK(text.find("llmbox_spoke_engine_calls_total{operation=\"ping\",outcome=\"ok\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("llmbox_spoke_boxes{phase=\"ready\"} 0\n") != std::string::npos);
  (*node)->Stop();
}

TEST_CASE("a scrape of a spoke node's box gauge makes no engine call", "[spoke_node][metrics]") {
  ScratchDir dir("spoke-node-box-gauge");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  // A ready box from before the start: the start's listing finds it.
  engine.AddContainer({.id = "c1",
                       .name = "llmbox-b1",
                       .state = "running",
                       .running = true,
                       .labels = {{box::BoxManager::kManagedLabel, "true"},
                                  {box::BoxManager::kBoxIdLabel, "b1"},
                                  {box::BoxManager::kSpokeLabel, "local"}}});
  auto node = SpokeNode::Start(
      InProcessConfig(dir),
      {.transport = SpokeTransport::kInProcess, .engine = &engine, .egress = &egress}, clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  const size_t calls = engine.Calls().size();
  for (int scrape = 0; scrape < 3; ++scrape) {
    const std::string text = (*node)->MetricsText();
    CHECK(text.find("llmbox_spoke_boxes{phase=\"ready\"} 1\n") != std::string::npos);
    CHECK(text.find("llmbox_spoke_boxes{phase=\"pending\"} 0\n") != std::string::npos);
  }
  CHECK(engine.Calls().size() == calls);
  (*node)->Stop();
}

TEST_CASE("a serving spoke node answers GET /metrics on metrics.listen", "[spoke_node][metrics]") {
  ScratchDir dir("spoke-node-metrics-listen");
  FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  auto ca = common::MakeCa("spoke node test", absl::Hours(1));
  REQUIRE(ca.ok());
  config::SpokeConfig config = MutualTlsConfig(dir, *ca);
  config.metrics_listen = "127.0.0.1:0";
  auto node = SpokeNode::Start(config, {.engine = &engine, .egress = &egress}, clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  REQUIRE((*node)->metrics_port() > 0);
  const std::string url =
      "http://127.0.0.1:" + std::to_string((*node)->metrics_port()) + "/metrics";
  const HttpResult reply = PlainHttp().Get(url);
  CHECK(reply.status == 200);
  CHECK(reply.body.find("# TYPE llmbox_spoke_engine_calls_total counter\n") != std::string::npos);
  (*node)->Stop();
}

}  // namespace
}  // namespace llmbox::spoke::node
