#include "tests/fakes/scripted_console.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace llmbox::testing {

using spoke::docker::AttachStream;

namespace {

constexpr std::string_view kPrompt = "Paste code here if prompted > ";
constexpr std::string_view kSigningIn = "Signing in\xe2\x80\xa6\r\n";

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
    text.replace(at, from.size(), to);
  }
  return text;
}

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ScriptedConsole: %s\n", message.c_str());
  std::abort();
}

// Output of one attach: what was printed since it attached and not yet read.
struct Buffer {
  std::string data;
  bool closed = false;  // Close() was called on its stream
};

}  // namespace

std::string ReadRecording(std::string_view name) {
  const std::string path =
      absl::StrCat(LLMBOX_SOURCE_DIR, "/tests/rig/recordings/", std::string(name));
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read the recording " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string RecordedAuthorizeUrl(std::string_view raw) {
  const size_t start = raw.find("\x1b]8;;");
  if (start == std::string_view::npos) return "";
  const size_t end = raw.find('\x07', start + 5);
  if (end == std::string_view::npos) return "";
  return std::string(raw.substr(start + 5, end - start - 5));
}

struct ScriptedConsole::Shared {
  std::mutex mu;
  std::condition_variable printed;  // output, an end, or a close
  std::string history;
  std::vector<std::weak_ptr<Buffer>> buffers;
  bool ended = false;
  int logins = 0;
  bool awaiting_code = false;
  bool held = false;
  std::string line;  // stdin since the last line end
  std::vector<std::string> codes;
};

class ScriptedConsole::Stream final : public AttachStream {
 public:
  Stream(std::shared_ptr<ScriptedConsole> console, std::shared_ptr<Buffer> buffer)
      : console_(std::move(console)), shared_(console_->shared_), buffer_(std::move(buffer)) {}

  absl::Status Write(std::string_view data) override {
    std::lock_guard lock(shared_->mu);
    if (buffer_->closed) return absl::FailedPreconditionError("the attach stream is closed");
    if (shared_->ended) return absl::UnavailableError("the container is not running");
    console_->InputLocked(data);
    shared_->printed.notify_all();
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Read(std::chrono::milliseconds timeout) override {
    // The deadline is taken before the lock: a FakeClock's Advance takes this lock to wake us.
    const auto deadline = console_->clock_.SteadyNow() + timeout;
    std::unique_lock lock(shared_->mu);
    console_->clock_.WaitUntil(lock, shared_->printed, deadline, [&] {
      return !buffer_->data.empty() || buffer_->closed || shared_->ended;
    });
    if (!buffer_->data.empty()) return std::exchange(buffer_->data, std::string());
    if (buffer_->closed || shared_->ended) return absl::OutOfRangeError("the console has ended");
    return std::string();
  }

  absl::Status CloseStdin() override { return absl::OkStatus(); }

  void Close() override {
    std::lock_guard lock(shared_->mu);
    buffer_->closed = true;
    shared_->printed.notify_all();
  }

 private:
  const std::shared_ptr<ScriptedConsole> console_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Buffer> buffer_;
};

ScriptedConsole::ScriptedConsole(common::Clock& clock, ConsoleScript script)
    : clock_(clock), script_(std::move(script)), shared_(std::make_shared<Shared>()) {
  const std::string raw = ReadRecording(script_.recording);
  const size_t prompt = raw.find(kPrompt);
  if (prompt == std::string::npos) Die(script_.recording + " has no code prompt");
  prompt_part_ = raw.substr(0, prompt + kPrompt.size());
  // The TTY echoes the typed code and its line end; the answer follows.
  const size_t echo_end = raw.find('\n', prompt);
  if (echo_end == std::string::npos) Die(script_.recording + " has no answer to its code");
  bad_answer_ = raw.substr(echo_end + 1);
  if (bad_answer_.rfind(kSigningIn, 0) == 0) bad_answer_.erase(0, kSigningIn.size());
  first_url_ = RecordedAuthorizeUrl(prompt_part_);
  if (first_url_.empty()) Die(script_.recording + " has no authorize URL link");
}

std::string ScriptedConsole::LoginUrl(int n) const {
  if (n <= 1) return first_url_;
  return first_url_.substr(0, first_url_.size() - 4) + absl::StrFormat("%04d", n % 10000);
}

void ScriptedConsole::Start() {
  std::lock_guard lock(shared_->mu);
  switch (script_.start) {
    case ConsoleScript::Start::kLogin:
      LoginLocked();
      break;
    case ConsoleScript::Start::kSilent:
      break;
    case ConsoleScript::Start::kGiveUp:
      for (int i = 1; i <= script_.login_attempts; ++i) {
        PrintLocked(absl::StrCat("llmbox: sign-in did not complete (attempt ", i, " of ",
                                 script_.login_attempts, ")\r\n"));
      }
      PrintLocked(absl::StrCat("llmbox: sign-in failed ", script_.login_attempts,
                               " times; destroy this box and create a new one\r\n"));
      shared_->ended = true;
      break;
  }
  shared_->printed.notify_all();
}

void ScriptedConsole::End() {
  std::lock_guard lock(shared_->mu);
  shared_->ended = true;
  shared_->printed.notify_all();
}

std::unique_ptr<AttachStream> ScriptedConsole::Attach() {
  auto buffer = std::make_shared<Buffer>();
  std::lock_guard lock(shared_->mu);
  shared_->buffers.push_back(buffer);
  return std::make_unique<Stream>(shared_from_this(), std::move(buffer));
}

void ScriptedConsole::Print(std::string_view raw) {
  std::lock_guard lock(shared_->mu);
  PrintLocked(raw);
  shared_->printed.notify_all();
}

void ScriptedConsole::Answer(bool accept) {
  std::lock_guard lock(shared_->mu);
  if (!shared_->held) return;
  shared_->held = false;
  if (accept) {
    AcceptLocked();
  } else {
    RejectLocked();
  }
  shared_->printed.notify_all();
}

std::string ScriptedConsole::History() {
  std::lock_guard lock(shared_->mu);
  return shared_->history;
}

std::vector<std::string> ScriptedConsole::Codes() {
  std::lock_guard lock(shared_->mu);
  return shared_->codes;
}

bool ScriptedConsole::Ended() {
  std::lock_guard lock(shared_->mu);
  return shared_->ended;
}

void ScriptedConsole::PrintLocked(std::string_view raw) {
  if (shared_->ended) return;
  shared_->history.append(raw);
  for (auto it = shared_->buffers.begin(); it != shared_->buffers.end();) {
    if (auto buffer = it->lock()) {
      if (!buffer->closed) buffer->data.append(raw);
      ++it;
    } else {
      it = shared_->buffers.erase(it);
    }
  }
}

void ScriptedConsole::LoginLocked() {
  ++shared_->logins;
  PrintLocked(ReplaceAll(prompt_part_, first_url_, LoginUrl(shared_->logins)));
  shared_->awaiting_code = true;
}

void ScriptedConsole::AcceptLocked() {
  PrintLocked("Login successful.\r\n\x1b[?25h");
  // What `claude remote-control` prints once it serves (the stand-in's model of it).
  const std::string& url = script_.session_url;
  PrintLocked(absl::StrCat("Remote Control ready\r\nContinue in claude.ai/code or the Claude app: ",
                           "\x1b]8;;", url, "\x07\x1b[94m", url, "\x1b[39m\x1b]8;;\x07\r\n"));
}

void ScriptedConsole::RejectLocked() {
  PrintLocked(bad_answer_);
  PrintLocked(absl::StrCat("llmbox: sign-in did not complete (attempt ", shared_->logins, " of ",
                           script_.login_attempts, ")\r\n"));
  if (shared_->logins < script_.login_attempts) {
    LoginLocked();
    return;
  }
  PrintLocked(absl::StrCat("llmbox: sign-in failed ", script_.login_attempts,
                           " times; destroy this box and create a new one\r\n"));
  shared_->ended = true;
}

void ScriptedConsole::InputLocked(std::string_view data) {
  for (char c : data) {
    if (c != '\r' && c != '\n') {
      shared_->line.push_back(c);
      PrintLocked(std::string_view(&c, 1));  // the TTY's echo
      continue;
    }
    PrintLocked("\r\r\n");
    std::string code = std::exchange(shared_->line, std::string());
    if (!shared_->awaiting_code) continue;  // nobody reads stdin now
    shared_->awaiting_code = false;
    shared_->codes.push_back(code);
    PrintLocked(kSigningIn);
    if (code.rfind(script_.good_code_prefix, 0) == 0) {
      AcceptLocked();
    } else if (code.rfind(script_.held_code_prefix, 0) == 0) {
      shared_->held = true;
    } else {
      RejectLocked();
    }
  }
}

}  // namespace llmbox::testing
