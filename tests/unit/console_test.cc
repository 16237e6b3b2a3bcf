#include "spoke/box/console.h"

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::spoke::box {
namespace {

std::string Recording(const std::string& name) {
  std::ifstream in(std::string(LLMBOX_SOURCE_DIR) + "/tests/rig/recordings/" + name,
                   std::ios::binary);
  REQUIRE(in);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The hyperlink target in a recording, found independently of the scanner.
std::string LinkTarget(const std::string& raw) {
  const size_t start = raw.find("\x1b]8;;") + 5;
  return raw.substr(start, raw.find('\x07', start) - start);
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) {
    s.replace(at, from.size(), to);
  }
  return s;
}

TEST_CASE("the authorize URL is captured from real Claude Code output, both URL forms",
          "[console]") {
  for (const char* name :
       {"claude-2.1.330-auth-login-bad-code.tty", "claude-2.1.328-auth-login-bad-code.tty"}) {
    INFO(name);
    const std::string raw = Recording(name);
    const std::string expected = LinkTarget(raw);
    REQUIRE(expected.rfind("https://claude.", 0) == 0);
    ConsoleScanner whole;
    whole.Feed(raw);
    CHECK(whole.AuthorizeUrl() == expected);
    // Fed byte by byte, escape sequences arrive split at every point.
    ConsoleScanner bytes;
    for (char c : raw) bytes.Feed(std::string_view(&c, 1));
    CHECK(bytes.AuthorizeUrl() == expected);
    CHECK(bytes.Text() == whole.Text());
  }
}

TEST_CASE("the short and the long form are told apart from other claude URLs", "[console]") {
  CHECK(ConsoleScanner().AuthorizeUrl() == std::nullopt);
  const std::string raw = Recording("claude-2.1.330-auth-login-bad-code.tty");
  CHECK(LinkTarget(raw).rfind("https://claude.ai/oauth/authorize?z-", 0) == 0);
  const std::string long_raw = Recording("claude-2.1.328-auth-login-bad-code.tty");
  const std::string long_url = LinkTarget(long_raw);
  CHECK(long_url.rfind("https://claude.com/cai/oauth/authorize?code=true&", 0) == 0);
  CHECK(long_url.find("&state=") != std::string::npos);

  ConsoleScanner other;
  other.Feed(
      "See https://claude.ai/code for sessions\nand "
      "https://claude.com/cai/oauth/authorize?code=true\n");
  CHECK(other.AuthorizeUrl() == std::nullopt);
}

TEST_CASE("an OSC-8 link ended by ESC backslash is read like one ended by BEL", "[console]") {
  const std::string raw = Recording("claude-2.1.328-auth-login-bad-code.tty");
  const std::string st_form = ReplaceAll(raw, "\x07", "\x1b\\");
  ConsoleScanner scanner;
  scanner.Feed(st_form);
  CHECK(scanner.AuthorizeUrl() == LinkTarget(raw));
  CHECK(scanner.Text().find("\x1b") == std::string::npos);
}

TEST_CASE("a URL in plain text wrapped by a narrow terminal is joined back", "[console]") {
  const std::string url = LinkTarget(Recording("claude-2.1.328-auth-login-bad-code.tty"));
  std::string wrapped = "If the browser didn't open, visit: ";
  for (size_t at = 0; at < url.size(); at += 80) wrapped += url.substr(at, 80) + "\r\n";
  wrapped += "Paste code here if prompted > ";
  ConsoleScanner scanner;
  scanner.Feed(wrapped);
  CHECK(scanner.AuthorizeUrl() == url);
}

TEST_CASE("a URL still being printed is not taken before it ends", "[console]") {
  const std::string url = LinkTarget(Recording("claude-2.1.330-auth-login-bad-code.tty"));
  ConsoleScanner scanner;
  scanner.Feed("visit:\r\n" + url.substr(0, url.size() - 5));
  CHECK(scanner.AuthorizeUrl() == std::nullopt);
  scanner.Feed(url.substr(url.size() - 5));
  CHECK(scanner.AuthorizeUrl() == std::nullopt);  // the last character may not be the last
  scanner.Feed("\r\n");
  CHECK(scanner.AuthorizeUrl() == url);
}

TEST_CASE("the real bad-code error is found after the code was written", "[console]") {
  for (const char* name :
       {"claude-2.1.330-auth-login-bad-code.tty", "claude-2.1.328-auth-login-bad-code.tty"}) {
    const std::string raw = Recording(name);
    const size_t prompt = raw.find("Paste code here if prompted > ");
    ConsoleScanner scanner;
    scanner.Feed(raw.substr(0, prompt + 30));
    const size_t submitted = scanner.Position();
    CHECK(scanner.LoginFailure(submitted) == std::nullopt);
    scanner.Feed(raw.substr(prompt + 30));
    CHECK(scanner.LoginFailure(submitted) ==
          "Couldn't log in: getaddrinfo ENOTFOUND platform.claude.com");
    CHECK(scanner.SessionUrl(submitted) == std::nullopt);
  }
  ConsoleScanner rc;
  rc.Feed(Recording("claude-2.1.330-remote-control-not-logged-in.tty"));
  CHECK(rc.LoginFailure() == "Error: You must be logged in to use Remote Control.");
}

TEST_CASE("the session URL is one printed after the code, not the authorize URL", "[console]") {
  ConsoleScanner scanner;
  scanner.Feed(Recording("claude-2.1.330-auth-login-bad-code.tty"));
  const size_t submitted = scanner.Position();
  scanner.Feed(
      "Login successful.\r\n\x1b[?25hRemote Control ready\r\nContinue in claude.ai/code: "
      "\x1b]8;;https://claude.ai/code/session_01AbCdEf\x1b\\\x1b[94m"
      "https://claude.ai/code/session_01AbCdEf\x1b[39m\x1b]8;;\x1b\\\r\n");
  CHECK(scanner.SessionUrl(submitted) == "https://claude.ai/code/session_01AbCdEf");
  // The same from plain text, without a hyperlink.
  ConsoleScanner plain;
  plain.Feed("Ready: https://claude.com/code/session_02Xy?x=1\r\n");
  CHECK(plain.SessionUrl() == "https://claude.com/code/session_02Xy?x=1");
}

TEST_CASE("terminal noise is stripped and text kept", "[console]") {
  CHECK(StripTerminal("\x1b[0m\x1b[31mError\x1b[0m\r\n") == "Error\n");
  CHECK(StripTerminal("a\x1b(Bb\x1b"
                      "7c\x1b[?25hd\x1b[2;5He") == "abcde");
  CHECK(StripTerminal("\x1b]0;window title\x07text") == "text");
  CHECK(StripTerminal("tab\there\x08") == "tab\there");
  CHECK(StripTerminal("cut \x1b[3") == "cut ");
}

TEST_CASE("memory stays bounded and positions keep counting", "[console]") {
  ConsoleScanner scanner;
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 48; ++i) scanner.Feed(chunk);
  CHECK(scanner.Text().size() <= (1u << 20));
  CHECK(scanner.Position() == 48u * 64 * 1024);
  const size_t before = scanner.Position();
  scanner.Feed("\nCouldn't log in: nope\n");
  CHECK(scanner.LoginFailure(before) == "Couldn't log in: nope");
  CHECK(scanner.Tail(21) == "Couldn't log in: nope");
}

}  // namespace
}  // namespace llmbox::spoke::box

namespace llmbox::spoke::box {
namespace {

TEST_CASE("console text for a chatbot has no authorize URL and no pasted code", "[console]") {
  for (const char* name :
       {"claude-2.1.330-auth-login-bad-code.tty", "claude-2.1.328-auth-login-bad-code.tty"}) {
    const std::string raw = Recording(name);
    const std::string redacted = RedactConsole(StripTerminal(raw));
    INFO(redacted);
    CHECK(redacted.find("oauth/authorize") == std::string::npos);
    CHECK(redacted.find(LinkTarget(raw).substr(30)) == std::string::npos);
    // The recordings' made-up code was echoed after the prompt.
    CHECK(redacted.find("abcdefghijklmnopqrstuvwxyz") == std::string::npos);
    CHECK(redacted.find("Paste code here if prompted > [REDACTED]\n") != std::string::npos);
    CHECK(redacted.find("[REDACTED authorize URL]") != std::string::npos);
    CHECK(redacted.find("Couldn't log in: getaddrinfo ENOTFOUND platform.claude.com") !=
          std::string::npos);
  }
  CHECK(RedactConsole("open https://claude.ai/code/session_01X now") ==
        "open https://claude.ai/code/session_01X now");
}

}  // namespace
}  // namespace llmbox::spoke::box

#include "common/validate.h"

namespace llmbox::spoke::box {
namespace {

using common::ValidateActivationCode;

TEST_CASE("activation codes are checked for shape without ever being echoed", "[console]") {
  CHECK(ValidateActivationCode("AbC-123_x#state-XYZ").ok());
  CHECK(ValidateActivationCode(std::string(4096, 'a')).ok());
  const std::pair<std::string, std::string> bad[] = {
      {"", "activation code is empty"},
      {std::string(4097, 'a'), "activation code is longer than 4096 bytes"},
      {"has space", "activation code may only contain printable ASCII without spaces"},
      {"ctl\x01", "activation code contains control characters"},
      {"new\nline", "activation code contains control characters"},
      {"del\x7f", "activation code contains control characters"},
      {"caf\xc3\xa9", "activation code may only contain printable ASCII without spaces"},
  };
  for (const auto& [code, message] : bad) {
    auto st = ValidateActivationCode(code);
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message() == message);
  }
}

}  // namespace
}  // namespace llmbox::spoke::box
