// The audit log of a box's life, end to end: llmbox-hub serve with its local spoke on the rig's
// engine and the stand-in Claude, an API key made and revoked with the admin command, the box
// created, sent something that is not a code by a browser behind a trusted proxy, refused a
// code and activated through its page, exec'd into (once trying to read the
// credentials the sign-in left, once with the API key in its argv), its logs read and the box
// destroyed through the official SDK client. The audit file must hold those records in order,
// with who, from where, which box and how it ended, and none of the run's secrets in any of the
// forms the other secret searches use (SecretsIn).

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "tests/e2e/hub_helpers.h"
#include "tests/integration/engine_http.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"
#include "tests/support/json_lines.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `n` random letters and digits (the code's tail: no redaction pattern knows it, so only its
// absence keeps it out).
std::string RandomTail(std::size_t n) {
  auto token = common::RandomToken(32);
  REQUIRE(token.ok());
  std::string tail;
  for (char c : *token) {
    if (std::isalnum(static_cast<unsigned char>(c)) && tail.size() < n) tail.push_back(c);
  }
  return tail;
}

// The authorize URL of a box as only its activation page (`auth_url`) shows it.
std::string AuthorizeUrlOf(const std::string& auth_url, const fs::path& log) {
  ChildProcess page({"curl", "-s", "--max-time", "30", auth_url}, log);
  REQUIRE(page.Wait(60s) == 0);
  std::smatch m;
  const std::string html = page.Log();
  REQUIRE(std::regex_search(html, m,
                            std::regex("href=\"(https://claude\\.ai/oauth/authorize[^\"]+)\"")));
  return m[1];
}

// The box's /root/.claude/.credentials.json as the engine's archive endpoint returns it (a tar:
// the file's bytes appear in it as they are); empty when there is none.
std::string CredentialsOf(const std::string& box_id) {
  EngineHttp engine(Rig().docker_sock);
  std::string filters;
  for (unsigned char c : json{{"label", {"io.llmbox.box-id=" + box_id}}}.dump()) {
    if (std::isalnum(c) || c == '-' || c == '.') {
      filters.push_back(static_cast<char>(c));
    } else {
      filters += absl::StrFormat("%%%02X", c);
    }
  }
  const HttpReply listed = engine.Call("GET", "/v1.41/containers/json?filters=" + filters);
  const json containers = json::parse(listed.body, nullptr, /*allow_exceptions=*/false);
  REQUIRE(containers.is_array());
  REQUIRE(containers.size() == 1);
  const HttpReply archive =
      engine.Call("GET", "/v1.41/containers/" + containers[0].value("Id", "") +
                             "/archive?path=%2Froot%2F.claude%2F.credentials.json");
  INFO(archive.status << " " << archive.error);
  REQUIRE(archive.status == 200);
  return archive.body;
}

TEST_CASE("the audit log of a box's life has the expected records in order and no secret",
          "[e2e][hub][audit]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-audit");
  WriteConfig(dir.path, rig, rig.standin_claude, "required");
  const std::string config = (dir.path / "hub.yaml").string();
  // Loopback is the hub's proxy here: a browser's X-Forwarded-For names the client.
  AddToHubSection(config, "  trusted_proxies: [127.0.0.1/32]\n");
  const std::string key = CreateKey(dir, "audit-e2e", false);
  HubProcess hub(config, dir.path / "hub.log");

  const std::string box_id = UniqueId("audit");
  const auto created =
      McpCall(hub.url, key, "create_llmbox", {{"box_id", box_id}}, dir.path / "create.log");
  REQUIRE(created.exit_code == 0);
  const std::string auth_url = ResultOf(created).at("auth_url").get<std::string>();
  const std::string link_token = auth_url.substr(auth_url.rfind('/') + 1);

  // The box's authorize URL, as only its page shows it.
  const std::string authorize_url = AuthorizeUrlOf(auth_url, dir.path / "page.html");
  std::smatch m;

  // From a browser behind the proxy: something that is not a code, refused by the page.
  const std::string jar = (dir.path / "cookies").string();
  const std::string forwarded = "X-Forwarded-For: 203.0.113.9";
  ChildProcess form({"curl", "-s", "--max-time", "30", "-c", jar, "-H", forwarded, auth_url},
                    dir.path / "form.html");
  REQUIRE(form.Wait(60s) == 0);
  const std::string form_html = form.Log();
  REQUIRE(std::regex_search(form_html, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  ChildProcess not_a_code(
      {"curl", "-s", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-b", jar, "-H",
       forwarded, "--data-urlencode", "csrf=" + std::string(m[1]), "--data-urlencode",
       "code=not a code at all", auth_url},
      dir.path / "not-a-code.log");
  REQUIRE(not_a_code.Wait(60s) == 0);
  CHECK(not_a_code.Log() == "400");

  // A code the box refuses, then one it takes (activate.mjs fails on the refusal: no "ready").
  const std::string bad_code = "wrong-" + RandomTail(20) + "#" + RandomTail(20);
  ChildProcess refused({"node", NodeScript("activate.mjs"), auth_url, bad_code},
                       dir.path / "activate-refused.log");
  CHECK(refused.Wait(120s) != 0);
  const std::string good_code = "standin-ok-" + RandomTail(20) + "#" + RandomTail(20);
  ChildProcess activate({"node", NodeScript("activate.mjs"), auth_url, good_code},
                        dir.path / "activate.log");
  REQUIRE(activate.Wait(120s) == 0);

  // What the sign-in left in the box: Claude's credentials, read from the container through the
  // engine (the operator's path, as a tar whose file is stored as is).
  const std::string credentials = CredentialsOf(box_id);
  std::smatch tokens;
  REQUIRE(
      std::regex_search(credentials, tokens,
                        std::regex("\"accessToken\":\"([^\"]+)\",\"refreshToken\":\"([^\"]+)\"")));
  const std::string access_token = tokens[1];
  const std::string refresh_token = tokens[2];
  // The chatbot's way: an exec that tries to read them (its output is never audited).
  REQUIRE(McpCall(hub.url, key, "exec_llmbox",
                  {{"box_id", box_id},
                   {"command", {"sh", "-c", "cat /root/.claude/.credentials.json; id -un"}}},
                  dir.path / "exec-creds.log")
              .exit_code == 0);
  // A chatbot that learned a key passes it in an argv: the audit keeps the argv, redacted.
  REQUIRE(McpCall(hub.url, key, "exec_llmbox",
                  {{"box_id", box_id}, {"command", {"echo", "Authorization:", "Bearer", key}}},
                  dir.path / "exec-key.log")
              .exit_code == 0);
  REQUIRE(McpCall(hub.url, key, "get_llmbox_logs", {{"box_id", box_id}}, dir.path / "logs.log")
              .exit_code == 0);
  REQUIRE(McpCall(hub.url, key, "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log")
              .exit_code == 0);
  ChildProcess revoke(
      {LLMBOX_HUB_BIN, "apikey", "revoke", "--name", "audit-e2e", "--config", config},
      dir.path / "revoke.log");
  REQUIRE(revoke.Wait(30s) == 0);
  CHECK(hub.process.Stop() == 0);

  const std::string audit = ReadFile(dir.path / "state" / "audit.log");
  INFO("the audit log:\n" << audit);
  const std::vector<json> records = ReadJsonLines(dir.path / "state" / "audit.log");
  for (const auto& record : records) REQUIRE(record.is_object());
  struct Expected {
    std::string event;
    std::string outcome;
    bool about_the_box;
  };
  const std::vector<Expected> expected = {{"apikey.create", "ok", false},
                                          {"box.create", "ok", true},
                                          {"box.activate_refused", "invalid_argument", true},
                                          {"box.activate_refused", "permission_denied", true},
                                          {"box.activate", "ok", true},
                                          {"box.exec", "ok", true},
                                          {"box.exec", "ok", true},
                                          {"box.logs", "ok", true},
                                          {"box.destroy", "ok", true},
                                          {"apikey.revoke", "ok", false}};
  REQUIRE(records.size() == expected.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    INFO("record " << i << ": " << r.dump());
    CHECK(r["event"] == expected[i].event);
    CHECK(r["outcome"] == expected[i].outcome);
    CHECK(std::regex_match(r["time"].get<std::string>(),
                           std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z")));
    if (expected[i].about_the_box) {
      CHECK(r["box_id"] == box_id);
      // The SDK client and the page's browser on loopback; the browser behind the proxy is
      // the one the proxy named.
      CHECK(r["client"] == (i == 2 ? "203.0.113.9" : "127.0.0.1"));
    } else {
      CHECK(r["client"] == "local");
      CHECK(r["name"] == "audit-e2e");
      CHECK(r["principal"].get<std::string>().rfind("operator:", 0) == 0);
    }
  }
  // The MCP calls are the key's; the page's are a browser's (no sign-in gating: no person),
  // on the key's box.
  for (std::size_t i : {1, 5, 6, 7, 8}) CHECK(records[i]["principal"] == "key:audit-e2e");
  for (std::size_t i : {2, 3, 4}) {
    CHECK(records[i]["principal"] == "");
    CHECK(records[i]["owner"] == "key:audit-e2e");
  }
  // Where the box is: named in every record about it (create, the page, exec, logs, destroy).
  for (std::size_t i : {1, 2, 3, 4, 5, 6, 7, 8}) CHECK(records[i]["spoke"] == "local");
  CHECK(records[2]["reason"] == "not_a_code");
  CHECK(records[3]["reason"] == "box_refused_code");
  CHECK(records[5]["argv"] == json{"sh", "-c", "cat /root/.claude/.credentials.json; id -un"});
  CHECK(records[6]["argv"] == json{"echo", "Authorization:", "Bearer", "[REDACTED]"});

  // No secret of the run, in any searched form.
  const std::map<std::string, std::string> secrets = {
      {"API key", key},
      {"refused code", bad_code},
      {"code", good_code},
      {"authorize URL", authorize_url},
      {"authorize URL query", authorize_url.substr(authorize_url.find('?') + 1)},
      {"access token", access_token},
      {"refresh token", refresh_token},
      {"activation link token", link_token}};
  const std::vector<std::string> found = SecretsIn(audit, secrets);
  INFO("found in the audit log:\n"
       << [&] {
            std::string out;
            for (const auto& f : found) out += f + "\n";
            return out;
          }());
  CHECK(found.empty());
  CHECK(audit.find("/oauth/authorize") == std::string::npos);
  CHECK(audit.find("/auth/") == std::string::npos);
}

// The box.reap records of `box_id` in the audit file, once there is at least one; fails the
// test after `limit`.
std::vector<json> WaitForReap(const fs::path& audit, const std::string& box_id,
                              std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<json> found;
    for (const json& record : ReadJsonLines(audit)) {
      if (record.is_object() && record.value("event", "") == "box.reap" &&
          record.value("box_id", "") == box_id) {
        found.push_back(record);
      }
    }
    if (!found.empty()) return found;
    std::this_thread::sleep_for(200ms);  // polling the file for the condition, not a fixed wait
  }
  FAIL("no box.reap record for " << box_id << " after " << limit.count() << " s:\n"
                                 << ReadFile(audit));
  return {};
}

TEST_CASE("a box the local spoke reaps is in the audit log once with its reason and no secret",
          "[e2e][hub][audit]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-hub-audit-reap");
  // Pending boxes expire after 10 s; the hub asks its spoke every second, so the return hook's
  // reconcile collects the removal within a round or two of it.
  WriteConfig(dir.path, rig, rig.standin_claude, "required",
              "  reaper:\n    interval: 1s\n    auth_ttl: 10s\n");
  const std::string config = (dir.path / "hub.yaml").string();
  AddToHubSection(config, "  spoke_health_interval: 1s\n");
  const std::string key = CreateKey(dir, "audit-reap", false);
  const fs::path audit_path = dir.path / "state" / "audit.log";
  std::map<std::string, std::string> secrets = {{"API key", key}};

  // Each box: created, never activated, reaped by the spoke. The second is made by a restarted
  // hub, so its record shows that the restarted hub collected again (and not the first twice).
  std::vector<std::string> box_ids;
  for (int life = 0; life < 2; ++life) {
    HubProcess hub(config, dir.path / ("hub-" + std::to_string(life) + ".log"));
    const std::string box_id = UniqueId("audit-reap");
    box_ids.push_back(box_id);
    const auto created = McpCall(hub.url, key, "create_llmbox", {{"box_id", box_id}},
                                 dir.path / ("create-" + box_id + ".log"));
    const std::string auth_url = ResultOf(created).at("auth_url").get<std::string>();
    secrets["activation link token " + box_id] = auth_url.substr(auth_url.rfind('/') + 1);
    const std::string authorize_url =
        AuthorizeUrlOf(auth_url, dir.path / ("page-" + box_id + ".html"));
    secrets["authorize URL " + box_id] = authorize_url;
    secrets["authorize URL query " + box_id] = authorize_url.substr(authorize_url.find('?') + 1);
    (void)WaitForReap(audit_path, box_id, 120s);
    CHECK(hub.process.Stop() == 0);
  }

  const std::string audit = ReadFile(audit_path);
  INFO("the audit log:\n" << audit);
  for (const std::string& box_id : box_ids) {
    const std::vector<json> reaped = WaitForReap(audit_path, box_id, 1s);
    REQUIRE(reaped.size() == 1);  // once, across the hub's restart
    const json& r = reaped[0];
    CHECK(r["principal"] == "spoke:local");
    CHECK(r["client"] == "");
    CHECK(r["spoke"] == "local");
    CHECK(r["outcome"] == "ok");
    CHECK(r["reason"] == "expired");
    CHECK(std::regex_match(r["removed_at"].get<std::string>(),
                           std::regex("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ")));
    CHECK(std::regex_match(r["seq"].get<std::string>(), std::regex("[1-9][0-9]*")));
  }
  // In order: each box's create before its reap.
  std::vector<std::string> order;
  for (const json& record : ReadJsonLines(audit_path)) {
    REQUIRE(record.is_object());
    if (record.contains("box_id")) order.push_back(record["event"].get<std::string>());
  }
  CHECK(order == std::vector<std::string>{"box.create", "box.reap", "box.create", "box.reap"});

  const std::vector<std::string> found = SecretsIn(audit, secrets);
  INFO("found in the audit log:\n"
       << [&] {
            std::string out;
            for (const auto& f : found) out += f + "\n";
            return out;
          }());
  CHECK(found.empty());
  CHECK(audit.find("/oauth/authorize") == std::string::npos);
  CHECK(audit.find("/auth/") == std::string::npos);
}

}  // namespace
}  // namespace llmbox::testing
