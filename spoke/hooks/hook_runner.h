// spoke/hooks/hook_runner.h
//
// Runs the operator's lifecycle hooks: external executables per event (box.create,
// box.destroy), given a JSON request on stdin, answering with JSON on stdout. Protocol
// version 1 is documented in docs/hooks.md.
//
//   HookRunner hooks(subprocess_runner, config.hooks);
//   LLMBOX_ASSIGN_OR_RETURN(CreateHooksResult created, hooks.RunCreate(facts));
//   // created.files go into the box by tar; created.state is kept for RunDestroy
//   ...
//   LLMBOX_RETURN_IF_ERROR(hooks.RunDestroy(facts, created.state));
//
// Each hook has a timeout (default 30 s) that kills its process group, and a cap on output.
// Failures name the hook and say what went wrong (exit status, timeout, invalid JSON, a bad
// file entry) but never include what the hook printed: hook output may hold secrets and is
// never logged or returned.
//
// Thread-safe: hooks of different boxes may run concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/subprocess.h"

namespace llmbox::spoke::hooks {

inline constexpr int kProtocolVersion = 1;

struct HookSpec {
  std::string name;                  // unique; keys the state handed to destroy hooks
  std::string event;                 // "box.create" or "box.destroy"
  std::vector<std::string> command;  // argv
  std::chrono::milliseconds timeout{30'000};
  size_t max_output_bytes = 1 << 20;
  std::vector<std::string> env;  // names of the spoke's environment variables to pass on
};

// Checks a hook list: names unique and valid, known events, non-empty commands, bounds.
[[nodiscard]] absl::Status ValidateHooks(const std::vector<HookSpec>& hooks);

// What hooks learn about the box.
struct BoxFacts {
  std::string box_id;
  std::string image;
  std::string description;
  std::string owner;
  std::string spoke;
};

struct InjectedFile {
  std::string path;  // absolute, inside the box
  uint32_t mode = 0600;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string content;
};

struct CreateHooksResult {
  std::vector<InjectedFile> files;
  // JSON object {"<hook name>": <state>, ...} of the create hooks that returned a state;
  // handed back to every destroy hook. "{}" when none did.
  std::string state = "{}";
};

class HookRunner {
 public:
  // Told of every hook run: the hook's name, its event and what came of it (/metrics).
  using Observer =
      std::function<void(std::string_view hook, std::string_view event, const absl::Status&)>;

  HookRunner(common::SubprocessRunner& runner, std::vector<HookSpec> hooks,
             Observer observer = nullptr);

  // Runs the box.create hooks in order. On a failure the create hooks that already ran are
  // undone by running the destroy hooks with their state, and the error names the hook.
  [[nodiscard]] absl::StatusOr<CreateHooksResult> RunCreate(const BoxFacts& box);

  // Runs every box.destroy hook with `state` (from RunCreate); all run even when one fails;
  // the first failure is returned.
  [[nodiscard]] absl::Status RunDestroy(const BoxFacts& box, const std::string& state);

  bool HasHooks() const { return !hooks_.empty(); }

 private:
  // RunProcess, told to the observer.
  [[nodiscard]] absl::StatusOr<std::string> RunOne(const HookSpec& hook,
                                                   const std::string& request);
  [[nodiscard]] absl::StatusOr<std::string> RunProcess(const HookSpec& hook,
                                                       const std::string& request);

  common::SubprocessRunner& runner_;
  const std::vector<HookSpec> hooks_;
  const Observer observer_;
};

}  // namespace llmbox::spoke::hooks
