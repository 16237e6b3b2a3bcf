#include "spoke/hooks/hook_runner.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/scratch_dir.h"

namespace llmbox::spoke::hooks {
namespace {

using namespace std::chrono_literals;

const BoxFacts kBox{.box_id = "b1",
                    .image = "llmbox-box:dev",
                    .description = "d",
                    .owner = "alice",
                    .spoke = "local"};

TEST_CASE("create hooks inject files and their state reaches the destroy hooks", "[hooks]") {
  testing::ScratchDir d("hooks");
  const std::string create = d.Script("create", R"(cat > )" + d.path().string() + "/create.in" + R"(
printf '%s' '{"version":1,"files":[{"path":"/root/.config/tool/key","mode":384,"uid":1000,"gid":1000,"content":"k-123"},{"path":"/etc/motd","content_base64":"aGVsbG8="}],"state":{"account":"acct-7"}}'
)");
  const std::string destroy =
      d.Script("destroy", "cat > " + d.path().string() + "/destroy.in" + "\n");
  common::PosixSubprocessRunner runner;
  HookRunner hooks(runner, {{.name = "accounts", .event = "box.create", .command = {create}},
                            {.name = "cleanup", .event = "box.destroy", .command = {destroy}}});
  auto created = hooks.RunCreate(kBox);
  REQUIRE(created.ok());
  REQUIRE(created->files.size() == 2);
  CHECK(created->files[0].path == "/root/.config/tool/key");
  CHECK(created->files[0].mode == 0600);
  CHECK(created->files[0].uid == 1000);
  CHECK(created->files[0].content == "k-123");
  CHECK(created->files[1].content == "hello");
  CHECK(created->files[1].mode == 0600);  // the default

  auto request = nlohmann::json::parse(d.Read("create.in"));
  CHECK(request["version"] == 1);
  CHECK(request["event"] == "box.create");
  CHECK(request["box"]["box_id"] == "b1");
  CHECK(request["box"]["owner"] == "alice");

  REQUIRE(hooks.RunDestroy(kBox, created->state).ok());
  auto destroy_request = nlohmann::json::parse(d.Read("destroy.in"));
  CHECK(destroy_request["event"] == "box.destroy");
  CHECK(destroy_request["state"]["accounts"]["account"] == "acct-7");
}

TEST_CASE("a failing create hook is named, its output kept secret, and what ran is undone",
          "[hooks]") {
  testing::ScratchDir d("hooks");
  const std::string first = d.Script("first", R"(echo '{"version":1,"state":"made-it"}')");
  const std::string failing =
      d.Script("failing", "echo secret-output-xyz; echo err-xyz >&2; exit 3\n");
  const std::string destroy = d.Script("destroy", "cat > " + d.path().string() + "/undo.in" + "\n");
  common::PosixSubprocessRunner runner;
  HookRunner hooks(runner, {{.name = "first", .event = "box.create", .command = {first}},
                            {.name = "second", .event = "box.create", .command = {failing}},
                            {.name = "undo", .event = "box.destroy", .command = {destroy}}});
  auto created = hooks.RunCreate(kBox);
  REQUIRE_FALSE(created.ok());
  CHECK(created.status().message() ==
        "hook second (box.create, " + failing + "): exited with status 3");
  CHECK(created.status().message().find("secret-output") == std::string::npos);
  auto undo = nlohmann::json::parse(d.Read("undo.in"));
  CHECK(undo["state"]["first"] == "made-it");
}

TEST_CASE("a hanging hook is killed at its timeout", "[hooks]") {
  testing::ScratchDir d("hooks");
  const std::string slow = d.Script("slow", "sleep 30\n");
  common::PosixSubprocessRunner runner;
  HookRunner hooks(runner,
                   {{.name = "slow", .event = "box.create", .command = {slow}, .timeout = 200ms}});
  auto created = hooks.RunCreate(kBox);
  CHECK(absl::IsDeadlineExceeded(created.status()));
  CHECK(created.status().message() ==
        "hook slow (box.create, " + slow + "): did not finish within 200 ms and was killed");
}

TEST_CASE("bad hook replies are refused with a reason", "[hooks]") {
  const std::pair<std::string, std::string> cases[] = {
      {"echo not json", "its output is not a JSON object"},
      {"echo '{\"files\":[]}'", "its reply must say \"version\": 1"},
      {R"(echo '{"version":1,"files":[{"path":"relative/x","content":"a"}]}')",
       "must be an absolute path"},
      {R"(echo '{"version":1,"files":[{"path":"/a/../etc/shadow","content":"a"}]}')",
       "may not contain empty"},
      {R"(echo '{"version":1,"files":[{"path":"/a","content":"a","mode":99999}]}')",
       "\"mode\" must be a number 0..4095"},
      {R"(echo '{"version":1,"files":[{"path":"/a"}]}')", "give exactly one of"},
      {R"(echo '{"version":1,"files":{"path":"/a"}}')", "\"files\" must be a list"},
  };
  for (const auto& [body, reason] : cases) {
    testing::ScratchDir d("hooks");
    const std::string hook = d.Script("hook", body + "\n");
    common::PosixSubprocessRunner runner;
    HookRunner hooks(runner, {{.name = "h", .event = "box.create", .command = {hook}}});
    auto created = hooks.RunCreate(kBox);
    INFO(body << " -> " << created.status());
    CHECK(absl::IsInvalidArgument(created.status()));
    CHECK(created.status().message().find(reason) != std::string::npos);
  }
}

TEST_CASE("a hook that cannot run is named", "[hooks]") {
  common::PosixSubprocessRunner runner;
  HookRunner hooks(runner, {{.name = "gone", .event = "box.create", .command = {"/no/such/hook"}}});
  auto created = hooks.RunCreate(kBox);
  CHECK(absl::IsNotFound(created.status()));
  CHECK(created.status().message().find("hook gone (box.create, /no/such/hook): ") == 0);
}

TEST_CASE("hook lists are validated", "[hooks]") {
  CHECK(ValidateHooks({{.name = "a", .event = "box.create", .command = {"/x"}}}).ok());
  CHECK(ValidateHooks({{.name = "a", .event = "box.start", .command = {"/x"}}}).message() ==
        "hooks[0]: event must be box.create or box.destroy, got \"box.start\"");
  CHECK(ValidateHooks({{.name = "a", .event = "box.create", .command = {"/x"}},
                       {.name = "a", .event = "box.destroy", .command = {"/y"}}})
            .message() == "hooks[1]: the name a is used twice");
  CHECK(ValidateHooks({{.name = "a", .event = "box.create"}}).message() ==
        "hooks[0]: command is empty");
}

}  // namespace
}  // namespace llmbox::spoke::hooks
