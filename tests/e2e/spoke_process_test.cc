// The llmbox-spoke binary as a process: started from a config file, called by a hub identity
// over mutual TLS, stopped by SIGTERM and started again without losing a pending box.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <sys/wait.h>

#include "common/grpc_tls.h"
#include "common/pki.h"
#include "common/secrets.h"
#include "llmbox/v1/box.grpc.pb.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/test_internet.h"
#include "tests/support/test_pki.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// llmbox-spoke serve, its output in a file.
class SpokeProcess : public ChildProcess {
 public:
  SpokeProcess(const fs::path& config, const fs::path& log)
      : ChildProcess({LLMBOX_SPOKE_BIN, "serve", "--config", config.string()}, log) {}
  int Port() { return std::stoi(WaitForLog("serving on port ([0-9]+)", 30s)); }
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

common::TlsPems Issue(const common::CertifiedKey& ca, const std::string& uri) {
  return IssueForTest(ca, uri, "spoke-e2e");
}

TEST_CASE("llmbox-spoke serves over mutual TLS and keeps a pending box across a restart", "[e2e]") {
  const auto& rig = Rig();
  const fs::path dir =
      fs::temp_directory_path() / ("llmbox-spoke-e2e-" + std::to_string(::getpid()));
  fs::create_directories(dir / "state");
  auto ca = common::MakeCa("e2e cluster", absl::Hours(1));
  REQUIRE(ca.ok());
  const common::TlsPems spoke = Issue(*ca, common::SpokeIdentity("spoke-e2e"));
  const common::TlsPems hub = Issue(*ca, std::string(common::kHubIdentity));
  std::ofstream(dir / "spoke.crt") << spoke.cert_pem;
  std::ofstream(dir / "spoke.key") << spoke.key_pem;
  std::ofstream(dir / "ca.crt") << ca->cert_pem;
  std::ofstream(dir / "spoke.yaml")
      << "spoke:\n  name: spoke-e2e\n  listen: 127.0.0.1:0\n  state_dir: state\n"
      << "tls:\n  cert_file: spoke.crt\n  key_file: spoke.key\n  ca_file: ca.crt\n"
      << "docker:\n  socket: " << rig.docker_sock << "\n"
      << "boxes:\n  default_image: " << rig.box_image << "\n  claude_bin: " << rig.standin_claude
      << "\n  memory: 1GiB\n  stop_grace: 1s\n"
      << "log:\n  level: debug\n  format: json\n";
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  const std::string id = "e2e-" + common::HexEncode(*token).substr(0, 10);
  const std::string code = "standin-ok-" + common::HexEncode(*token);
  auto call = [](auto method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 120s);
    return method(&context);
  };
  auto stub_for = [&](int port) {
    return v1::BoxService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                       common::MutualTlsChannelCredentials(hub)));
  };

  std::string authorize_url;
  {
    SpokeProcess process(dir / "spoke.yaml", dir / "spoke-1.log");
    auto stub = stub_for(process.Port());
    v1::CreateBoxRequest create;
    create.set_box_id(id);
    v1::CreateBoxResponse created;
    grpc::Status st = call([&](auto* c) { return stub->CreateBox(c, create, &created); });
    INFO(st.error_message());
    REQUIRE(st.ok());
    authorize_url = created.authorize_url();
    CHECK(process.Stop() == 0);
  }
  {
    SpokeProcess process(dir / "spoke.yaml", dir / "spoke-2.log");
    auto stub = stub_for(process.Port());
    v1::GetBoxRequest get;
    get.set_box_id(id);
    v1::Box box;
    REQUIRE(call([&](auto* c) { return stub->GetBox(c, get, &box); }).ok());
    CHECK(box.phase() == v1::BOX_PHASE_PENDING);
    v1::SubmitCodeRequest submit;
    submit.set_box_id(id);
    submit.set_code(code);
    v1::SubmitCodeResponse outcome;
    REQUIRE(call([&](auto* c) { return stub->SubmitCode(c, submit, &outcome); }).ok());
    CHECK(outcome.activated());
    v1::DestroyBoxRequest destroy;
    destroy.set_box_id(id);
    v1::DestroyBoxResponse destroyed;
    REQUIRE(call([&](auto* c) { return stub->DestroyBox(c, destroy, &destroyed); }).ok());
    CHECK(destroyed.existed());
    CHECK(process.Stop() == 0);
  }
  // The log is JSON lines and holds neither the code nor the authorize URL.
  const std::string log =
      ReadFileOrEmpty(dir / "spoke-1.log") + ReadFileOrEmpty(dir / "spoke-2.log");
  INFO(log);
  CHECK(log.find("\"level\":\"info\"") != std::string::npos);
  CHECK(log.find("serving on port") != std::string::npos);
  CHECK(log.find(code) == std::string::npos);
  CHECK(log.find(authorize_url.substr(authorize_url.find('?'))) == std::string::npos);
  fs::remove_all(dir);
}

// What `nft list ruleset` says (the spoke's table is there with its boxes' chains).
std::string Ruleset() {
  FILE* pipe = ::popen("/usr/sbin/nft list ruleset 2>&1", "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (pipe != nullptr && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (pipe != nullptr) ::pclose(pipe);
  return out;
}

std::string ChainName(std::string box_id) {
  std::replace(box_id.begin(), box_id.end(), '-', '_');
  return "box_" + box_id + "_in";
}

TEST_CASE(
    "llmbox-spoke killed with -9 comes back with every live box's network policy and no stale "
    "rule",
    "[e2e]") {
  const auto& rig = Rig();
  auto internet = TestInternet::Create();
  INFO(internet.status().ToString());
  REQUIRE(internet.ok());
  TestServer& web = (*internet)->Serve(80);
  const fs::path dir =
      fs::temp_directory_path() / ("llmbox-spoke-kill-" + std::to_string(::getpid()));
  fs::create_directories(dir / "state");
  auto ca = common::MakeCa("e2e cluster", absl::Hours(1));
  REQUIRE(ca.ok());
  const std::string name = "kill9-" + std::to_string(::getpid());
  const common::TlsPems spoke = Issue(*ca, common::SpokeIdentity(name));
  const common::TlsPems hub = Issue(*ca, std::string(common::kHubIdentity));
  std::ofstream(dir / "spoke.crt") << spoke.cert_pem;
  std::ofstream(dir / "spoke.key") << spoke.key_pem;
  std::ofstream(dir / "ca.crt") << ca->cert_pem;
  const std::string inside = (*internet)->inside_address();
  std::ofstream(dir / "spoke.yaml")
      << "spoke:\n  name: " << name << "\n  listen: 127.0.0.1:0\n  state_dir: state\n"
      << "tls:\n  cert_file: spoke.crt\n  key_file: spoke.key\n  ca_file: ca.crt\n"
      << "docker:\n  socket: " << rig.docker_sock << "\n"
      << "boxes:\n  default_image: " << rig.box_image << "\n  claude_bin: " << rig.standin_claude
      << "\n  memory: 1GiB\n  stop_grace: 1s\n"
      << "egress:\n  box_may_allow: [allowed.test:80, other.test:80]\n"
      << "  hosts: [allowed.test=" << inside << ", other.test=" << inside << "]\n";
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  const std::string keep = "k9-keep-" + common::HexEncode(*token).substr(0, 8);
  const std::string gone = "k9-gone-" + common::HexEncode(*token).substr(0, 8);
  auto call = [](auto method) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 120s);
    return method(&context);
  };
  auto stub_for = [&](int port) {
    return v1::BoxService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                       common::MutualTlsChannelCredentials(hub)));
  };
  auto exec = [&](v1::BoxService::Stub& stub, const std::string& id, const std::string& script) {
    v1::ExecRequest request;
    request.set_box_id(id);
    for (const char* arg : {"bash", "-c"}) request.add_argv(arg);
    request.add_argv(script);
    v1::ExecResponse response;
    grpc::Status st = call([&](auto* c) { return stub.Exec(c, request, &response); });
    INFO(st.error_message());
    REQUIRE(st.ok());
    return response.stdout();
  };

  {
    SpokeProcess process(dir / "spoke.yaml", dir / "spoke-1.log");
    auto stub = stub_for(process.Port());
    for (const std::string& id : {keep, gone}) {
      v1::CreateBoxRequest create;
      create.set_box_id(id);
      create.mutable_network()->set_mode(v1::NETWORK_MODE_ALLOWLIST);
      create.mutable_network()->add_allow("allowed.test:80");
      v1::CreateBoxResponse created;
      grpc::Status st = call([&](auto* c) { return stub->CreateBox(c, create, &created); });
      INFO(st.error_message());
      REQUIRE(st.ok());
    }
    v1::SetBoxNetworkRequest change;
    change.set_box_id(keep);
    change.add_add("other.test:80");
    v1::Box changed;
    REQUIRE(call([&](auto* c) { return stub->SetBoxNetwork(c, change, &changed); }).ok());
    CHECK(Contains(exec(*stub, keep, ConnectThroughProxyScript("other.test:80")), "server: hello"));
    CHECK(web.Connections() == 1);
    REQUIRE(::kill(process.pid(), SIGKILL) == 0);
    CHECK(process.Wait(20s) == 128 + SIGKILL);
  }
  // While the spoke is down its boxes stay fenced (the rules hold without it); one box is
  // removed behind its back.
  const std::string fenced = Ruleset();
  CHECK(Contains(fenced, ChainName(keep)));
  CHECK(Contains(fenced, ChainName(gone)));
  std::system(("DOCKER_HOST=unix://" + rig.docker_sock + " docker rm -f llmbox-pending-" + gone +
               " llmbox-exec-" + gone + " >/dev/null 2>&1")
                  .c_str());
  {
    SpokeProcess process(dir / "spoke.yaml", dir / "spoke-2.log");
    auto stub = stub_for(process.Port());
    const std::string rules = Ruleset();
    CHECK(Contains(rules, ChainName(keep)));
    CHECK_FALSE(Contains(rules, ChainName(gone)));  // no stale rule
    // The live box's policy, with the change made before the kill, is in force again.
    CHECK(
        Contains(exec(*stub, keep, ConnectThroughProxyScript("allowed.test:80")), "server: hello"));
    CHECK(Contains(exec(*stub, keep, ConnectThroughProxyScript("other.test:80")), "server: hello"));
    CHECK(web.Connections() == 3);
    for (const std::string& id : {keep, gone}) {
      v1::DestroyBoxRequest destroy;
      destroy.set_box_id(id);
      v1::DestroyBoxResponse destroyed;
      CHECK(call([&](auto* c) { return stub->DestroyBox(c, destroy, &destroyed); }).ok());
    }
    CHECK_FALSE(Contains(Ruleset(), ChainName(keep)));
    CHECK(process.Stop() == 0);
  }
  // Stopped with no box left, the spoke leaves nothing on the host.
  std::string table = "llmbox_" + name;
  std::replace(table.begin(), table.end(), '-', '_');
  CHECK_FALSE(Contains(Ruleset(), table));
  fs::remove_all(dir);
}

TEST_CASE("llmbox-spoke refuses a bad config with the key and line", "[e2e]") {
  const fs::path dir =
      fs::temp_directory_path() / ("llmbox-spoke-cfg-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "bad.yaml") << "spoke:\n  name: s1\nboxes:\n  max_boxes: 0\n";
  const std::string command = std::string(LLMBOX_SPOKE_BIN) + " check-config --config " +
                              (dir / "bad.yaml").string() + " 2> " + (dir / "err").string();
  const int status = std::system(command.c_str());
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(ReadFileOrEmpty(dir / "err") ==
        "llmbox-spoke: config: boxes.max_boxes (line 4): must be 1..1000, got 0\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace llmbox::testing
