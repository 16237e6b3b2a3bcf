// Benchmark: redaction and console scanning of box output, which is hostile input: MB/s of
// common::Redact() on 1 MiB of ordinary text, of text dense with secrets, and of an input
// built against each pattern; of the ConsoleScanner as the spoke's wait loops use it (4 KiB
// chunks, every query after each chunk); of StripTerminal() and RedactConsole(). Then the
// std::regex redactor that Redact() replaced, on one line of 20,000 and of 40,000 letters, in
// a child process (its recursion overflows the stack; a crash there is a result, not a
// failure of the bench).
//
// It asserts nothing about time; it fails only when an output is wrong.
//
//   build/tests/bench/llmbox_redact_bench [seconds per input, default 0.3]

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "common/redact.h"
#include "spoke/box/console.h"
#include "tests/bench/bench_report.h"
#include "tests/support/regex_redact.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMiB = 1u << 20;

using llmbox::bench::Say;

std::string Repeated(std::string_view piece, size_t size = kMiB) {
  std::string out;
  out.reserve(size + piece.size());
  while (out.size() < size) out.append(piece);
  return out;
}

// Lines like a box's logs and a build's output: words, paths, numbers, ids, a session URL.
std::string OrdinaryText() {
  std::mt19937 random(1);
  static const char* const kWords[] = {
      "container", "started",     "pulled",   "image", "debian:12", "in",       "the",
      "workspace", "build",       "finished", "tests", "passed",    "warning:", "unused",
      "variable",  "npm",         "install",  "added", "packages",  "from",     "cache",
      "GET",       "/api/v1",     "200",      "OK",    "ms",        "box",      "my-box-1",
      "Compiling", "src/main.rs", "Error:",   "retry", "#42",       "a-b#c",    "x=1&y=2"};
  std::string text;
  while (text.size() < kMiB) {
    text += "2026-11-29T20:08:" + std::to_string(random() % 60) + "Z ";
    const size_t n = 6 + random() % 14;
    for (size_t i = 0; i < n; ++i) {
      text += kWords[random() % std::size(kWords)];
      text += ' ';
    }
    if (random() % 8 == 0) text += "open https://claude.ai/code/session_01AbCdEfGhIj ";
    if (random() % 8 == 0) text += "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d ";
    text += '\n';
  }
  return text;
}

// Every kind of secret, over and over, with a little text between.
std::string SecretDenseText() {
  return Repeated(
      "visit https://claude.ai/oauth/authorize?code=true&client_id=9d1c&state=AbCdEfGh now\n"
      "GET /cb?code=s3cr3t&state=xyz&access_token=abc HTTP/1.1\n"
      "Authorization: Bearer abc.def-123\n"
      "{\"accessToken\":\"sk-x\",\"refreshToken\": \"r-y\",\"ok\":1}\n"
      "key sk-ant-api03-AbC_dEf-123 jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln end\n"
      "api key llmbox_0123456789abcdefABCDEF pasted AbCdEfGhIjKlMnOpQr#StUvWxYz01234567_- here\n");
}

std::string RandomBytes() {
  std::mt19937 random(42);
  std::string text(kMiB, '\0');
  for (char& c : text) c = static_cast<char>(random());
  return text;
}

// Runs `work` on `input` until `seconds` have passed (at least 3 times) and prints the
// median throughput.
void Measure(const char* what, const std::string& input, double seconds,
             const std::function<void(const std::string&)>& work) {
  std::vector<double> times;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (times.size() < 3 || Clock::now() < end) {
    const auto start = Clock::now();
    work(input);
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  Say("  %-52s %6.2f MiB  %8.1f MB/s  (median of %zu)\n", what, input.size() / double(kMiB),
      input.size() / median / 1e6, times.size());
}

bool failed = false;

void Expect(bool ok, const char* what) {
  if (!ok) {
    Say("  WRONG OUTPUT: %s\n", what);
    failed = true;
  }
}

// The old redactor on `line`, in a child process on a thread with `stack` bytes of stack.
// Prints the time it took or how it died.
void OldRegexInChild(const std::string& line, size_t stack, const char* stack_name) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    alarm(300);
    struct Job {
      const std::string* line;
      double seconds;
    } job{&line, 0};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    pthread_t thread;
    const auto run = [](void* arg) -> void* {
      auto* j = static_cast<Job*>(arg);
      const auto start = Clock::now();
      const std::string out = llmbox::testing::RegexRedact(*j->line);
      j->seconds = std::chrono::duration<double>(Clock::now() - start).count();
      return nullptr;
    };
    if (pthread_create(&thread, &attr, run, &job) != 0) _exit(3);
    pthread_join(thread, nullptr);
    (void)!write(pipe_fds[1], &job.seconds, sizeof(job.seconds));
    _exit(0);
  }
  close(pipe_fds[1]);
  double seconds = -1;
  const bool got = read(pipe_fds[0], &seconds, sizeof(seconds)) == sizeof(seconds);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string what =
      "std::regex, " + std::to_string(line.size()) + " letters, " + stack_name + " stack";
  if (got && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    Say("  %-52s %8.3f s   %8.3f MB/s\n", what.c_str(), seconds, line.size() / seconds / 1e6);
  } else if (WIFSIGNALED(status)) {
    Say("  %-52s crashed: %s\n", what.c_str(), strsignal(WTERMSIG(status)));
  } else {
    Say("  %-52s did not finish (exit %d)\n", what.c_str(), WEXITSTATUS(status));
  }
}

}  // namespace

int main(int argc, char** argv) {
  using llmbox::common::Redact;
  namespace box = llmbox::spoke::box;
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.3;

  Say("redaction (common::Redact, RE2), 1 MiB inputs:\n");
  const std::string ordinary = OrdinaryText();
  const std::string dense = SecretDenseText();
  const auto redact = [](const std::string& in) { (void)Redact(in); };
  Measure("ordinary log text", ordinary, seconds, redact);
  Measure("secret-dense text (9 secrets per 480 bytes)", dense, seconds, redact);
  const std::string half(kMiB / 2, 'A');
  const std::pair<const char*, std::string> pathological[] = {
      {"one line of 'a'", std::string(kMiB, 'a')},
      {"code= repeated", Repeated("code=")},
      {"?code= repeated (one match to the end)", Repeated("?code=")},
      {"&state=x repeated (a match every 8 bytes)", Repeated("&state=x")},
      {"eyJ repeated", Repeated("eyJ")},
      {"eyJa. repeated (a JWT every 15 bytes)", Repeated("eyJa.")},
      {"https://claude.ai/oauth/authorize? repeated",
       Repeated("https://claude.ai/oauth/authorize?")},
      {"Bearer  repeated", Repeated("Bearer ")},
      {"\"accessToken\": \" and no closing quote", "\"accessToken\": \"" + std::string(kMiB, 'a')},
      {"512 KiB base64, '#', 512 KiB base64", half + "#" + half},
      {"17 base64 + '#' repeated", Repeated("0123456789abcdefg#")},
      {"15 base64 + '#' repeated (never 16)", Repeated("0123456789abcde#")},
      {"random bytes (NUL, invalid UTF-8)", RandomBytes()},
  };
  for (const auto& [what, input] : pathological) Measure(what, input, seconds, redact);
  Expect(Redact(std::string(kMiB, 'a')) == std::string(kMiB, 'a'), "a line of 'a' changed");
  Expect(Redact(Repeated("?code=")) == "?code=[REDACTED]", "?code= repeated");
  Expect(Redact(half + "#" + half) == "[REDACTED]", "base64#base64");
  Expect(Redact(dense).find("s3cr3t") == std::string::npos, "a secret survived");

  Say("\nconsole scanning (4 KiB chunks, every query after each chunk), 1 MiB inputs:\n");
  const auto scan = [](const std::string& in) {
    box::ConsoleScanner scanner;
    for (size_t at = 0; at < in.size(); at += 4096) {
      scanner.Feed(std::string_view(in).substr(at, 4096));
      (void)scanner.AuthorizeUrl();
      (void)scanner.NewAuthorizeUrl(0, "https://claude.ai/oauth/authorize?z-old");
      (void)scanner.SessionUrl();
      (void)scanner.LoginFailure();
    }
  };
  const std::string starts = Repeated("https://claude.");
  Measure("ordinary log text", ordinary, seconds, scan);
  Measure("https://claude. repeated", starts, seconds, scan);
  Measure("https://claude.ai/oauth/authorize?z-\\n repeated",
          Repeated("https://claude.ai/oauth/authorize?z-\n"), seconds, scan);
  Measure("an OSC sequence never terminated", "\x1b]8;;" + std::string(kMiB, 'a'), seconds, scan);
  Measure("random bytes", RandomBytes(), seconds, scan);
  Measure("StripTerminal, random bytes", RandomBytes(), seconds,
          [](const std::string& in) { (void)box::StripTerminal(in); });
  Measure("RedactConsole, https://claude. repeated", starts, seconds,
          [](const std::string& in) { (void)box::RedactConsole(in); });
  Expect(box::RedactConsole(starts) == starts, "RedactConsole changed URL starts");

  Say("\nthe std::regex redactor it replaced (issue 13: 20,000 characters took 4.5 s):\n");
  const std::string line20k(20000, 'a'), line40k(40000, 'a');
  Measure("RE2 Redact, 20000 letters", line20k, seconds, redact);
  OldRegexInChild(line20k, size_t{1} << 30, "1 GiB");
  OldRegexInChild(line40k, size_t{8} << 20, "8 MiB");

  llmbox::bench::WriteReport();
  return failed ? 1 : 0;
}
