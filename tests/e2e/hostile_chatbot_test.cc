// A hostile chatbot against a real box: llmbox-hub serve with its local spoke on the rig's
// engine, the real box image and the real Claude binary, driven through the MCP tools alone
// with the official SDK client (tests/e2e/node/hostile_chatbot.mjs). The test plants what a
// signed-in box holds (a credentials file, a token in a process's environment) as the box's
// own identity through the engine, lets the chatbot try everything, and judges: no secret in
// any tool output in any common encoding, Claude's login undisturbed, the workspace shared
// both ways, and the activation page showing only the box's own sign-in link.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kApi = "/v1.41";

std::string RandomToken43() {
  auto token = common::RandomToken(32);
  REQUIRE(token.ok());
  return *token;
}

// `n` random lowercase letters: a secret no redaction pattern matches, so only its absence
// can keep it out of the output.
std::string RandomLetters(size_t n) {
  std::string letters;
  while (letters.size() < n) {
    for (char c : RandomToken43()) {
      if (letters.size() < n) letters.push_back(static_cast<char>('a' + (c % 26)));
    }
  }
  return letters;
}

// A command run in the box's own container through the engine's API, as the operator (or
// the spoke) would: never the chatbot's path.
struct EngineExec {
  long exit_code = -1;
  std::string output;  // stdout and stderr
};

// Fails with the engine's answer in `output` (exit code -1) when the container cannot exec.
EngineExec ExecInContainer(EngineHttp& engine, const std::string& container,
                           const std::vector<std::string>& argv,
                           const std::vector<std::string>& env = {},
                           const std::string& user = "0:0", bool detach = false) {
  const json create = {{"User", user},
                       {"Cmd", argv},
                       {"Env", env},
                       {"AttachStdout", !detach},
                       {"AttachStderr", !detach}};
  const HttpReply created =
      engine.Call("POST", std::string(kApi) + "/containers/" + container + "/exec", create.dump());
  if (created.status != 201) {
    return {-1, "exec in " + container + ": " + std::to_string(created.status) + " " +
                    created.body + created.error};
  }
  const std::string id = json::parse(created.body).at("Id").get<std::string>();
  const HttpReply started = engine.Call("POST", std::string(kApi) + "/exec/" + id + "/start",
                                        json{{"Detach", detach}, {"Tty", false}}.dump());
  if (started.status != 200) {
    return {-1,
            "exec start: " + std::to_string(started.status) + " " + started.body + started.error};
  }
  if (detach) return {0, ""};
  const HttpReply inspected = engine.Call("GET", std::string(kApi) + "/exec/" + id + "/json");
  const json state = json::parse(inspected.body, nullptr, /*allow_exceptions=*/false);
  const bool known =
      state.is_object() && state.contains("ExitCode") && state["ExitCode"].is_number();
  return {known ? state["ExitCode"].get<long>() : -1, Demultiplex(started.body)};
}

// "pid start-time state" of each process in the box's container whose command line contains
// `pattern` (the pattern travels in the environment, so the searching shell never matches).
std::string ProcessesLike(EngineHttp& engine, const std::string& container,
                          const std::string& pattern) {
  const auto found = ExecInContainer(
      engine, container,
      {"sh", "-c",
       "for d in /proc/[0-9]*; do p=${d#/proc/}; [ \"$p\" = $$ ] && continue; "
       "case \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" in *\"$PATTERN\"*) "
       "echo \"$p $(cut -d' ' -f22 $d/stat) $(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' "
       "$d/status)\";; esac; done"},
      {"PATTERN=" + pattern});
  return found.output;
}

// Keeps a copy of `file` in tests/e2e/artifacts/hostile/ (what each probe got back, for the
// record and for a failure's diagnosis).
void KeepArtifact(const fs::path& file) {
  const fs::path artifacts = fs::path(LLMBOX_SOURCE_DIR) / "tests/e2e/artifacts/hostile";
  std::error_code ec;
  fs::create_directories(artifacts, ec);
  fs::copy_file(file, artifacts / file.filename(), fs::copy_options::overwrite_existing, ec);
}

// Whether the engine says the container runs.
bool ContainerRunning(EngineHttp& engine, const std::string& container) {
  const HttpReply inspected =
      engine.Call("GET", std::string(kApi) + "/containers/" + container + "/json");
  const json info = json::parse(inspected.body, nullptr, /*allow_exceptions=*/false);
  return info.is_object() && info.contains("State") && info["State"].is_object() &&
         info["State"].value("Running", false);
}

// Whether every listed process is alive and neither stopped nor a zombie.
// The processes' identities, "pid start-time" per line, without their momentary state (a
// process that sleeps now may run at the next look; only who it is must not change).
std::string Identities(const std::string& processes) {
  std::istringstream lines(processes);
  std::string pid, start, state, out;
  while (lines >> pid >> start >> state) out += pid + " " + start + "\n";
  return out;
}

bool AllRunning(const std::string& processes) {
  std::istringstream lines(processes);
  std::string pid, start, state;
  bool any = false;
  while (lines >> pid >> start >> state) {
    any = true;
    if (state == "T" || state == "t" || state == "Z" || state == "X") return false;
  }
  return any;
}

// structuredContent of one tool call's `RESULT <json>` line (an empty object when there is
// none).
json ResultOrEmpty(const CallResult& call) {
  const size_t at = call.log.rfind("RESULT ");
  if (at == std::string::npos) return json::object();
  const size_t end = call.log.find('\n', at);
  json result = json::parse(call.log.substr(at + 7, end == std::string::npos ? end : end - at - 7),
                            nullptr, /*allow_exceptions=*/false);
  return result.is_object() ? result : json::object();
}

// Destroys the box through the hub at the end of the test, whatever happened, and removes
// from the engine whatever of the box's might still be there (its exec container and its own,
// by their labels; its network).
class BoxGuard {
 public:
  BoxGuard(const std::string& url, std::string box_id, const fs::path& dir)
      : url_(url), box_id_(std::move(box_id)), dir_(dir) {}
  ~BoxGuard() {
    (void)McpCall(url_, "", "destroy_llmbox", {{"box_id", box_id_}}, dir_ / "destroy.log");
    EngineHttp engine(Rig().docker_sock);
    // The exec container first (it holds the box's workspace volume), then the box's.
    for (const char* label : {"io.llmbox.exec-for=", "io.llmbox.box-id="}) {
      const std::string filters = json{{"label", {label + box_id_}}}.dump();
      const HttpReply listed = engine.Call(
          "GET", std::string(kApi) + "/containers/json?all=1&filters=" + UrlEscape(filters));
      const json containers = json::parse(listed.body, nullptr, false);
      if (!containers.is_array()) continue;
      for (const auto& c : containers) {
        engine.Call("DELETE",
                    std::string(kApi) + "/containers/" + c.value("Id", "") + "?force=1&v=1");
      }
    }
    engine.Call("DELETE", std::string(kApi) + "/networks/llmbox-net-" + box_id_);
  }

 private:
  static std::string UrlEscape(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
      if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.') {
        out.push_back(static_cast<char>(c));
      } else {
        out += "%" + absl::BytesToHexString(std::string(1, static_cast<char>(c)));
      }
    }
    return out;
  }
  const std::string url_;
  const std::string box_id_;
  const fs::path dir_;
};

void CollectStrings(const json& value, std::vector<std::string>* out) {
  if (value.is_string()) {
    out->push_back(value.get<std::string>());
  } else if (value.is_structured()) {
    for (const auto& item : value) CollectStrings(item, out);
  }
}

// "<probe>: <kind> (<form>)" for every secret found in any string of any tool result in the
// transcript (one JSON line per call), as printed and with whitespace removed (wrapped
// base64, spaced hex).
std::vector<std::string> LeaksInTranscript(const std::string& transcript,
                                           const std::map<std::string, std::string>& secrets) {
  std::vector<std::string> leaks;
  std::istringstream lines(transcript);
  std::string line;
  while (std::getline(lines, line)) {
    const json call = json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE(call.is_object());
    std::vector<std::string> texts;
    CollectStrings(call.value("result", json()), &texts);
    std::set<std::string> found;
    for (const auto& text : texts) {
      for (auto& leak : SecretsIn(text, secrets)) found.insert(std::move(leak));
    }
    for (const auto& leak : found) leaks.push_back(call.value("probe", "?") + ": " + leak);
  }
  return leaks;
}

// The exec probes in the transcript that got no answer from the box (no exit code: a tool
// error or a broken call), and how many exec probes there were.
std::pair<std::vector<std::string>, int> UnansweredExecs(const std::string& transcript) {
  std::vector<std::string> unanswered;
  int execs = 0;
  std::istringstream lines(transcript);
  std::string line;
  while (std::getline(lines, line)) {
    const json call = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!call.is_object() || call.value("tool", "") != "exec_llmbox") continue;
    ++execs;
    const json result = call.value("result", json::object());
    const json answer = result.is_object() ? result.value("structuredContent", json()) : json();
    if (!answer.is_object() || !answer.contains("exit_code")) {
      unanswered.push_back(call.value("probe", "?") + ": " + result.dump().substr(0, 300));
    }
  }
  return {unanswered, execs};
}

// The transcript's probe summaries and the node judge's findings, for the test's messages.
std::string Summary(const std::string& log) {
  std::string out;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (absl::StartsWith(line, "PROBE ") || absl::StartsWith(line, "LEAK")) {
      out += line.substr(0, 600) + "\n";
    }
  }
  return out;
}

// The hub.yaml of a hub on the rig's engine 1 with the real Claude binary, no API keys.
fs::path RealClaudeConfig(const fs::path& dir) {
  WriteConfig(dir, Rig(), Rig().claude_bin, "off");
  return dir / "hub.yaml";
}

// llmbox-hub serve in its own folder.
struct Hub {
  explicit Hub(const std::string& name)
      : dir(name), process(RealClaudeConfig(dir.path).string(), dir.path / "hub.log") {}
  HubDir dir;
  HubProcess process;
};

// Destroys the box through the hub and stops the hub, which must have survived everything the
// box printed (the BoxGuard's cleanup then finds nothing left).
void DestroyAndStop(Hub& hub, const std::string& box_id) {
  const auto destroyed = McpCall(hub.process.url, "", "destroy_llmbox", {{"box_id", box_id}},
                                 hub.dir.path / "destroyed.log");
  INFO(destroyed.log);
  CHECK(destroyed.exit_code == 0);
  CHECK(hub.process.process.Stop() == 0);
}

TEST_CASE(
    "a hostile chatbot with only the MCP tools gets no secret of the box and leaves "
    "Claude undisturbed",
    "[e2e][hub]") {
  const auto& rig = Rig();
  Hub hub("llmbox-hostile-secrets");
  const fs::path& dir = hub.dir.path;
  const std::string& url = hub.process.url;
  const std::string box_id = UniqueId("hostile");
  BoxGuard guard(url, box_id, dir);
  const auto created = McpCall(url, "", "create_llmbox", {{"box_id", box_id}}, dir / "create.log");
  INFO(created.log);
  REQUIRE(created.exit_code == 0);
  REQUIRE(ResultOrEmpty(created).value("status", "") == "pending");

  // What a signed-in box holds, planted as the box's own identity (root in its container):
  // a credentials file and a long-lived process with a token in its environment. A different
  // secret per kind says which one leaked; the letters match no redaction pattern.
  const std::map<std::string, std::string> secrets = {
      {"credentials access token", "sk-ant-oat01-" + RandomToken43()},
      {"credentials refresh token", "sk-ant-ort01-" + RandomToken43()},
      {"credentials letters", RandomLetters(40)},
      {"environment token", "sk-ant-oat01-" + RandomToken43()},
      {"environment letters", RandomLetters(40)},
  };
  const json credentials = {
      {"claudeAiOauth",
       {{"accessToken", secrets.at("credentials access token")},
        {"refreshToken", secrets.at("credentials refresh token")},
        {"expiresAt", 4102444800000},
        {"scopes", {"user:inference", "user:profile", "user:sessions:claude_code"}},
        {"subscriptionType", "max"},
        {"organizationName", secrets.at("credentials letters")}}}};
  EngineHttp engine(rig.docker_sock);
  const std::string container = "llmbox-pending-" + box_id;
  const auto planted =
      ExecInContainer(engine, container,
                      {"sh", "-c",
                       "umask 077 && mkdir -p /root/.claude && printf %s \"$CREDENTIALS\" > "
                       "/root/.claude/.credentials.json && ls -ln /root/.claude/.credentials.json"},
                      {"CREDENTIALS=" + credentials.dump()});
  INFO(planted.output);
  REQUIRE(planted.exit_code == 0);
  const auto holder =
      ExecInContainer(engine, container, {"sleep", "86399"},
                      {"CLAUDE_CODE_OAUTH_TOKEN=" + secrets.at("environment token"),
                       "LLMBOX_HOSTILE_CANARY=" + secrets.at("environment letters")},
                      "0:0", /*detach=*/true);
  INFO(holder.output);
  REQUIRE(holder.exit_code == 0);
  std::string holder_before;
  for (int i = 0; i < 50 && holder_before.empty(); ++i) {
    holder_before = ProcessesLike(engine, container, "sleep 86399");
  }
  const std::string login_before = ProcessesLike(engine, container, "auth login");
  INFO("claude auth login before the probes: " << login_before);
  INFO("the token holder before the probes: " << holder_before);
  REQUIRE(AllRunning(login_before));
  REQUIRE(AllRunning(holder_before));

  const fs::path transcript = dir / "transcript.jsonl";
  const fs::path secrets_file = dir / "secrets.json";
  std::ofstream(secrets_file) << json(secrets).dump();
  ChildProcess chatbot({"node", NodeScript("hostile_chatbot.mjs"), "probes", url + "/", box_id,
                        transcript.string(), secrets_file.string()},
                       dir / "chatbot.log");
  const int chatbot_exit = chatbot.Wait(600s);
  const std::string log = chatbot.Log();
  KeepArtifact(dir / "chatbot.log");
  KeepArtifact(transcript);
  {
    INFO("the chatbot's log:\n" << log.substr(0, 20000));
    REQUIRE(chatbot_exit == 0);
  }

  // Every probe ran and reached the box (so no leak is missing for want of trying).
  const std::string calls = ReadFileOrEmpty(transcript);
  if (std::getenv("HOSTILE_PROBES") == nullptr) {
    const auto [unanswered, execs] = UnansweredExecs(calls);
    std::string list;
    for (const auto& probe : unanswered) list += probe + "\n";
    INFO("exec probes without an answer from the box:\n" << list);
    CHECK(execs >= 45);
    CHECK(unanswered.empty());
  }

  // No secret in any tool output, in any of the searched forms; the script's own decoding
  // (base64 inside gzip, od and xxd dumps) agrees.
  const std::vector<std::string> leaks = LeaksInTranscript(calls, secrets);
  {
    std::string leak_list;
    for (const auto& leak : leaks) leak_list += leak + "\n";
    INFO("what each probe got back:\n" << Summary(log));
    INFO("leaks:\n" << leak_list);
    CHECK(leaks.empty());
    CHECK(absl::StrContains(log, "\nLEAKS 0\n"));
  }

  // Claude's login runs on, untouched (same process, neither stopped nor gone), and so does
  // the process holding the token; the box is still waiting for its code.
  const std::string login_after = ProcessesLike(engine, container, "auth login");
  INFO("claude auth login after the probes: " << login_after);
  CHECK(Identities(login_after) == Identities(login_before));
  CHECK(AllRunning(login_after));
  const std::string holder_after = ProcessesLike(engine, container, "sleep 86399");
  INFO("the token holder after the probes: " << holder_after);
  CHECK(Identities(holder_after) == Identities(holder_before));
  CHECK(AllRunning(holder_after));
  const auto got = McpCall(url, "", "get_llmbox", {{"box_id", box_id}}, dir / "get.log");
  INFO(got.log);
  CHECK(ResultOrEmpty(got).value("status", "") == "pending");
  CHECK(ContainerRunning(engine, container));

  // The workspace is shared both ways: what the exec user writes, Claude's identity (its
  // uid, gid and umask, read from its login process) reads and changes, and the other way.
  const auto exec_writes = McpCall(url, "", "exec_llmbox",
                                   {{"box_id", box_id},
                                    {"command",
                                     {"sh", "-c",
                                      "echo from-exec > /workspace/hostile-from-exec.txt && "
                                      "ls -ln /workspace/hostile-from-exec.txt"}}},
                                   dir / "exec-writes.log");
  INFO(exec_writes.log);
  CHECK(ResultOrEmpty(exec_writes).value("exit_code", -1) == 0);
  // Claude's identity (defaults: root, umask 0022, when its login is gone).
  std::string uid = "0", gid = "0", umask = "0022";
  if (const std::string pid = login_after.substr(0, login_after.find(' '));
      !pid.empty() && absl::ascii_isdigit(static_cast<unsigned char>(pid[0]))) {
    const auto identity = ExecInContainer(
        engine, container,
        {"sh", "-c",
         "for k in Uid Gid Umask; do sed -n \"s/^$k:[[:space:]]*\\([0-9]*\\).*/\\1/p\" "
         "/proc/" +
             pid + "/status; done"});
    std::istringstream values(identity.output);
    std::string u, g, m;
    if (values >> u >> g >> m) {
      uid = u;
      gid = g;
      umask = m;
    }
  }
  const auto box_side = ExecInContainer(
      engine, container,
      {"sh", "-c",
       "umask " + umask +
           " && cat /workspace/hostile-from-exec.txt && echo box-appended >> "
           "/workspace/hostile-from-exec.txt && echo from-box > /workspace/hostile-from-box.txt"},
      {}, uid + ":" + gid);
  INFO("as Claude's identity " << uid << ":" << gid << " umask " << umask << ": "
                               << box_side.output);
  CHECK(box_side.exit_code == 0);
  CHECK(box_side.output == "from-exec\n");
  const auto exec_reads =
      McpCall(url, "", "exec_llmbox",
              {{"box_id", box_id},
               {"command",
                {"sh", "-c",
                 "echo exec-appended >> /workspace/hostile-from-box.txt && cat "
                 "/workspace/hostile-from-exec.txt /workspace/hostile-from-box.txt"}}},
              dir / "exec-reads.log");
  INFO(exec_reads.log);
  const json read_back = ResultOrEmpty(exec_reads);
  CHECK(read_back.value("exit_code", -1) == 0);
  CHECK(read_back.value("stdout", "") == "from-exec\nbox-appended\nfrom-box\nexec-appended\n");
  DestroyAndStop(hub, box_id);
}

TEST_CASE(
    "a forged authorize link written to every console the chatbot can open never "
    "reaches the activation page",
    "[e2e][hub]") {
  const auto& rig = Rig();
  Hub hub("llmbox-hostile-spoof");
  const fs::path& dir = hub.dir.path;
  const std::string& url = hub.process.url;
  const std::string box_id = UniqueId("hostile");
  BoxGuard guard(url, box_id, dir);
  const auto created = McpCall(url, "", "create_llmbox", {{"box_id", box_id}}, dir / "create.log");
  INFO(created.log);
  REQUIRE(created.exit_code == 0);
  const std::string activation_url = ResultOrEmpty(created).value("auth_url", "");
  REQUIRE(!activation_url.empty());

  ChildProcess chatbot(
      {"node", NodeScript("hostile_chatbot.mjs"), "spoof", url + "/", box_id, activation_url},
      dir / "spoof.log");
  const int chatbot_exit = chatbot.Wait(300s);
  const std::string log = chatbot.Log();
  KeepArtifact(dir / "spoof.log");
  INFO("what the chatbot did:\n" << Summary(log));
  REQUIRE(chatbot_exit == 0);
  const size_t at = log.find("SPOOF ");
  REQUIRE(at != std::string::npos);
  const json spoof = json::parse(log.substr(at + 6, log.find('\n', at) - at - 6));
  const std::string first = spoof.value("first", "");
  const std::string after = spoof.value("after", "");
  const std::string html = spoof.value("html", "");
  const std::string notice = spoof.value("notice", "");
  INFO("the sign-in link before: " << first);
  INFO("the sign-in link after the refused code: " << after);
  INFO("the page's notice: " << notice);

  CHECK(absl::StartsWith(first, "https://claude."));
  CHECK(absl::StrContains(first, "oauth/authorize?"));
  CHECK(spoof.value("posted", 0) == 303);
  // The real binary refused the code, in its own words.
  CHECK(absl::StrContains(notice, "Couldn't log in"));
  // A new link, the box's own: not the first, not forged, printed by the box's login as a
  // hyperlink on its console (the engine's record of it).
  CHECK(!after.empty());
  CHECK(after != first);
  for (const auto& forged : spoof.at("forged")) CHECK(after != forged.get<std::string>());
  EngineHttp engine(rig.docker_sock);
  const HttpReply console = engine.Call(
      "GET", std::string(kApi) + "/containers/llmbox-pending-" + box_id + "/logs?stdout=1");
  CHECK(absl::StrContains(console.body, "\x1b]8;;" + first + "\a"));
  CHECK(absl::StrContains(console.body, "\x1b]8;;" + after + "\a"));
  // Nothing forged on the page: neither a link nor an error text.
  for (const auto& marker : spoof.at("markers")) {
    const std::string m = marker.get<std::string>();
    INFO("forged part " << m);
    CHECK(!absl::StrContains(html, m));
  }
  DestroyAndStop(hub, box_id);
}

}  // namespace
}  // namespace llmbox::testing
