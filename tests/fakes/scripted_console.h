// tests/fakes/scripted_console.h
//
// The console of a fake box: what the box's entrypoint and the real Claude binary print on
// its TTY, replayed from the rig's recordings (tests/rig/recordings/*.tty), and how they
// answer a code typed on stdin. FakeDockerEngine gives every container one; its attach
// streams read from it.
//
//   auto console = std::make_shared<ScriptedConsole>(clock, ConsoleScript{});  // 2.1.330
//   auto stream = console->Attach();                  // sees what is printed from now on
//   console->Start();                                 // prints the authorize URL, then the prompt
//   stream->Write("bad-code#state\r");                // the recorded "Couldn't log in: ..."
//                                                     // and a fresh login with a new URL
//   stream->Write("good-code#state\r");               // "Login successful." and a session URL
//
// The box the script models (spoke/box/entrypoint.sh around `claude auth login`): each login
// prints the recording up to its code prompt, with a URL of its own (the first login's is the
// recording's; later ones differ in their last characters, as a new PKCE state would). A code
// starting with `good_code_prefix` signs in: "Login successful." and then, as
// `claude remote-control` does, a session URL in an OSC-8 link. A code starting with
// `held_code_prefix` gets "Signing in…" and no answer until Answer() is called. Any other code
// gets the recording's own answer (the offline "Couldn't log in: …"), then the wrapper's
// "sign-in did not complete" line and a fresh login, up to `login_attempts` logins, after
// which the wrapper gives up and the console ends.
//
// Reads wait on the injected Clock: a FakeClock advanced past a Read's timeout ends it, and
// anything the box prints ends it at once.
//
// Owned by a shared_ptr (its streams keep it alive). Thread-safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "spoke/docker/engine.h"

namespace llmbox::testing {

// The bytes of tests/rig/recordings/<name>; aborts with a message when it cannot be read.
std::string ReadRecording(std::string_view name);

// The OAuth authorize URL in a recording (its first OSC-8 hyperlink target).
std::string RecordedAuthorizeUrl(std::string_view raw);

struct ConsoleScript {
  enum class Start {
    kLogin,   // prints the first login (authorize URL, code prompt)
    kSilent,  // prints nothing (a box that hangs before its URL)
    kGiveUp,  // every login fails at once: the wrapper gives up and the console ends
  };
  Start start = Start::kLogin;
  std::string recording = "claude-2.1.330-auth-login-bad-code.tty";
  std::string good_code_prefix = "good-";
  std::string held_code_prefix = "held-";
  int login_attempts = 5;  // the entrypoint's LLMBOX_LOGIN_ATTEMPTS
  std::string session_url = "https://claude.ai/code/session_01FakeScriptedSession";
};

class ScriptedConsole : public std::enable_shared_from_this<ScriptedConsole> {
 public:
  ScriptedConsole(common::Clock& clock, ConsoleScript script);

  // The container started: the entrypoint runs (see ConsoleScript::start).
  void Start();
  // The container stopped: streams read what is left, then OutOfRange; stdin is refused.
  void End();

  // A new attach: its stream sees everything printed from now on.
  std::unique_ptr<spoke::docker::AttachStream> Attach();

  // Prints `raw` on the console, as the box would.
  void Print(std::string_view raw);
  // Answers a held code: signs in when `accept`, else the recorded bad-code answer (and a
  // fresh login).
  void Answer(bool accept);

  // Everything printed so far (what `docker logs` returns for a TTY container).
  std::string History();
  // The codes the box read on stdin, in order.
  std::vector<std::string> Codes();
  // The authorize URL of login `n` (1-based).
  std::string LoginUrl(int n) const;
  bool Ended();

 private:
  struct Shared;
  class Stream;

  // With mu held.
  void PrintLocked(std::string_view raw);
  void LoginLocked();
  void AcceptLocked();
  void RejectLocked();
  void InputLocked(std::string_view data);

  common::Clock& clock_;
  const ConsoleScript script_;
  std::string prompt_part_;  // the recording up to and including its code prompt
  std::string bad_answer_;   // the recording after the echoed code
  std::string first_url_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace llmbox::testing
