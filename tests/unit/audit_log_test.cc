// The audit log (hub/audit/audit_log.h): its line format, what it never holds, rotation, torn
// lines, concurrent writers, and the records the box tools write through the MCP endpoint.
#include "hub/audit/audit_log.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "common/utf8.h"
#include "hub/admin/admin_commands.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/config/hub_config.h"
#include "hub/mcp/endpoint.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_box_service.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/recording_responder.h"
#include "tests/support/json_lines.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/tools_call.h"

namespace llmbox::hub::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Secrets of the shapes common::Redact knows (of an authorize URL, its query is the secret).
const std::string kApiKey = "llmbox_" + std::string(43, 'K');
const std::string kAnthropic = "sk-ant-oat01-" + std::string(40, 'A');
const std::string kJwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
const std::string kAuthorizeUrl =
    "https://claude.ai/oauth/authorize?code=true&client_id=abc&code_challenge=" +
    std::string(43, 'C') + "&state=" + std::string(43, 'S');
const std::string kBearer = std::string(43, 'B');

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> Lines(const fs::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every line of the file parsed (the test fails on one that does not).
std::vector<json> Records(const fs::path& path) {
  std::vector<json> records = testing::ReadJsonLines(path);
  for (const auto& record : records) REQUIRE(record.is_object());
  return records;
}

void CheckNoSecret(const std::string& text) {
  for (const std::string& secret :
       {kApiKey, kAnthropic, kJwt, kBearer, std::string(43, 'C'), std::string(43, 'S')}) {
    INFO(secret);
    CHECK_FALSE(absl::StrContains(text, secret));
  }
}

struct Dir {
  Dir() : scratch("audit-log") {}
  fs::path File() const { return scratch.path() / "audit.log"; }
  testing::ScratchDir scratch;
  testing::FakeClock clock;
};

TEST_CASE("an audit record is one JSON line with the time in RFC 3339 UTC to the millisecond",
          "[audit]") {
  Dir dir;
  AuditLog log({.path = dir.File().string()}, dir.clock);
  REQUIRE(log.Open().ok());
  REQUIRE(log.Append({.event = Event::kBoxDestroy,
                      .principal = "key:alice",
                      .client = "192.0.2.7",
                      .box_id = "b1",
                      .spoke = "local"})
              .ok());
  REQUIRE(log.Append({.event = Event::kBoxCreate,
                      .principal = "key:bob",
                      .client = "2001:db8::1",
                      .outcome = Outcome(absl::PermissionDeniedError("no")),
                      .error = "quota reached"})
              .ok());
  const auto records = Records(dir.File());
  REQUIRE(records.size() == 2);
  CHECK(records[0] == json{{"time", records[0]["time"]},
                           {"event", "box.destroy"},
                           {"principal", "key:alice"},
                           {"client", "192.0.2.7"},
                           {"box_id", "b1"},
                           {"spoke", "local"},
                           {"outcome", "ok"}});
  CHECK(absl::StartsWith(Lines(dir.File())[0],
                         "{\"time\":\"" + records[0]["time"].get<std::string>() +
                             "\",\"event\":\"box.destroy\",\"principal\":\"key:alice\""));
  const std::string time = records[0]["time"].get<std::string>();
  CHECK(time.size() == 24);
  CHECK(time[10] == 'T');
  CHECK(time[19] == '.');
  CHECK(time.back() == 'Z');
  CHECK(records[1]["outcome"] == "permission_denied");
  CHECK(records[1]["error"] == "quota reached");
  CHECK_FALSE(records[1].contains("box_id"));
}

TEST_CASE("every audit event has a distinct dotted name", "[audit]") {
  std::set<std::string_view> names;
  for (int e = 0; e <= static_cast<int>(Event::kBoxReap); ++e) {
    const std::string_view name = EventName(static_cast<Event>(e));
    CHECK(name.find('.') != std::string_view::npos);
    CHECK(names.insert(name).second);
  }
}

TEST_CASE("an audit record never holds a key a token or an authorize URL passed in any field",
          "[audit]") {
  Dir dir;
  AuditLog log({.path = dir.File().string()}, dir.clock);
  const std::string all =
      kApiKey + " " + kAnthropic + " " + kJwt + " Bearer " + kBearer + " " + kAuthorizeUrl;
  REQUIRE(log.Append({.event = Event::kBoxCreate,
                      .principal = all,
                      .client = all,
                      .box_id = all,
                      .spoke = all,
                      .outcome = all,
                      .error = all,
                      .details = {{"image", all}, {"reason", all}}})
              .ok());
  const std::string text = ReadAll(dir.File());
  CheckNoSecret(text);
  CHECK(absl::StrContains(text, "[REDACTED]"));
  CHECK(Records(dir.File()).size() == 1);
}

TEST_CASE("an exec argv in the audit log is redacted alone and in pairs", "[audit]") {
  bool truncated = true;
  const auto argv = ArgvForAudit({"curl", "-H", "Authorization: Bearer " + kBearer, "--token",
                                  "Bearer", kBearer, "echo", kAnthropic, "ls", "-la", kApiKey},
                                 &truncated);
  CHECK_FALSE(truncated);
  REQUIRE(argv.size() == 11);
  std::string joined;
  for (const auto& arg : argv) joined += arg + "\n";
  CheckNoSecret(joined);
  // What is not secret stays as it was.
  CHECK(argv[0] == "curl");
  CHECK(argv[1] == "-H");
  CHECK(argv[4] == "Bearer");
  CHECK(argv[5] == "[REDACTED]");
  CHECK(argv[6] == "echo");
  CHECK(argv[8] == "ls");
  CHECK(argv[9] == "-la");
}

TEST_CASE("an exec argv in the audit log is bounded in count and bytes and made valid UTF-8",
          "[audit]") {
  bool truncated = false;
  const auto many = ArgvForAudit(std::vector<std::string>(1000, "x"), &truncated);
  CHECK(truncated);
  CHECK(many.size() == kMaxArgs);

  truncated = false;
  const auto long_args =
      ArgvForAudit(std::vector<std::string>(20, std::string(5000, 'y')), &truncated);
  CHECK(truncated);
  std::size_t total = 0;
  for (const auto& arg : long_args) {
    CHECK(arg.size() <= kMaxFieldBytes);
    total += arg.size();
  }
  CHECK(total <= kMaxArgvBytes);

  truncated = true;
  const auto broken = ArgvForAudit({"\xff\xfe", "ok"}, &truncated);
  CHECK_FALSE(truncated);
  CHECK(common::IsValidUtf8(broken[0]));

  Dir dir;
  AuditLog log({.path = dir.File().string()}, dir.clock);
  REQUIRE(log.Append({.event = Event::kBoxExec,
                      .box_id = "b1",
                      .argv = std::vector<std::string>(1000, std::string(100, 'z'))})
              .ok());
  const auto records = Records(dir.File());
  REQUIRE(records.size() == 1);
  CHECK(records[0]["argv_truncated"] == true);
  CHECK(records[0]["argc"] == 1000);
  CHECK(Lines(dir.File())[0].size() < kMaxArgvBytes + 4096);
}

TEST_CASE("the audit log rotates by size and keeps the configured number of files", "[audit]") {
  Dir dir;
  AuditLog log({.path = dir.File().string(), .max_size = 1000, .keep = 3}, dir.clock);
  REQUIRE(log.Open().ok());
  for (int i = 0; i < 100; ++i) {
    REQUIRE(log.Append({.event = Event::kBoxLogs, .box_id = "box-" + std::to_string(i)}).ok());
  }
  const std::string base = dir.File().string();
  for (const std::string& name : {base, base + ".1", base + ".2", base + ".3"}) {
    INFO(name);
    REQUIRE(fs::exists(name));
    CHECK(fs::file_size(name) <= 1000);
    CHECK_FALSE(Records(name).empty());
  }
  CHECK_FALSE(fs::exists(base + ".4"));
  // The newest record is in the live file and the files follow each other in age.
  CHECK(Records(base).back()["box_id"] == "box-99");
  const auto newest_of_1 = Records(base + ".1").back()["box_id"].get<std::string>();
  const auto oldest_live = Records(base).front()["box_id"].get<std::string>();
  CHECK(std::stoi(newest_of_1.substr(4)) + 1 == std::stoi(oldest_live.substr(4)));
}

TEST_CASE("a torn last line does not swallow the next audit record", "[audit]") {
  Dir dir;
  std::ofstream(dir.File()) << "{\"time\":\"2026-11-30T00:00:00.000Z\",\"event\":\"box.cre";
  AuditLog log({.path = dir.File().string()}, dir.clock);
  REQUIRE(log.Open().ok());
  REQUIRE(log.Append({.event = Event::kBoxDestroy, .box_id = "after-crash"}).ok());
  const auto lines = Lines(dir.File());
  REQUIRE(lines.size() == 2);
  CHECK(absl::StartsWith(lines[0], "{\"time\""));
  CHECK(json::parse(lines[1])["box_id"] == "after-crash");
}

TEST_CASE("audit records from many threads and two writers on one file are whole lines",
          "[audit]") {
  Dir dir;
  // The serving hub's log and an admin command's, as two processes would have them.
  AuditLog hub({.path = dir.File().string()}, dir.clock);
  AuditLog cli({.path = dir.File().string(), .rotate = false}, dir.clock);
  REQUIRE(hub.Open().ok());
  constexpr int kThreads = 8;
  constexpr int kEach = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = t % 2 == 0 ? hub : cli;
      for (int i = 0; i < kEach; ++i) {
        log.Record({.event = Event::kBoxExec,
                    .box_id = "t" + std::to_string(t) + "-" + std::to_string(i),
                    .argv = {"echo", std::string(300, static_cast<char>('a' + t))}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto records = Records(dir.File());
  CHECK(records.size() == kThreads * kEach);
  std::set<std::string> ids;
  for (const auto& record : records) ids.insert(record["box_id"].get<std::string>());
  CHECK(ids.size() == kThreads * kEach);
}

TEST_CASE("an audit file moved away by another rotation is followed by a new file at the path",
          "[audit]") {
  Dir dir;
  AuditLog log({.path = dir.File().string()}, dir.clock);
  REQUIRE(log.Open().ok());
  REQUIRE(log.Append({.event = Event::kBoxLogs, .box_id = "before"}).ok());
  fs::rename(dir.File(), dir.File().string() + ".old");
  REQUIRE(log.Append({.event = Event::kBoxLogs, .box_id = "after"}).ok());
  CHECK(Records(dir.File()).at(0)["box_id"] == "after");
  CHECK(Records(dir.File().string() + ".old").size() == 1);
}

TEST_CASE("the audit file is made with mode 0600", "[audit]") {
  Dir dir;
  AuditLog log({.path = dir.File().string()}, dir.clock);
  REQUIRE(log.Open().ok());
  struct stat info {};
  REQUIRE(::stat(dir.File().c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE("an audit record that cannot be written is an error naming the path", "[audit]") {
  Dir dir;
  const std::string path = (dir.scratch.path() / "missing" / "audit.log").string();
  AuditLog log({.path = path}, dir.clock);
  const absl::Status opened = log.Open();
  CHECK(absl::IsFailedPrecondition(opened));
  CHECK(absl::StrContains(opened.message(), path));
  const absl::Status appended = log.Append({.event = Event::kBoxLogs});
  CHECK(absl::IsFailedPrecondition(appended));
  log.Record({.event = Event::kBoxLogs});  // logged, not thrown or fatal
  // Once the folder is there the next record is written.
  fs::create_directories(dir.scratch.path() / "missing");
  CHECK(log.Append({.event = Event::kBoxLogs, .box_id = "back"}).ok());
  CHECK(Records(path).at(0)["box_id"] == "back");
}

TEST_CASE("hub.audit defaults to the state dir and its keys are checked", "[audit]") {
  auto defaults = config::ParseHubConfig("hub:\n  state_dir: /srv/hub\n", "hub.yaml", "/etc");
  REQUIRE(defaults.ok());
  CHECK(defaults->audit.path == "/srv/hub/audit.log");
  CHECK(defaults->audit.max_size == 64ull << 20);
  CHECK(defaults->audit.keep == 5);
  CHECK_FALSE(defaults->audit.fsync);

  auto set = config::ParseHubConfig(
      "hub:\n  audit:\n    path: logs/audit.jsonl\n    max_size: 1MiB\n    keep: 10\n"
      "    fsync: true\n",
      "hub.yaml", "/etc/llmbox");
  REQUIRE(set.ok());
  CHECK(set->audit.path == "/etc/llmbox/logs/audit.jsonl");
  CHECK(set->audit.max_size == 1ull << 20);
  CHECK(set->audit.keep == 10);
  CHECK(set->audit.fsync);

  auto small = config::ParseHubConfig("hub:\n  audit:\n    max_size: 1KiB\n", "hub.yaml", "/");
  REQUIRE_FALSE(small.ok());
  CHECK(absl::StrContains(small.status().message(), "hub.audit.max_size"));
  auto keep = config::ParseHubConfig("hub:\n  audit:\n    keep: 0\n", "hub.yaml", "/");
  REQUIRE_FALSE(keep.ok());
  CHECK(absl::StrContains(keep.status().message(), "hub.audit.keep"));
  auto unknown = config::ParseHubConfig("hub:\n  audit:\n    rotate: yes\n", "hub.yaml", "/");
  CHECK_FALSE(unknown.ok());
}

TEST_CASE("the admin commands that change state are audited as the operator and listings are not",
          "[audit]") {
  Dir dir;
  auto parsed = config::ParseHubConfig("hub:\n  state_dir: " + dir.scratch.path().string() + "\n",
                                       "hub.yaml", "/");
  REQUIRE(parsed.ok());
  const config::HubConfig& hub = *parsed;
  const admin::CommandArgs create{.verb = "create", .name = "ops-key", .admin = true};
  CHECK(admin::AuditedCommand("apikey", create, hub, dir.clock, admin::ApiKeyCommand) == 0);
  CHECK(admin::AuditedCommand("apikey", {.verb = "list"}, hub, dir.clock, admin::ApiKeyCommand) ==
        0);
  const admin::CommandArgs revoke{.verb = "revoke", .name = "ops-key"};
  CHECK(admin::AuditedCommand("apikey", revoke, hub, dir.clock, admin::ApiKeyCommand) == 0);
  const admin::CommandArgs unknown{.verb = "revoke", .name = "no-such-key"};
  CHECK(admin::AuditedCommand("apikey", unknown, hub, dir.clock, admin::ApiKeyCommand) == 1);

  const auto records = Records(hub.audit.path);
  REQUIRE(records.size() == 3);
  CHECK(records[0]["event"] == "apikey.create");
  CHECK(records[0]["name"] == "ops-key");
  CHECK(records[0]["admin"] == "true");
  CHECK(records[1]["event"] == "apikey.revoke");
  CHECK(records[2]["event"] == "apikey.revoke");
  CHECK(records[2]["outcome"] == "error");
  for (const auto& record : records) {
    CHECK(record["principal"].get<std::string>().rfind("operator:", 0) == 0);
    CHECK(record["client"] == "local");
  }
  CHECK(records[0]["outcome"] == "ok");
  CHECK_FALSE(absl::StrContains(ReadAll(hub.audit.path), "llmbox_"));  // the key printed once
}

// The box tools behind the real MCP endpoint and registry, a fake spoke service under them.
struct ToolsUnderAudit {
  ToolsUnderAudit() : log({.path = dir.File().string()}, dir.clock) {
    REQUIRE(log.Open().ok());
    auto opened = store::SqliteStore::Open((dir.scratch.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    spokes.Add("local", cluster::MakeGrpcSpokeClient(spoke.Channel()), true);
    registry = std::make_unique<boxes::BoxRegistry>(
        *db, spokes, dir.clock, boxes::RegistryOptions{.public_url = "https://hub.example.com"});
    tools = std::make_unique<boxes::BoxTools>(*registry, "", &log);
    endpoint = std::make_unique<mcp::McpEndpoint>(
        mcp::EndpointOptions{.session_key = std::string(32, 'k'),
                             .allowed_hosts = {"127.0.0.1:8080"}},
        *tools, dir.clock);
  }

  // One tools/call from `client` (the address the HTTP layer settled on); the result.
  json Call(const std::string& tool, const json& arguments, const std::string& client) {
    http::Request request = testing::ToolsCallRequest(tool, arguments);
    request.remote_address = "127.0.0.1";
    request.client_address = client;
    auto responder = std::make_shared<testing::RecordingResponder>();
    endpoint->Handle(std::move(request), responder);
    REQUIRE(responder->status == 200);
    return json::parse(responder->body)["result"];
  }

  Dir dir;
  AuditLog log;
  std::unique_ptr<store::SqliteStore> db;
  testing::FakeBoxService spoke;
  boxes::SpokeDirectory spokes;
  std::unique_ptr<boxes::BoxRegistry> registry;
  std::unique_ptr<boxes::BoxTools> tools;
  std::unique_ptr<mcp::McpEndpoint> endpoint;
};

TEST_CASE(
    "the box tools record create exec logs and destroy with caller and outcome and never "
    "the output",
    "[audit]") {
  ToolsUnderAudit hub;
  const std::string printed = "output-" + std::string(30, 'O');
  {
    std::lock_guard lock(hub.spoke.mu);
    hub.spoke.exec_response.set_exit_code(0);
    hub.spoke.exec_response.set_stdout(printed);
    hub.spoke.logs_response.set_logs("logs-" + std::string(30, 'L'));
  }
  CHECK(hub.Call("create_llmbox", {{"box_id", "a1"}}, "192.0.2.7")["isError"] == false);
  CHECK(hub.Call("exec_llmbox", {{"box_id", "a1"}, {"command", {"sh", "-c", "echo " + kAnthropic}}},
                 "192.0.2.7")["isError"] == false);
  CHECK(hub.Call("get_llmbox_logs", {{"box_id", "a1"}}, "192.0.2.7")["isError"] == false);
  CHECK(hub.Call("get_llmbox", {{"box_id", "a1"}}, "192.0.2.7")["isError"] == false);
  CHECK(hub.Call("destroy_llmbox", {{"box_id", "nope"}}, "198.51.100.9")["isError"] == true);
  CHECK(hub.Call("destroy_llmbox", {{"box_id", "a1"}}, "192.0.2.7")["isError"] == false);

  const auto records = Records(hub.dir.File());
  REQUIRE(records.size() == 5);  // get_llmbox is a read: not recorded
  const std::vector<std::string> events = {"box.create", "box.exec", "box.logs", "box.destroy",
                                           "box.destroy"};
  for (std::size_t i = 0; i < records.size(); ++i) {
    INFO(records[i].dump());
    CHECK(records[i]["event"] == events[i]);
    CHECK(records[i]["principal"] == "anonymous");
  }
  CHECK(records[0]["client"] == "192.0.2.7");
  CHECK(records[0]["box_id"] == "a1");
  CHECK(records[0]["spoke"] == "local");
  CHECK(records[0]["outcome"] == "ok");
  CHECK(records[1]["argv"] == json{"sh", "-c", "echo [REDACTED]"});
  CHECK(records[3]["client"] == "198.51.100.9");
  CHECK(records[3]["box_id"] == "nope");
  CHECK(records[3]["outcome"] == "not_found");
  CHECK(records[3].contains("error"));
  CHECK(records[4]["outcome"] == "ok");
  // Every record of a call on the caller's box names its spoke; one on no box names none.
  for (std::size_t i : {0, 1, 2, 4}) CHECK(records[i]["spoke"] == "local");
  CHECK_FALSE(records[3].contains("spoke"));
  const std::string text = ReadAll(hub.dir.File());
  CHECK_FALSE(absl::StrContains(text, printed));
  CHECK_FALSE(absl::StrContains(text, std::string(30, 'L')));
  CHECK_FALSE(absl::StrContains(text, "/auth/"));  // the activation link's token
  CheckNoSecret(text);
}

}  // namespace
}  // namespace llmbox::hub::audit
