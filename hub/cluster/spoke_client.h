// hub/cluster/spoke_client.h
//
// What the hub asks of one spoke, in the hub's own types: the verbs of the spoke's box
// service (create, list, destroy, logs, exec, submit a code, health) with plain structs in and
// out, a timeout per call, and absl::Status errors. The registry, placement and the cluster
// code hold spokes as SpokeClients and never see generated gRPC; the one real implementation
// (MakeGrpcSpokeClient, hub/cluster/grpc_spoke_client.h) speaks llmbox.v1.BoxService over a
// channel, and is where every proto conversion lives.
//
//   std::shared_ptr<SpokeClient> spoke = MakeGrpcSpokeClient(channel);
//   LLMBOX_ASSIGN_OR_RETURN(SpokeHealth health, spoke->Health(std::chrono::seconds(2)));
//   if (!health.engine_reachable) { ... health.engine_error ... }
//
// Timeouts: each call takes how long it may take in all (a duration, not a point in time, so
// that the hub's injected Clock never has to agree with the transport's); past it the call
// gives up with DeadlineExceeded.
//
// Errors: the spoke's status, its code and message unchanged (common/grpc_status.h maps the
// codes one to one): Unavailable when the spoke cannot be reached, DeadlineExceeded past the
// timeout, Cancelled when the caller cancelled an Exec, and the spoke's own codes otherwise
// (NotFound, ResourceExhausted, FailedPrecondition, ...). Callers name the spoke in what they
// report; a client does not know the name it is filed under.
//
// Thread-safe: calls may come from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::cluster {

// A box as its spoke reports it.
struct SpokeBox {
  std::string box_id;
  std::string container_id;
  // A phase the hub does not know is kError; a box the spoke destroyed is kGone.
  store::Phase phase = store::Phase::kError;
  std::string image;
  std::string session_url;  // once ready
  std::string last_error;   // the spoke's or the box's latest failure, redacted
  // When a pending box will be reaped; the epoch when the spoke gave none.
  std::chrono::sys_time<std::chrono::milliseconds> expires_at{};
};

struct CreateBoxArgs {
  std::string box_id;
  std::string image;  // empty: the spoke's default
  std::string description;
  std::string owner;  // who asked for it (an API key's name), recorded by the spoke
};

struct CreatedOnSpoke {
  SpokeBox box;
  // The OAuth authorize URL the box printed: server-side only, never logged.
  std::string authorize_url;
};

struct LogsArgs {
  std::string box_id;
  std::uint32_t tail_lines = 0;  // 0: the spoke's default
  std::uint32_t max_bytes = 0;   // 0: the spoke's default
};

struct SpokeLogs {
  std::string logs;
  bool truncated = false;
};

struct ExecArgs {
  std::string box_id;
  std::vector<std::string> argv;
  // The spoke kills the command after this long (the call's timeout should be longer).
  std::chrono::milliseconds timeout{0};
  std::uint32_t max_output_bytes = 0;  // per stream; 0: the spoke's default
};

struct ExecOutput {
  int exit_code = 0;  // -1 when killed
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  bool timed_out = false;
};

struct SubmitCodeArgs {
  std::string box_id;
  std::string code;  // secret: never logged
  // How long the spoke waits for the box's answer (the call's timeout should be longer).
  std::chrono::milliseconds timeout{0};
};

struct SubmitOutcome {
  bool activated = false;
  std::string session_url;    // when activated
  std::string box_error;      // when not: the box's own words, redacted
  std::string authorize_url;  // when not, and the box printed a new one for another try
  std::uint32_t attempts_remaining = 0;
};

struct SpokeHealth {
  std::string spoke_name;  // as the spoke calls itself
  std::uint32_t max_boxes = 0;
  // Boxes by phase (activating ones count as pending).
  std::uint32_t creating = 0;
  std::uint32_t pending = 0;
  std::uint32_t ready = 0;
  std::uint32_t error = 0;
  bool engine_reachable = false;
  std::string engine_error;  // why not, when not
  std::vector<std::string> allowed_images;

  // The boxes the spoke holds, whatever their phase.
  std::uint32_t Boxes() const { return creating + pending + ready + error; }
};

// Receives, before the call starts, a function that abandons it; the holder may call that
// function from any thread while the call runs (the call then ends with Cancelled).
using CancelHook = std::function<void(std::function<void()>)>;

class SpokeClient {
 public:
  virtual ~SpokeClient() = default;

  // Creates a box and returns once the spoke has its authorize URL. After DeadlineExceeded,
  // Unavailable or Cancelled the spoke may still finish the box.
  [[nodiscard]] virtual absl::StatusOr<CreatedOnSpoke> CreateBox(
      const CreateBoxArgs& args, std::chrono::milliseconds timeout) = 0;

  // Every managed box on the spoke, stopped ones included.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokeBox>> ListBoxes(
      std::chrono::milliseconds timeout) = 0;

  // Stops and removes a box. NotFound (or OK) when the spoke has no such box.
  [[nodiscard]] virtual absl::Status DestroyBox(const std::string& box_id,
                                                std::chrono::milliseconds timeout) = 0;

  // The tail of a box's console output, redacted and capped by the spoke.
  [[nodiscard]] virtual absl::StatusOr<SpokeLogs> GetLogs(const LogsArgs& args,
                                                          std::chrono::milliseconds timeout) = 0;

  // Runs a command in a box. A non-zero exit code is a result, not an error. `on_cancel`
  // (may be empty) receives the function that abandons the call.
  [[nodiscard]] virtual absl::StatusOr<ExecOutput> Exec(const ExecArgs& args,
                                                        std::chrono::milliseconds timeout,
                                                        const CancelHook& on_cancel) = 0;

  // Writes an OAuth code to a pending box and waits for the outcome. A code the box refuses
  // is an outcome (activated = false), not an error.
  [[nodiscard]] virtual absl::StatusOr<SubmitOutcome> SubmitCode(
      const SubmitCodeArgs& args, std::chrono::milliseconds timeout) = 0;

  // Liveness, capacity, the state of the spoke's Docker engine and the images it accepts.
  [[nodiscard]] virtual absl::StatusOr<SpokeHealth> Health(std::chrono::milliseconds timeout) = 0;
};

}  // namespace llmbox::hub::cluster
