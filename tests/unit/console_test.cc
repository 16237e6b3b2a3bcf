#include "spoke/box/console.h"

#include <algorithm>
#include <fstream>
#include <random>
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
      {"https://claude.ai/oauth/authorize?z-" + std::string(43, 'a'),
       "activation code may only contain letters, digits and - _ . ~ # (paste the code the "
       "sign-in page shows)"},
      {"https://claude.ai/code/session_forged",
       "activation code may only contain letters, digits and - _ . ~ # (paste the code the "
       "sign-in page shows)"},
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

namespace llmbox::spoke::box {
namespace {

constexpr size_t kMiB = 1u << 20;

std::string Repeated(std::string_view piece, size_t size = kMiB) {
  std::string out;
  out.reserve(size + piece.size());
  while (out.size() < size) out.append(piece);
  return out;
}

// Feeds `raw` in chunks of `chunk` bytes and asks what the spoke's wait loops ask after each.
void FeedAndAsk(ConsoleScanner& scanner, std::string_view raw, size_t chunk) {
  for (size_t at = 0; at < raw.size(); at += chunk) {
    scanner.Feed(raw.substr(at, chunk));
    (void)scanner.AuthorizeUrl();
    (void)scanner.NewAuthorizeUrl(0, "https://claude.ai/oauth/authorize?z-old");
    (void)scanner.SessionUrl();
    (void)scanner.LoginFailure();
  }
}

TEST_CASE("1 MiB of https://claude. repeated, read chunk by chunk, yields no URL", "[console]") {
  for (std::string_view piece :
       {"https://claude.", "https://claude.ai/oauth/authorize?", "https://claude.ai/code/",
        "https://claude.ai/oauth/authorize?z-\n"}) {
    INFO(piece);
    ConsoleScanner scanner;
    FeedAndAsk(scanner, Repeated(piece), 4096);
    CHECK(scanner.AuthorizeUrl() == std::nullopt);
    CHECK(scanner.SessionUrl() == std::nullopt);
    CHECK(scanner.Text().size() <= kMiB);
    CHECK(scanner.Position() >= kMiB);
  }
}

TEST_CASE("a URL that never stops growing is no URL, and the one after it is found", "[console]") {
  const std::string url = LinkTarget(Recording("claude-2.1.330-auth-login-bad-code.tty"));
  ConsoleScanner scanner;
  // An authorize URL without its end, "wrapped" over a million lines.
  FeedAndAsk(scanner, "https://claude.ai/oauth/authorize?code=true" + Repeated("\na"), 4096);
  CHECK(scanner.AuthorizeUrl() == std::nullopt);
  scanner.Feed(" " + url + "\n");
  CHECK(scanner.AuthorizeUrl() == url);
}

TEST_CASE("two authorize URLs printed without a space between are told apart", "[console]") {
  const std::string first = "https://claude.ai/oauth/authorize?z-" + std::string(43, 'A');
  const std::string second = "https://claude.ai/oauth/authorize?z-" + std::string(43, 'B');
  ConsoleScanner scanner;
  scanner.Feed(first + "\x1b[0m" + second + "\r\n");
  CHECK(scanner.Text() == first + second + "\n");
  CHECK(scanner.AuthorizeUrl() == first);
  CHECK(scanner.NewAuthorizeUrl(0, first) == second);
  ConsoleScanner session;
  session.Feed("https://claude.xhttps://claude.ai/code/session_01X\n");
  CHECK(session.SessionUrl() == "https://claude.ai/code/session_01X");
}

TEST_CASE("a wrapped URL fed byte by byte is found once, when it has been printed whole",
          "[console]") {
  const std::string url = LinkTarget(Recording("claude-2.1.328-auth-login-bad-code.tty"));
  std::string wrapped = "visit: ";
  for (size_t at = 0; at < url.size(); at += 80) wrapped += url.substr(at, 80) + "\r\n";
  wrapped += "Paste code here if prompted > ";
  ConsoleScanner scanner;
  size_t found_at = 0;
  for (size_t i = 0; i < wrapped.size(); ++i) {
    scanner.Feed(wrapped.substr(i, 1));
    if (found_at == 0 && scanner.AuthorizeUrl().has_value()) found_at = i + 1;
  }
  CHECK(scanner.AuthorizeUrl() == url);
  // Taken at the line break after its last character, not before.
  CHECK(found_at == wrapped.find("\r\nPaste") + 2);
}

TEST_CASE(
    "an escape sequence that never ends is dropped after 16 KiB and the text after it "
    "is read",
    "[console]") {
  for (std::string_view start : {"\x1b]8;;", "\x1b]0;", "\x1bP", "\x1b["}) {
    INFO(static_cast<int>(start[1]));
    const std::string body = start[1] == '[' ? Repeated("1;") : Repeated("a");
    for (size_t chunk : {size_t{1}, size_t{4096}}) {
      ConsoleScanner scanner;
      const std::string raw = std::string(start) + body.substr(0, chunk == 1 ? 64 << 10 : kMiB);
      FeedAndAsk(scanner, raw, chunk);
      CHECK(scanner.Position() > 0);
      CHECK(scanner.Position() <= raw.size() - (16u << 10));
      CHECK(scanner.Text().find('\x1b') == std::string::npos);
      CHECK(scanner.AuthorizeUrl() == std::nullopt);
    }
    CHECK(StripTerminal(std::string(start) + body).size() < body.size());
  }
}

TEST_CASE("an escape string left open hides nothing after it", "[console]") {
  // Ended by the line's end: the text after it is read, in one piece or chunk by chunk.
  for (std::string_view start : {"\x1b]", "\x1b]8;;https://x", "\x1bP", "\x1b_"}) {
    INFO(static_cast<int>(start[1]));
    const std::string raw = "before" + std::string(start) + "junk\nafter the noise\n";
    CHECK(StripTerminal(raw).find("after the noise\n") != std::string::npos);
    CHECK(StripTerminal(raw).rfind("before", 0) == 0);
    for (size_t chunk : {size_t{1}, size_t{3}}) {
      ConsoleScanner scanner;
      FeedAndAsk(scanner, raw, chunk);
      CHECK(scanner.Text().find("after the noise\n") != std::string::npos);
    }
  }
  // Longer than 16 KiB without a line break: only its first 16 KiB go.
  const std::string raw = "before\x1bPjunk" + std::string(20000, 'x') + "after the noise";
  const std::string text = StripTerminal(raw);
  CHECK(text.rfind("before", 0) == 0);
  CHECK(text.find("after the noise") != std::string::npos);
  CHECK(text.size() == raw.size() - (16u << 10));
}

TEST_CASE("a 1 MiB line without a line break is no failure, and the line after it is",
          "[console]") {
  ConsoleScanner scanner;
  FeedAndAsk(scanner, Repeated("Error: "), 4096);
  CHECK(scanner.LoginFailure() == std::nullopt);
  scanner.Feed("\nOAuth error: nope\n");
  CHECK(scanner.LoginFailure(scanner.Position() - 18) == "OAuth error: nope");
}

TEST_CASE("the text after the position a code was written at counts as a line of its own",
          "[console]") {
  ConsoleScanner scanner;
  scanner.Feed("Paste code here if prompted > ");
  const size_t submitted = scanner.Position();
  scanner.Feed("  Invalid code\r\nmore\n");
  CHECK(scanner.LoginFailure(submitted) == "Invalid code");
  // Asked from the start of the line, the prompt comes first and the line is no failure.
  CHECK(scanner.LoginFailure(0) == std::nullopt);
  CHECK(scanner.LoginFailure(submitted) == "Invalid code");
}

TEST_CASE(
    "random bytes with NUL, escapes and invalid UTF-8 are read without a URL or a control "
    "character left",
    "[console]") {
  std::mt19937 random(13);
  std::string raw(kMiB, '\0');
  for (char& c : raw) c = static_cast<char>(random());
  ConsoleScanner scanner;
  for (size_t at = 0; at < raw.size();) {
    const size_t n = 1 + random() % 8192;
    FeedAndAsk(scanner, std::string_view(raw).substr(at, n), n);
    at += n;
  }
  CHECK(scanner.AuthorizeUrl() == std::nullopt);
  const std::string& text = scanner.Text();
  CHECK(std::none_of(text.begin(), text.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return (b < 0x20 && c != '\n' && c != '\t') || b == 0x7f;
  }));
  CHECK(scanner.Tail().size() <= 600);
  CHECK(StripTerminal(raw).size() <= raw.size());
}

TEST_CASE("the tail collapses whitespace like the whole text would, looking only at the end",
          "[console]") {
  ConsoleScanner scanner;
  scanner.Feed("  first\r\n\n  x \t y\x1b[0m\n\nz  \n");
  CHECK(scanner.Tail() == "first x y z");
  CHECK(scanner.Tail(5) == "x y z");
  CHECK(scanner.Tail(2) == " z");
  CHECK(scanner.Tail(1) == "z");
  CHECK(scanner.Tail(0).empty());
  ConsoleScanner blank;
  blank.Feed(Repeated(" \n"));
  CHECK(blank.Tail().empty());
  ConsoleScanner big;
  big.Feed(Repeated("word ") + "last");
  CHECK(big.Tail(14) == "word word last");
}

TEST_CASE("console redaction of 1 MiB of URL starts, prompts or one authorize URL finishes",
          "[console]") {
  const std::string starts = Repeated("https://claude.");
  CHECK(RedactConsole(starts) == starts);
  CHECK(RedactConsole(Repeated("https://claude.ai/oauth/authorize?")) ==
        "[REDACTED authorize URL]");
  CHECK(RedactConsole("x https://claude.https://claude.ai/oauth/authorize?z-1 y") ==
        "x https://claude.[REDACTED authorize URL] y");
  const std::string prompts = Repeated("Paste code here if prompted > ");
  CHECK(RedactConsole(prompts) == "Paste code here if prompted > [REDACTED]");
  const std::string lines = Repeated("Paste code here if prompted > code\n");
  CHECK(RedactConsole(lines) ==
        Repeated("Paste code here if prompted > [REDACTED]\n", lines.size() / 35 * 41));
}

TEST_CASE("the last session URL in a console is the one of its latest start",
          "[console][restart]") {
  ConsoleScanner scanner;
  scanner.Feed(
      "Remote Control ready\r\nContinue: \x1b]8;;https://claude.ai/code/session_01First\x1b\\"
      "https://claude.ai/code/session_01First\x1b]8;;\x1b\\\r\n");
  scanner.Feed("Remote Control ready\r\nContinue: https://claude.ai/code/session_01Second\r\n");
  CHECK(scanner.SessionUrl() == "https://claude.ai/code/session_01First");
  CHECK(scanner.LastSessionUrl() == "https://claude.ai/code/session_01Second");
  ConsoleScanner plain;
  plain.Feed(
      "Ready: https://claude.ai/code/session_01A\r\nReady: https://claude.ai/code/session_01B\r\n");
  CHECK(plain.SessionUrl() == "https://claude.ai/code/session_01A");
  CHECK(plain.LastSessionUrl() == "https://claude.ai/code/session_01B");
  ConsoleScanner links;
  for (const char* id : {"01C", "01D"}) {
    const std::string url = std::string("https://claude.ai/code/session_") + id;
    links.Feed("Continue: \x1b]8;;" + url + "\x1b\\" + url + "\x1b]8;;\x1b\\\r\n");
  }
  CHECK(links.LastSessionUrl() == "https://claude.ai/code/session_01D");
  CHECK(ConsoleScanner().LastSessionUrl() == std::nullopt);
}

}  // namespace
}  // namespace llmbox::spoke::box
