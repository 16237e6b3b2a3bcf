// The llmbox-spoke binary as a process: started from a config file, called by a hub identity
// over mutual TLS, stopped by SIGTERM and started again without losing a pending box.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
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
