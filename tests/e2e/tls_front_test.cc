// The hub behind the TLS front the project ships (deploy/nginx/llmbox-hub.conf), run by
// Debian's nginx on loopback with a self-signed certificate: the official SDK client over
// HTTPS, progress notifications arriving while a create runs (the event stream unbuffered),
// the activation page in Chromium, and the client address the hub acts on and logs.
//
// The test's copy of the site file is the shipped one with the values it marks EDIT filled in
// (ports, certificate) and one line added: `proxy_bind 127.0.0.5`, so that the front's own
// connections to the hub come from an address no client uses, and a hub that logged the
// proxy's address instead of the client's would show it.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "tests/e2e/hub_helpers.h"
#include "tests/rig/rig_env.h"
#include "tests/support/child_process.h"

namespace llmbox::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces the one occurrence of `from` in `text`; fails when the shipped file no longer has
// it (the test must follow the example, not drift from it).
void ReplaceOnce(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  INFO("the shipped site file has no \"" << from << "\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + from.size()) == std::string::npos);
  text.replace(at, from.size(), to);
}

std::string ShippedSite() {
  return ReadFile(fs::path(LLMBOX_SOURCE_DIR) / "deploy/nginx/llmbox-hub.conf");
}

// A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem), made as an operator
// would make one with openssl.
void MakeCertificate(const fs::path& dir) {
  ChildProcess openssl(
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
       "-keyout", (dir / "key.pem").string(), "-out", (dir / "cert.pem").string()},
      dir / "openssl.log");
  INFO(openssl.Log());
  REQUIRE(openssl.Wait(60s) == 0);
}

// The base64 SHA-256 of the certificate's public key: what Chromium's
// --ignore-certificate-errors-spki-list pins (only this certificate is accepted).
std::string SpkiPin(const fs::path& dir) {
  const fs::path out = dir / "spki.txt";
  ChildProcess pin({"sh", "-c",
                    "openssl x509 -in '" + (dir / "cert.pem").string() +
                        "' -pubkey -noout | openssl pkey -pubin -outform der | "
                        "openssl dgst -sha256 -binary | base64 > '" +
                        out.string() + "'"},
                   dir / "spki.log");
  INFO(pin.Log());
  REQUIRE(pin.Wait(60s) == 0);
  std::string text = ReadFile(out);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  REQUIRE(text.size() == 44);
  return text;
}

// nginx's main config around `site` (run as the test's user, every path in `dir`).
void WriteMainConfig(const fs::path& dir, const fs::path& site) {
  const std::string d = dir.string();
  fs::create_directories(dir / "nginx-tmp");
  std::ofstream(dir / "nginx.conf")
      << (::geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\n"
      << "pid " << d << "/nginx.pid;\n"
      << "error_log " << d << "/nginx-error.log info;\n"
      << "events { worker_connections 128; }\n"
      << "http {\n"
      << "  access_log " << d << "/nginx-access.log;\n"
      << "  client_body_temp_path " << d << "/nginx-tmp/body;\n"
      << "  proxy_temp_path " << d << "/nginx-tmp/proxy;\n"
      << "  fastcgi_temp_path " << d << "/nginx-tmp/fastcgi;\n"
      << "  uwsgi_temp_path " << d << "/nginx-tmp/uwsgi;\n"
      << "  scgi_temp_path " << d << "/nginx-tmp/scgi;\n"
      << "  include " << site.string() << ";\n"
      << "}\n";
}

bool Has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST_CASE("nginx -t accepts the shipped TLS front with only its certificate paths filled in",
          "[e2e][hub][nginx]") {
  HubDir dir("llmbox-tls-front-check");
  MakeCertificate(dir.path);
  std::string site = ShippedSite();
  ReplaceOnce(site, "/etc/ssl/llmbox/fullchain.pem", (dir.path / "cert.pem").string());
  ReplaceOnce(site, "/etc/ssl/llmbox/privkey.pem", (dir.path / "key.pem").string());
  std::ofstream(dir.path / "llmbox-hub.conf") << site;
  WriteMainConfig(dir.path, dir.path / "llmbox-hub.conf");
  ChildProcess check({"nginx", "-t", "-e", (dir.path / "nginx-error.log").string(), "-p",
                      dir.path.string(), "-c", (dir.path / "nginx.conf").string()},
                     dir.path / "nginx-t.log");
  const int exit_code = check.Wait(60s);
  INFO(check.Log());
  CHECK(exit_code == 0);
  CHECK(Has(check.Log(), "test is successful"));
}

TEST_CASE(
    "through the nginx TLS front the SDK client creates with live progress and the "
    "browser signs in while the hub logs the browser's address",
    "[e2e][hub][nginx]") {
  const auto& rig = Rig();
  HubDir dir("llmbox-tls-front");
  MakeCertificate(dir.path);
  const int https_port = UnusedLoopbackPort();
  int http_port = UnusedLoopbackPort();
  while (http_port == https_port) http_port = UnusedLoopbackPort();
  const std::string front = "https://127.0.0.1:" + std::to_string(https_port);

  // The hub on loopback behind it: its public URL is the front's, it trusts the front alone.
  WriteConfig(dir.path, rig, rig.standin_claude, "off");
  AddToHubSection(dir.path / "hub.yaml",
                  "  public_url: " + front + "\n  trusted_proxies: [127.0.0.5/32]\n");
  ChildProcess hub({LLMBOX_HUB_BIN, "serve", "--config", (dir.path / "hub.yaml").string()},
                   dir.path / "hub.log");
  const std::string hub_port = hub.WaitForLog("listening on 127\\.0\\.0\\.1:([0-9]+)");
  CHECK(hub.WaitForLog("serving MCP at (https://[^ ]+)") == front + "/");

  std::string site = ShippedSite();
  ReplaceOnce(site, "server 127.0.0.1:8080;", "server 127.0.0.1:" + hub_port + ";");
  ReplaceOnce(site, "listen 443 ssl http2;",
              "listen 127.0.0.1:" + std::to_string(https_port) + " ssl http2;");
  ReplaceOnce(site, "listen [::]:443 ssl http2;", "");
  ReplaceOnce(site, "listen 80;", "listen 127.0.0.1:" + std::to_string(http_port) + ";");
  ReplaceOnce(site, "listen [::]:80;", "");
  ReplaceOnce(site, "/etc/ssl/llmbox/fullchain.pem", (dir.path / "cert.pem").string());
  ReplaceOnce(site, "/etc/ssl/llmbox/privkey.pem", (dir.path / "key.pem").string());
  ReplaceOnce(site, "proxy_pass http://llmbox_hub;",
              "proxy_pass http://llmbox_hub;\n        proxy_bind 127.0.0.5;");
  std::ofstream(dir.path / "llmbox-hub.conf") << site;
  WriteMainConfig(dir.path, dir.path / "llmbox-hub.conf");
  ChildProcess nginx(
      {"nginx", "-e", (dir.path / "nginx-error.log").string(), "-p", dir.path.string(), "-c",
       (dir.path / "nginx.conf").string(), "-g", "daemon off;"},
      dir.path / "nginx.log");
  WaitForLoopbackPort(https_port);

  const std::string ca = "NODE_EXTRA_CA_CERTS=" + (dir.path / "cert.pem").string();
  {
    INFO("the SDK client over HTTPS: create with progress, forged forwarding headers");
    ChildProcess client(
        {"env", ca, "node", NodeScript("tls_front.mjs"), front + "/", UniqueId("tls-front")},
        dir.path / "client.log");
    const int exit_code = client.Wait(300s);
    INFO(client.Log());
    CHECK(exit_code == 0);
    CHECK(Has(client.Log(), "TLS FRONT OK"));
  }
  {
    INFO("the activation page in Chromium through the front (its certificate pinned)");
    const std::string artifacts =
        std::string(LLMBOX_SOURCE_DIR) + "/tests/e2e/artifacts/activation-tls-front";
    ChildProcess browser(
        {"env", ca,
         "LLMBOX_CHROMIUM_ARGS=--ignore-certificate-errors-spki-list=" + SpkiPin(dir.path), "node",
         NodeScript("activation_browser.mjs"), "flow", front + "/", rig.docker_sock,
         UniqueId("tls-browser"), artifacts},
        dir.path / "browser.log");
    const int exit_code = browser.Wait(300s);
    INFO(browser.Log());
    CHECK(exit_code == 0);
    CHECK(Has(browser.Log(), "BROWSER OK"));
  }
  CHECK(nginx.Stop() == 0);
  CHECK(hub.Stop() == 0);

  // The requests went through the front...
  const std::string access = ReadFile(dir.path / "nginx-access.log");
  CHECK(Has(access, "POST /auth/"));
  CHECK(Has(access, "\"POST / HTTP/1.1\""));
  // ...and the hub acted on the clients' address: not the front's, not what a client claimed.
  const std::string log = hub.Log();
  INFO("the hub's log, last 6000 bytes:\n"
       << log.substr(log.size() - std::min<size_t>(log.size(), 6000)));
  CHECK(Has(log, "a code was submitted from 127.0.0.1"));
  CHECK_FALSE(Has(log, "from 127.0.0.5"));
  CHECK_FALSE(Has(log, "203.0.113.9"));
  CHECK_FALSE(Has(log, "198.51.100.9"));
  CHECK_FALSE(Has(log, "wrong-code-tls-front"));
}

}  // namespace
}  // namespace llmbox::testing
