// The hub behind a reverse proxy, as a process: which address it acts on when a request carries
// a forged X-Forwarded-For, with and without hub.trusted_proxies, shown through the activation
// page's per-address limit and the hub's own log line. Every line the hub logged is then
// searched for the box's activation token.
//
// The test itself plays the proxy (or the forger): its requests come from 127.0.0.1, which is
// a trusted proxy in one hub's config and a plain client in the other's.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <curl/curl.h>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Reply {
  long status = 0;
  std::string headers;
  std::string body;
};

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One request with libcurl; `x_forwarded_for` is sent when not empty.
Reply Request(const std::string& method, const std::string& url, const std::string& cookie,
              const std::string& x_forwarded_for, const std::string& body = "") {
  CURL* curl = curl_easy_init();
  REQUIRE(curl != nullptr);
  Reply reply;
  curl_slist* headers = nullptr;
  if (!x_forwarded_for.empty()) {
    headers = curl_slist_append(headers, ("X-Forwarded-For: " + x_forwarded_for).c_str());
  }
  if (!cookie.empty()) headers = curl_slist_append(headers, ("Cookie: " + cookie).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply.headers);
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  INFO(curl_easy_strerror(code));
  REQUIRE(code == CURLE_OK);
  return reply;
}

// A hub whose config trusts 127.0.0.1 as a proxy or not, with a per-address limit of 2 code
// submissions, and one box on it (destroyed at the end, whatever happens).
struct ProxiedHub {
  explicit ProxiedHub(bool trust_loopback)
      : dir(trust_loopback ? "llmbox-proxy-trusted" : "llmbox-proxy-untrusted") {
    const auto& rig = Rig();
    WriteConfig(dir.path, rig, rig.standin_claude, "off", "",
                "activation:\n  max_attempts_per_address: 2\n  max_attempts_per_token: 100\n");
    std::string yaml;
    {
      std::ifstream in(dir.path / "hub.yaml");
      std::stringstream text;
      text << in.rdbuf();
      yaml = text.str();
    }
    if (trust_loopback) {
      const std::string anchor = "  state_dir: state\n";
      REQUIRE(yaml.find(anchor) != std::string::npos);
      yaml.replace(yaml.find(anchor), anchor.size(),
                   anchor + "  trusted_proxies: [127.0.0.1/32]\n");
      std::ofstream(dir.path / "hub.yaml") << yaml;
    }
    hub = std::make_unique<HubProcess>((dir.path / "hub.yaml").string(), dir.path / "hub.log");
    box_id = UniqueId("proxy");
    const auto created =
        McpCall(hub->url, "", "create_llmbox", {{"box_id", box_id}}, dir.path / "create.log");
    INFO(created.log);
    REQUIRE(created.exit_code == 0);
    std::smatch m;
    REQUIRE(std::regex_search(created.log, m, std::regex("\"auth_url\":\"([^\"]+)\"")));
    const std::string auth_url = m[1];
    token = auth_url.substr(auth_url.rfind('/') + 1);
    REQUIRE(token.size() == 43);
  }

  ~ProxiedHub() {
    if (hub) {
      McpCall(hub->url, "", "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log");
      hub->process.Stop();
    }
  }

  std::string Page() const { return hub->url + "/auth/" + token; }

  // Waits until the box takes a code again (or is `state`).
  void WaitFor(const std::string& state) {
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = Request("GET", Page() + "/status", "", "").body;
      if (last == "{\"state\":\"" + state + "\"}") return;
      std::this_thread::sleep_for(200ms);
    }
    FAIL("the box did not become " << state << "; last status " << last);
  }

  // Opens the page and submits `code`, both with `x_forwarded_for`; the POST's status.
  long Submit(const std::string& x_forwarded_for, const std::string& code) {
    WaitFor("pending");
    const Reply page = Request("GET", Page(), "", x_forwarded_for);
    REQUIRE(page.status == 200);
    std::smatch m;
    REQUIRE(std::regex_search(page.headers, m, std::regex("(llmbox_browser=[A-Za-z0-9_-]+)")));
    const std::string cookie = m[1];
    REQUIRE(std::regex_search(page.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
    const std::string csrf = m[1];
    return Request("POST", Page(), cookie, x_forwarded_for, "csrf=" + csrf + "&code=" + code)
        .status;
  }

  // Stops the hub and returns every line it logged.
  std::vector<std::string> StopAndReadLog() {
    McpCall(hub->url, "", "destroy_llmbox", {{"box_id", box_id}}, dir.path / "destroy.log");
    CHECK(hub->process.Stop() == 0);
    std::istringstream log(hub->process.Log());
    hub.reset();
    std::vector<std::string> lines;
    for (std::string line; std::getline(log, line);) lines.push_back(line);
    return lines;
  }

  HubDir dir;
  std::unique_ptr<HubProcess> hub;
  std::string box_id;
  std::string token;
};

bool AnyLineHas(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& line : lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

// The demand: no line the hub wrote holds the activation token.
void CheckNoLineHoldsToken(const std::vector<std::string>& lines, const std::string& token) {
  REQUIRE_FALSE(lines.empty());
  for (const auto& line : lines) {
    INFO(line);
    CHECK(line.find(token) == std::string::npos);
  }
}

TEST_CASE("from an untrusted peer a forged X-Forwarded-For changes nothing the hub limits or logs",
          "[e2e][hub][proxy]") {
  ProxiedHub proxied(/*trust_loopback=*/false);
  // Three "different" clients by their headers, one address in truth: the third is over the
  // per-address limit of 2.
  CHECK(proxied.Submit("203.0.113.1", "wrong-code-1") == 303);
  CHECK(proxied.Submit("203.0.113.2", "wrong-code-2") == 303);
  CHECK(proxied.Submit("203.0.113.3", "wrong-code-3") == 429);
  const std::string token = proxied.token;
  const auto lines = proxied.StopAndReadLog();
  CHECK(AnyLineHas(lines, "a code was submitted from 127.0.0.1"));
  CHECK(AnyLineHas(lines, "a code from 127.0.0.1 was refused"));
  CHECK_FALSE(AnyLineHas(lines, "203.0.113."));
  CheckNoLineHoldsToken(lines, token);
}

TEST_CASE("from a trusted proxy X-Forwarded-For names the client the hub limits and logs",
          "[e2e][hub][proxy]") {
  ProxiedHub proxied(/*trust_loopback=*/true);
  // Each forwarded client has a limit of its own...
  CHECK(proxied.Submit("203.0.113.1", "wrong-code-1") == 303);
  CHECK(proxied.Submit("198.51.100.7, 203.0.113.2", "wrong-code-2") == 303);
  CHECK(proxied.Submit("203.0.113.3", "wrong-code-3") == 303);
  CHECK(proxied.Submit("203.0.113.1", "wrong-code-4") == 303);
  // ...and it is spent by that client alone.
  CHECK(proxied.Submit("203.0.113.1", "wrong-code-5") == 429);
  // The success path too: another client signs the box in.
  CHECK(proxied.Submit("203.0.113.50", "standin-ok-proxy-1234") == 303);
  proxied.WaitFor("ready");
  const std::string token = proxied.token;
  const auto lines = proxied.StopAndReadLog();
  CHECK(AnyLineHas(lines, "a code was submitted from 203.0.113.1"));
  // The client the trusted proxy saw, not the address the client claimed before it.
  CHECK(AnyLineHas(lines, "a code was submitted from 203.0.113.2"));
  CHECK_FALSE(AnyLineHas(lines, "198.51.100.7"));
  CHECK(AnyLineHas(lines, "a code from 203.0.113.1 was refused"));
  CHECK(AnyLineHas(lines, "a code was submitted from 203.0.113.50"));
  CHECK_FALSE(AnyLineHas(lines, "submitted from 127.0.0.1"));
  CHECK_FALSE(AnyLineHas(lines, "standin-ok-proxy-1234"));
  CheckNoLineHoldsToken(lines, token);
}

}  // namespace
}  // namespace llmbox::testing
