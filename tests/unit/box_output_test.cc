// Whatever a box prints reaches the hub: a spoke (its SpokeNode, in process, on the scripted
// fake engine) answered through the hub's own gRPC client, so protobuf's UTF-8 check on the
// hub's side is the real one. Console bytes that are not UTF-8, NUL, terminal escapes and
// lines cut inside a character come back as valid UTF-8, bounded, and never lose the answer.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "common/grpc_status.h"
#include "common/utf8.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/unit/in_process_spoke.h"

namespace llmbox::spoke {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

constexpr char kImage[] = "llmbox-box:dev";
const std::string kFffd = "\xef\xbf\xbd";

// Bytes no UTF-8 decoder takes: never-UTF-8 bytes, a lone continuation byte, an overlong
// slash, a surrogate, a code point above U+10FFFF and a character cut short.
const std::string kBroken = "\xff\xfe|\x80|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x94"s;

std::string Repeat(const std::string& part, size_t times) {
  std::string out;
  out.reserve(part.size() * times);
  for (size_t i = 0; i < times; ++i) out += part;
  return out;
}

struct Spoke : testing::InProcessSpoke {
  Spoke()
      : InProcessSpoke(
            "box-output",
            // One attempt: a refused code is the last, so the spoke waits for no new login.
            [](config::SpokeConfig& config) { config.boxes.max_activation_attempts = 1; }, kImage) {
    auto created = client->CreateBox({.box_id = "b1"}, 30s);
    INFO(created.status().ToString());
    REQUIRE(created.ok());
  }

  std::shared_ptr<testing::ScriptedConsole> Console() {
    auto console = engine.ConsoleOf("llmbox-pending-b1");
    REQUIRE(console != nullptr);
    return console;
  }
};

TEST_CASE(
    "console bytes that are not UTF-8 come back from the logs as U+FFFD, not as a lost answer",
    "[box_output]") {
  Spoke spoke;
  spoke.Console()->Print("\r\nbefore " + kBroken +
                         " nul \0 bell \x07 \x1b[31mred\x1b[0m after\r\n"s);
  auto logs = spoke.client->GetLogs({.box_id = "b1"}, 10s);
  INFO(logs.status().ToString());
  REQUIRE(logs.ok());
  CHECK(common::IsValidUtf8(logs->logs));
  // Terminal controls are stripped from logs (the text a person would see); the rest stays.
  CHECK(logs->logs.find("before " + kFffd + kFffd + "|" + kFffd + "|") != std::string::npos);
  CHECK(logs->logs.find(" nul  bell  red after") != std::string::npos);
  CHECK(logs->logs.find('\x1b') == std::string::npos);
  CHECK(logs->logs.find('\0') == std::string::npos);
}

TEST_CASE("logs cut to their byte cap inside a character still come back", "[box_output]") {
  Spoke spoke;
  // 3000 bytes of box-drawing characters; the newest 1000 start inside one.
  spoke.Console()->Print("\r\n" + Repeat("\xe2\x94\x80", 1000));
  auto logs = spoke.client->GetLogs({.box_id = "b1", .max_bytes = 1000}, 10s);
  INFO(logs.status().ToString());
  REQUIRE(logs.ok());
  CHECK(logs->truncated);
  CHECK(common::IsValidUtf8(logs->logs));
  CHECK(logs->logs.find(Repeat("\xe2\x94\x80", 300)) != std::string::npos);
}

TEST_CASE("exec output keeps NUL and escapes and comes back as valid UTF-8", "[box_output]") {
  Spoke spoke;
  const std::string printed = "out " + kBroken + " nul \0 esc \x1b[2J\x1b]0;title\x07 end"s;
  spoke.engine.SetExecResult(
      {.exit_code = 3, .stdout_data = printed, .stderr_data = "err \xff\0"s});
  auto ran = spoke.client->Exec({.box_id = "b1", .argv = {"cat", "/dev/urandom"}}, 10s, nullptr);
  INFO(ran.status().ToString());
  REQUIRE(ran.ok());
  CHECK(ran->exit_code == 3);
  CHECK(ran->stdout_text == common::ToValidUtf8(printed));
  CHECK(ran->stdout_text.find("nul \0 esc \x1b[2J\x1b]0;title\x07 end"s) != std::string::npos);
  CHECK(ran->stderr_text == "err " + kFffd + "\0"s);
}

TEST_CASE("exec output of 64 KiB of bytes that are not UTF-8 comes back whole and valid",
          "[box_output]") {
  Spoke spoke;
  std::string noise;
  for (size_t i = 0; i < (64u << 10); ++i) noise.push_back(static_cast<char>(0x80 + i % 128));
  spoke.engine.SetExecResult({.exit_code = 0, .stdout_data = noise});
  auto ran = spoke.client->Exec({.box_id = "b1", .argv = {"head", "-c", "65536", "/dev/urandom"}},
                                10s, nullptr);
  INFO(ran.status().ToString());
  REQUIRE(ran.ok());
  CHECK(common::IsValidUtf8(ran->stdout_text));
  CHECK(ran->stdout_text == common::ToValidUtf8(noise));
}

TEST_CASE("a box's long error line in broken UTF-8 comes back valid and cut, and the list parses",
          "[box_output]") {
  Spoke spoke;
  auto submitting = std::async(std::launch::async, [&] {
    return spoke.client->SubmitCode({.box_id = "b1", .code = "held-1#s", .timeout = 30s}, 30s);
  });
  // The code is written (the box has not answered: it is held). The spoke's other waiters on
  // the clock (its reaper) make WaitForWaiters no sign of that, so watch the console's stdin.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (spoke.Console()->Codes().empty() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  REQUIRE(spoke.Console()->Codes() == std::vector<std::string>{"held-1#s"});
  // One line, about 10 KiB: broken sequences and cut box-drawing characters.
  spoke.Console()->Print("Error: " + Repeat(kBroken + "\xe2\x94\x80", 400) + "\r\n");
  auto outcome = submitting.get();
  INFO(outcome.status().ToString());
  REQUIRE(outcome.ok());
  CHECK_FALSE(outcome->activated);
  CHECK(common::IsValidUtf8(outcome->box_error));
  CHECK(outcome->box_error.rfind("Error: " + kFffd, 0) == 0);
  CHECK(outcome->box_error.size() <= 4096);
  auto listed = spoke.client->ListBoxes(10s);
  INFO(listed.status().ToString());
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(common::IsValidUtf8((*listed)[0].last_error));
  CHECK((*listed)[0].last_error == outcome->box_error);
}

TEST_CASE("an error quoting broken box output crosses gRPC valid and bounded", "[box_output]") {
  const grpc::Status sent =
      common::ToGrpcStatus(absl::FailedPreconditionError("the box said: " + Repeat(kBroken, 500)));
  CHECK(sent.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(common::IsValidUtf8(sent.error_message()));
  CHECK(sent.error_message().size() <= 2048);
  CHECK(sent.error_message().rfind("the box said: " + kFffd, 0) == 0);
  // Whatever a peer sends is made the same on the way in.
  const absl::Status received =
      common::FromGrpcStatus(grpc::Status(grpc::StatusCode::INTERNAL, "x\xff" + Repeat("y", 5000)));
  CHECK(absl::IsInternal(received));
  CHECK(common::IsValidUtf8(std::string(received.message())));
  CHECK(received.message().size() <= 2048);
  CHECK(std::string(received.message()).rfind("x" + kFffd + "y", 0) == 0);
}

}  // namespace
}  // namespace llmbox::spoke
