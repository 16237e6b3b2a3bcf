// Whether a spoke can create (spoke/box/readiness.h): the default image on its engine and its
// claude_bin on the host, as `check-config`, `serve` and every health answer report it; and
// `llmbox-spoke image import` (spoke/box/image_import.h), over the fake engine.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "llmbox/v1/box.grpc.pb.h"
#include "spoke/box/image_import.h"
#include "spoke/box/readiness.h"
#include "spoke/node/spoke_node.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::box {
namespace {

using namespace std::chrono_literals;
using testing::FakeDockerEngine;
using testing::ScratchDir;

constexpr char kEngine[] = "unix:///run/test-docker.sock";

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST_CASE("a spoke with its default image and an executable claude_bin can create",
          "[spoke-readiness]") {
  ScratchDir dir("readiness-ok");
  FakeDockerEngine engine;
  engine.AddImage("llmbox-box:dev");
  BoxManagerOptions options{.claude_bin = dir.Script("claude", "exit 0")};
  CHECK(CheckCanCreate(engine, options, kEngine).ok());
  // Empty claude_bin: the image brings its own.
  options.claude_bin.clear();
  CHECK(CheckCanCreate(engine, options, kEngine).ok());
}

TEST_CASE("a missing default image is named with the engine and the command that imports it",
          "[spoke-readiness]") {
  FakeDockerEngine engine;
  const BoxManagerOptions options{.default_image = "llmbox-box:1.2"};
  const absl::Status st = CheckCanCreate(engine, options, kEngine);
  INFO(st.ToString());
  REQUIRE(absl::IsFailedPrecondition(st));
  CHECK(Message(st).find("boxes.default_image \"llmbox-box:1.2\" is not on the engine at " +
                         std::string(kEngine)) != std::string::npos);
  CHECK(Message(st).find("llmbox-spoke image import") != std::string::npos);
  CHECK(Message(st).find("deploy/box/build-image") != std::string::npos);
}

TEST_CASE("a claude_bin that is missing or not executable is named with the fix",
          "[spoke-readiness]") {
  ScratchDir dir("readiness-claude");
  FakeDockerEngine engine;
  engine.AddImage("llmbox-box:dev");
  BoxManagerOptions options{.claude_bin = (dir.path() / "nowhere" / "claude").string()};
  absl::Status st = CheckCanCreate(engine, options, kEngine);
  INFO(st.ToString());
  REQUIRE(absl::IsFailedPrecondition(st));
  CHECK(Message(st).find("boxes.claude_bin \"" + options.claude_bin + "\" cannot be read") !=
        std::string::npos);
  CHECK(Message(st).find("set boxes.claude_bin") != std::string::npos);

  options.claude_bin = dir.Write("claude", "not executable");
  st = CheckCanCreate(engine, options, kEngine);
  CHECK(Message(st).find("is not executable: chmod +x it") != std::string::npos);

  options.claude_bin = dir.path().string();
  CHECK(Message(CheckCanCreate(engine, options, kEngine)).find("is not a file") !=
        std::string::npos);
}

TEST_CASE("both problems are reported at once", "[spoke-readiness]") {
  FakeDockerEngine engine;
  const BoxManagerOptions options{.claude_bin = "/nonexistent/claude"};
  const std::string message = Message(CheckCanCreate(engine, options, kEngine));
  CHECK(message.find("boxes.claude_bin") != std::string::npos);
  CHECK(message.find("; boxes.default_image") != std::string::npos);
}

TEST_CASE(
    "a spoke node without its default image serves and its health says it cannot create "
    "until the image arrives",
    "[spoke-readiness]") {
  ScratchDir dir("readiness-node");
  testing::FakeClock clock;
  FakeDockerEngine engine;
  testing::FakeBoxEgress egress;
  config::SpokeConfig config;
  config.state_dir = (dir.path() / "state").string();
  config.docker.unix_socket = (dir.path() / "docker.sock").string();
  auto node = node::SpokeNode::Start(
      config, {.transport = node::SpokeTransport::kInProcess, .engine = &engine, .egress = &egress},
      clock);
  INFO(node.status().ToString());
  REQUIRE(node.ok());
  auto stub = v1::BoxService::NewStub((*node)->InProcessChannel());
  auto health = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::HealthResponse response;
    grpc::Status status = stub->Health(&context, v1::HealthRequest(), &response);
    REQUIRE(status.ok());
    return response;
  };
  v1::HealthResponse missing = health();
  CHECK(missing.engine().reachable());
  CHECK(missing.cannot_create().find("llmbox-box:dev") != std::string::npos);
  CHECK(missing.cannot_create().find("image import") != std::string::npos);

  // The operator imports the image: the next health answer says the spoke can create.
  engine.AddImage("llmbox-box:dev");
  CHECK(health().cannot_create().empty());
  (*node)->Stop();
}

TEST_CASE("image import streams the archive with progress and checks the default image arrived",
          "[spoke-readiness]") {
  ScratchDir dir("image-import");
  FakeDockerEngine engine;
  const std::string archive = dir.Write("box.tar.gz", std::string(300'000, 'x'));
  engine.SetLoadResult({"llmbox-box:dev"});
  std::vector<std::pair<uint64_t, uint64_t>> steps;
  auto report =
      ImportBoxImage(engine, archive, "llmbox-box:dev",
                     [&](uint64_t sent, uint64_t total) { steps.emplace_back(sent, total); });
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  CHECK(report->bytes == 300'000);
  CHECK(report->loaded == std::vector<std::string>{"llmbox-box:dev"});
  CHECK(report->default_image_id == "sha256:llmbox-box:dev");
  REQUIRE_FALSE(steps.empty());
  // Rising, at most once per 1 %, ending at the whole file.
  CHECK(steps.back() == std::make_pair(uint64_t{300'000}, uint64_t{300'000}));
  CHECK(steps.size() <= 101);
  for (size_t i = 1; i < steps.size(); ++i) CHECK(steps[i].first > steps[i - 1].first);
  CHECK(engine.HasImage("llmbox-box:dev"));
}

TEST_CASE("image import of an archive without the default image says what it held and what to do",
          "[spoke-readiness]") {
  ScratchDir dir("image-import-other");
  FakeDockerEngine engine;
  engine.SetLoadResult({"someone-else:7"});
  auto report = ImportBoxImage(engine, dir.Write("other.tar", "tar"), "llmbox-box:dev", {});
  INFO(report.status().ToString());
  REQUIRE(absl::IsInvalidArgument(report.status()));
  const std::string message = Message(report.status());
  CHECK(message.find("it held someone-else:7") != std::string::npos);
  CHECK(message.find("boxes.default_image \"llmbox-box:dev\" is still not on the engine") !=
        std::string::npos);
}

TEST_CASE("image import of a file that is not there names it and calls no engine",
          "[spoke-readiness]") {
  FakeDockerEngine engine;
  auto report = ImportBoxImage(engine, "/nonexistent/box.tar.gz", "llmbox-box:dev", {});
  REQUIRE(absl::IsNotFound(report.status()));
  CHECK(Message(report.status()).find("/nonexistent/box.tar.gz") != std::string::npos);
  CHECK(engine.Calls().empty());
}

}  // namespace
}  // namespace llmbox::spoke::box
