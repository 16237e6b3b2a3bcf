#include "tests/e2e/hub_helpers.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/secrets.h"

namespace llmbox::testing {

namespace fs = std::filesystem;

std::string UniqueId(const std::string& prefix) {
  auto token = common::RandomToken(6);
  REQUIRE(token.ok());
  return prefix + "-" + common::HexEncode(*token).substr(0, 10);
}

HubDir::HubDir(const std::string& name)
    : path(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
  fs::remove_all(path);
  fs::create_directories(path);
}

namespace {

bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Activation tokens are 43 base64url characters after "/auth/" in a link.
void CollectTokens(const std::string& text, std::set<std::string>* tokens) {
  constexpr std::string_view kAuth = "/auth/";
  for (size_t at = text.find(kAuth); at != std::string::npos; at = text.find(kAuth, at + 1)) {
    size_t end = at + kAuth.size();
    while (end < text.size() && IsBase64Url(text[end])) ++end;
    if (end - at - kAuth.size() == 43) tokens->insert(text.substr(at + kAuth.size(), 43));
  }
}

std::string ReadLog(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text;
  text.resize(std::min<std::uintmax_t>(fs::file_size(file), 64u << 20));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

}  // namespace

// Every activation link any log of the test holds (the clients' logs have them: create_llmbox
// answers with one) must be absent from the logs of the hub and spoke processes: no log line of
// theirs may hold a token.
void CheckNoTokenInServerLogs(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> logs;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".log") logs.push_back(it->path());
  }
  std::set<std::string> tokens;
  for (const auto& log : logs) CollectTokens(ReadLog(log), &tokens);
  for (const auto& log : logs) {
    const std::string name = log.filename().string();
    if (name.rfind("hub", 0) != 0 && name.rfind("spoke", 0) != 0) continue;
    const std::string text = ReadLog(log);
    for (const auto& token : tokens) {
      if (text.find(token) != std::string::npos) {
        FAIL_CHECK("the server log " << log.string() << " holds an activation token");
      }
    }
  }
}

HubDir::~HubDir() {
  if (std::uncaught_exceptions() == 0) CheckNoTokenInServerLogs(path);
  // LLMBOX_E2E_KEEP=1 keeps the folder (logs, configs) to look into a failure by hand.
  if (const char* keep = std::getenv("LLMBOX_E2E_KEEP"); keep != nullptr && *keep == '1') return;
  std::error_code ec;
  fs::remove_all(path, ec);
}

void WriteConfig(const fs::path& dir, const RigEnv& rig, const std::string& claude_bin,
                 const std::string& api_keys, const std::string& local_spoke_extra,
                 const std::string& extra_yaml, const std::string& listen) {
  std::ofstream(dir / "hub.yaml") << "hub:\n  listen: " << listen << "\n  state_dir: state\n"
                                  << "auth:\n  api_keys: " << api_keys << "\n"
                                  << "local_spoke:\n"
                                  << "  docker:\n    socket: " << rig.docker_sock << "\n"
                                  << "  boxes:\n    default_image: " << rig.box_image
                                  << "\n    claude_bin: " << claude_bin
                                  << "\n    memory: 1GiB\n    stop_grace: 1s\n"
                                  << local_spoke_extra << "log:\n  level: debug\n  format: json\n"
                                  << extra_yaml;
}

namespace {

// 127.0.0.1:`port`, to bind or connect a TCP socket to.
sockaddr_in LoopbackAddress(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

}  // namespace

void WaitForLoopbackPort(int port, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    const sockaddr_in address = LoopbackAddress(port);
    const bool up = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    if (up) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("nothing listens on 127.0.0.1:" << port << " after " << limit.count() << " s");
}

int UnusedLoopbackPort() {
  std::random_device random;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = 24000 + static_cast<int>(random() % 8000);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    const sockaddr_in address = LoopbackAddress(port);
    const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    if (free) return port;
  }
  FAIL("no unused port on 127.0.0.1 in 24000..31999 after 100 tries");
  return 0;
}

std::string NodeScript(const std::string& name) {
  return std::string(LLMBOX_E2E_NODE_DIR) + "/" + name;
}

HubProcess::HubProcess(const std::string& config, const fs::path& log)
    : process({LLMBOX_HUB_BIN, "serve", "--config", config}, log),
      url(process.WaitForLog("serving MCP at (http://127\\.0\\.0\\.1:[0-9]+)/")) {}

CallResult McpCall(const std::string& url, const std::string& key, const std::string& tool,
                   const nlohmann::json& arguments, const fs::path& log) {
  ChildProcess call({"node", NodeScript("mcp_call.mjs"), url + "/", key, tool, arguments.dump()},
                    log);
  const int exit_code = call.Wait(std::chrono::seconds(180));
  return {exit_code, call.Log()};
}

void AddToHubSection(const fs::path& config, const std::string& lines) {
  std::stringstream text;
  text << std::ifstream(config).rdbuf();
  std::string yaml = text.str();
  REQUIRE(yaml.rfind("hub:\n", 0) == 0);
  yaml.insert(std::string("hub:\n").size(), lines);
  std::ofstream(config) << yaml;
}

nlohmann::json ResultOf(const CallResult& call) {
  INFO(call.log.substr(0, 4096));
  REQUIRE(call.exit_code == 0);
  const size_t at = call.log.rfind("RESULT ");
  REQUIRE(at != std::string::npos);
  const size_t end = call.log.find('\n', at);
  nlohmann::json result;
  REQUIRE_NOTHROW(result = nlohmann::json::parse(
                      call.log.substr(at + 7, end == std::string::npos ? end : end - at - 7)));
  return result;
}

std::string ErrorOf(const CallResult& call) {
  INFO(call.log.substr(0, 4096));
  REQUIRE(call.exit_code == 1);
  const size_t at = call.log.rfind("ERROR ");
  REQUIRE(at != std::string::npos);
  const size_t end = call.log.find('\n', at);
  nlohmann::json content;
  REQUIRE_NOTHROW(content = nlohmann::json::parse(
                      call.log.substr(at + 6, end == std::string::npos ? end : end - at - 6)));
  REQUIRE(content.size() == 1);
  return content[0]["text"].get<std::string>();
}

std::string CreateKey(const HubDir& dir, const std::string& name, bool admin) {
  std::vector<std::string> argv = {LLMBOX_HUB_BIN, "apikey", "create", "--name", name};
  if (admin) argv.push_back("--admin");
  argv.push_back("--config");
  argv.push_back((dir.path / "hub.yaml").string());
  ChildProcess create(argv, dir.path / ("apikey-" + name + ".log"));
  REQUIRE(create.Wait(std::chrono::seconds(30)) == 0);
  return create.WaitForLog("(llmbox_[A-Za-z0-9_-]{40,})");
}

int HttpStatusOfGet(const std::string& url, const fs::path& log) {
  ChildProcess get({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url},
                   log);
  if (get.Wait(std::chrono::seconds(30)) != 0) return 0;
  return std::atoi(get.Log().c_str());
}

std::vector<std::pair<std::string, std::string>> SecretForms(const std::string& secret) {
  std::vector<std::pair<std::string, std::string>> forms = {
      {"plain", secret},
      {"reversed", std::string(secret.rbegin(), secret.rend())},
      {"hex", absl::BytesToHexString(secret)},
      {"HEX", absl::AsciiStrToUpper(absl::BytesToHexString(secret))},
  };
  for (size_t prefix = 0; prefix < 3; ++prefix) {
    const std::string encoded = absl::Base64Escape(std::string(prefix, '\0') + secret);
    const size_t first_group = prefix == 0 ? 0 : 1;
    const size_t whole_groups = (prefix + secret.size()) / 3;
    const std::string core = encoded.substr(first_group * 4, (whole_groups - first_group) * 4);
    const std::string at = " at byte " + std::to_string(prefix);
    forms.emplace_back("base64" + at, core);
    forms.emplace_back("base64url" + at, absl::StrReplaceAll(core, {{"+", "-"}, {"/", "_"}}));
  }
  return forms;
}

std::vector<std::string> SecretsIn(const std::string& text,
                                   const std::map<std::string, std::string>& secrets) {
  std::string joined;
  for (char c : text) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) joined.push_back(c);
  }
  std::vector<std::string> found;
  for (const auto& [kind, secret] : secrets) {
    for (const auto& [form, needle] : SecretForms(secret)) {
      if (absl::StrContains(text, needle) || absl::StrContains(joined, needle)) {
        found.push_back(kind + " (" + form + ")");
      }
    }
  }
  return found;
}

}  // namespace llmbox::testing
