// The spoke's BoxService over real gRPC with real mutual TLS (certificates from common/pki),
// on the rig's engine.

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "common/grpc_tls.h"
#include "common/pki.h"
#include "common/secrets.h"
#include "common/subprocess.h"
#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/config/spoke_config.h"
#include "spoke/hooks/hook_runner.h"
#include "spoke/node/spoke_node.h"
#include "tests/rig/rig_env.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::service {
namespace {

using common::CertifiedKey;
using common::TlsPems;

TlsPems Issue(const CertifiedKey& ca, const std::string& uri) {
  return testing::IssueForTest(ca, uri, "spoke-1");
}

// A running spoke on 127.0.0.1:<free port> over the rig's engine: the spoke's own assembly
// (SpokeNode, as `llmbox-spoke serve` runs it) with certificates from a test cluster CA.
struct Spoke {
  testing::ScratchDir state{"spoke-grpc-state"};
  CertifiedKey ca;
  std::unique_ptr<node::SpokeNode> node;

  // `hooks` run through the node's own hook runner.
  explicit Spoke(std::vector<hooks::HookSpec> hooks = {}) {
    const auto& rig = testing::Rig();
    auto made_ca = common::MakeCa("llmbox test cluster", absl::Hours(1));
    REQUIRE(made_ca.ok());
    ca = *made_ca;
    const TlsPems pems = Issue(ca, common::SpokeIdentity("spoke-1"));
    config::SpokeConfig config;
    config.name = "spoke-1";
    config.listen = "127.0.0.1:0";
    config.state_dir = state.path().string();
    config.tls = {.cert_file = state.Write("spoke.crt", pems.cert_pem),
                  .key_file = state.Write("spoke.key", pems.key_pem),
                  .ca_file = state.Write("ca.crt", pems.ca_pem)};
    config.docker.unix_socket = rig.docker_sock;
    config.boxes.spoke_name = "spoke-1";
    config.boxes.default_image = rig.box_image;
    config.boxes.claude_bin = rig.standin_claude;
    config.boxes.stop_grace = std::chrono::seconds(1);
    if (!hooks.empty()) config.boxes.state_dir = state.path().string();
    config.hooks = std::move(hooks);
    // The reaper stays out of these tests' way (it has its own).
    config.reaper.interval = std::chrono::hours(1);
    config.reaper.auth_ttl = std::chrono::hours(1);
    auto started = node::SpokeNode::Start(config, {}, common::SystemClock::Get());
    INFO((started.ok() ? "" : std::string(started.status().message())));
    REQUIRE(started.ok());
    node = *std::move(started);
  }

  std::unique_ptr<v1::BoxService::Stub> Client(std::shared_ptr<grpc::ChannelCredentials> creds) {
    return v1::BoxService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(node->port()), creds));
  }
  std::unique_ptr<v1::BoxService::Stub> Hub() {
    return Client(
        common::MutualTlsChannelCredentials(Issue(ca, std::string(common::kHubIdentity))));
  }
};

grpc::Status Health(v1::BoxService::Stub& stub, v1::HealthResponse* response = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::HealthResponse ignored;
  return stub.Health(&context, v1::HealthRequest(), response ? response : &ignored);
}

TEST_CASE("only the hub's certificate from the cluster CA may call the spoke", "[grpc]") {
  Spoke spoke;
  v1::HealthResponse health;
  auto hub = spoke.Hub();
  grpc::Status ok = Health(*hub, &health);
  INFO(ok.error_message());
  REQUIRE(ok.ok());
  CHECK(health.spoke_name() == "spoke-1");
  CHECK(health.engine().reachable());
  CHECK(health.engine().api_version() == "1.41");

  // No client certificate: the handshake fails.
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = spoke.ca.cert_pem;
  CHECK(Health(*spoke.Client(grpc::SslCredentials(no_cert))).error_code() ==
        grpc::StatusCode::UNAVAILABLE);

  // A hub certificate from another CA: refused at the handshake.
  auto other_ca = common::MakeCa("someone else", absl::Hours(1));
  REQUIRE(other_ca.ok());
  TlsPems foreign = Issue(*other_ca, std::string(common::kHubIdentity));
  foreign.ca_pem = spoke.ca.cert_pem;  // it trusts the spoke, the spoke does not trust it
  CHECK(Health(*spoke.Client(common::MutualTlsChannelCredentials(foreign))).error_code() ==
        grpc::StatusCode::UNAVAILABLE);

  // A valid cluster certificate that is not the hub's (another spoke): refused by identity.
  auto other_spoke = spoke.Client(
      common::MutualTlsChannelCredentials(Issue(spoke.ca, common::SpokeIdentity("spoke-2"))));
  grpc::Status denied = Health(*other_spoke);
  CHECK(denied.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(denied.error_message().find("spiffe://llmbox/spoke/spoke-2") != std::string::npos);

  // Plain text is not served at all.
  auto insecure = spoke.Client(grpc::InsecureChannelCredentials());
  CHECK(Health(*insecure).error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("a box goes from create to ready to destroyed over the spoke's gRPC service", "[grpc]") {
  Spoke spoke;
  auto hub = spoke.Hub();
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  const std::string id = "grpc-" + common::HexEncode(*token).substr(0, 10);
  auto call = [](auto method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    return method(&context);
  };

  v1::CreateBoxRequest create;
  create.set_box_id(id);
  create.set_description("over grpc");
  v1::CreateBoxResponse created;
  grpc::Status st = call([&](auto* c) { return hub->CreateBox(c, create, &created); });
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(created.box().phase() == v1::BOX_PHASE_PENDING);
  CHECK(created.authorize_url().rfind("https://claude.ai/oauth/authorize?", 0) == 0);

  // Logs reach a chatbot eventually: no authorize URL in them.
  v1::GetLogsRequest logs_request;
  logs_request.set_box_id(id);
  v1::GetLogsResponse logs;
  REQUIRE(call([&](auto* c) { return hub->GetLogs(c, logs_request, &logs); }).ok());
  // (docker logs hold back the prompt line, which has no newline yet)
  CHECK(logs.logs().find("Opening browser to sign in") != std::string::npos);
  CHECK(logs.logs().find("oauth/authorize") == std::string::npos);

  const std::string code = "standin-ok-" + common::HexEncode(*token);
  v1::SubmitCodeRequest submit;
  submit.set_box_id(id);
  submit.set_code(code);
  v1::SubmitCodeResponse outcome;
  REQUIRE(call([&](auto* c) { return hub->SubmitCode(c, submit, &outcome); }).ok());
  CHECK(outcome.activated());
  CHECK(outcome.box().phase() == v1::BOX_PHASE_READY);
  CHECK(outcome.session_url().rfind("https://claude.ai/code/session_", 0) == 0);

  REQUIRE(call([&](auto* c) { return hub->GetLogs(c, logs_request, &logs); }).ok());
  CHECK(logs.logs().find(code) == std::string::npos);

  v1::ExecRequest exec;
  exec.set_box_id(id);
  exec.add_argv("sh");
  exec.add_argv("-c");
  exec.add_argv("echo hello from $(hostname)");
  v1::ExecResponse ran;
  REQUIRE(call([&](auto* c) { return hub->Exec(c, exec, &ran); }).ok());
  CHECK(ran.exit_code() == 0);
  CHECK(ran.stdout() == "hello from " + id + "\n");
  // By default as the unprivileged exec user; the box's own identity only when asked for.
  exec.set_argv(2, "id -u");
  REQUIRE(call([&](auto* c) { return hub->Exec(c, exec, &ran); }).ok());
  CHECK(ran.stdout() == "1000\n");
  exec.set_identity(v1::EXEC_AS_BOX);
  REQUIRE(call([&](auto* c) { return hub->Exec(c, exec, &ran); }).ok());
  CHECK(ran.stdout() == "0\n");

  v1::HealthResponse health;
  REQUIRE(Health(*hub, &health).ok());
  CHECK(health.capacity().ready() >= 1);

  v1::ListBoxesRequest list_request;
  list_request.add_phases(v1::BOX_PHASE_READY);
  v1::ListBoxesResponse listed;
  REQUIRE(call([&](auto* c) { return hub->ListBoxes(c, list_request, &listed); }).ok());
  bool found = false;
  for (const auto& box : listed.boxes()) found = found || box.box_id() == id;
  CHECK(found);

  v1::DestroyBoxRequest destroy;
  destroy.set_box_id(id);
  v1::DestroyBoxResponse destroyed;
  REQUIRE(call([&](auto* c) { return hub->DestroyBox(c, destroy, &destroyed); }).ok());
  CHECK(destroyed.existed());
  REQUIRE(call([&](auto* c) { return hub->DestroyBox(c, destroy, &destroyed); }).ok());
  CHECK_FALSE(destroyed.existed());
  v1::GetBoxRequest get;
  get.set_box_id(id);
  v1::Box gone;
  CHECK(call([&](auto* c) { return hub->GetBox(c, get, &gone); }).error_code() ==
        grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("the spoke validates every request again", "[grpc]") {
  Spoke spoke;
  auto hub = spoke.Hub();
  grpc::ClientContext c1;
  v1::CreateBoxRequest bad_id;
  bad_id.set_box_id("-bad-");
  v1::CreateBoxResponse created;
  grpc::Status st = hub->CreateBox(&c1, bad_id, &created);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("-bad-") != std::string::npos);

  grpc::ClientContext c2;
  v1::ExecRequest empty;
  empty.set_box_id("whatever");
  v1::ExecResponse ran;
  st = hub->Exec(&c2, empty, &ran);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "exec: the command (argv) is empty");

  grpc::ClientContext c2b;
  v1::ExecRequest unknown_identity;
  unknown_identity.set_box_id("whatever");
  unknown_identity.add_argv("true");
  unknown_identity.set_identity(static_cast<v1::ExecIdentity>(7));
  st = hub->Exec(&c2b, unknown_identity, &ran);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "exec: unknown identity 7");

  grpc::ClientContext c3;
  v1::SubmitCodeRequest submit;
  submit.set_box_id("no-such-box");
  submit.set_code("has spaces in it");
  v1::SubmitCodeResponse outcome;
  st = hub->SubmitCode(&c3, submit, &outcome);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("has spaces") == std::string::npos);
}

// Polls GetBox (bounded: 30 s) until the box shows `phase`; true when it did.
bool WaitForPhase(v1::BoxService::Stub& hub, const std::string& id, v1::BoxPhase phase) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  v1::GetBoxRequest get;
  get.set_box_id(id);
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::Box box;
    if (hub.GetBox(&context, get, &box).ok() && box.phase() == phase) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the poll interval
  }
  return false;
}

// The boxes ListBoxes reports in `phase`, by id.
std::vector<std::string> ListedIn(v1::BoxService::Stub& hub, v1::BoxPhase phase) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListBoxesRequest request;
  request.add_phases(phase);
  v1::ListBoxesResponse listed;
  REQUIRE(hub.ListBoxes(&context, request, &listed).ok());
  std::vector<std::string> ids;
  for (const auto& box : listed.boxes()) ids.push_back(box.box_id());
  return ids;
}

TEST_CASE("GetBox and ListBoxes report CREATING and ACTIVATING while those are in flight",
          "[grpc]") {
  testing::ScratchDir dir("grpc-phases");
  const std::string release = (dir.path() / "release").string();
  const std::string gate = dir.Script(
      "gate", "while [ ! -e " + release + " ]; do sleep 0.05; done\necho '{\"version\":1}'\n");
  Spoke spoke({{.name = "gate", .event = "box.create", .command = {gate}}});
  auto hub = spoke.Hub();
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  const std::string id = "phases-" + common::HexEncode(*token).substr(0, 10);
  auto call = [](auto method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    return method(&context);
  };

  v1::CreateBoxRequest create;
  create.set_box_id(id);
  v1::CreateBoxResponse created;
  auto creating = std::async(std::launch::async, [&] {
    return call([&](auto* c) { return hub->CreateBox(c, create, &created); });
  });
  CHECK(WaitForPhase(*hub, id, v1::BOX_PHASE_CREATING));
  auto listed = ListedIn(*hub, v1::BOX_PHASE_CREATING);
  CHECK(std::find(listed.begin(), listed.end(), id) != listed.end());
  v1::HealthResponse health;
  REQUIRE(Health(*hub, &health).ok());
  CHECK(health.capacity().creating() >= 1);
  dir.Write("release", "");
  grpc::Status st = creating.get();
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(created.box().phase() == v1::BOX_PHASE_PENDING);

  // The stand-in holds a "standin-hold" code until /tmp/standin-release exists in the box.
  v1::SubmitCodeRequest submit;
  submit.set_box_id(id);
  submit.set_code("standin-hold-" + common::HexEncode(*token));
  v1::SubmitCodeResponse outcome;
  auto submitting = std::async(std::launch::async, [&] {
    return call([&](auto* c) { return hub->SubmitCode(c, submit, &outcome); });
  });
  CHECK(WaitForPhase(*hub, id, v1::BOX_PHASE_ACTIVATING));
  listed = ListedIn(*hub, v1::BOX_PHASE_ACTIVATING);
  CHECK(std::find(listed.begin(), listed.end(), id) != listed.end());
  v1::ExecRequest exec;
  exec.set_box_id(id);
  exec.add_argv("touch");
  exec.add_argv("/tmp/standin-release");
  exec.set_identity(v1::EXEC_AS_BOX);  // in the stand-in's own container, as the test's hand
  v1::ExecResponse ran;
  REQUIRE(call([&](auto* c) { return hub->Exec(c, exec, &ran); }).ok());
  REQUIRE(submitting.get().ok());
  CHECK(outcome.activated());
  CHECK(outcome.box().phase() == v1::BOX_PHASE_READY);

  v1::DestroyBoxRequest destroy;
  destroy.set_box_id(id);
  v1::DestroyBoxResponse destroyed;
  REQUIRE(call([&](auto* c) { return hub->DestroyBox(c, destroy, &destroyed); }).ok());
  CHECK(destroyed.existed());
}

}  // namespace
}  // namespace llmbox::spoke::service
