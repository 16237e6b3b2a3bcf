// hub/cluster/spoke_client.h
//
// What the hub asks of one spoke, in the hub's own types: the verbs of the spoke's box
// service (create, get, list, destroy, logs, exec, submit a code, a box's network, health)
// with plain structs in and
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
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::cluster {

// How much of the network a box may reach (docs/network.md). In every mode the spoke's host,
// the cloud metadata service, the private ranges and other boxes stay out of reach.
enum class NetworkMode {
  kDefault,    // in a request: the spoke's default (create) or unchanged (a change)
  kNone,       // no connection at all
  kAllowlist,  // the spoke's base list and the box's own entries
  kOpen,       // the internet, without the always-denied set
};

// "none", "allowlist", "open"; "default" for kDefault.
constexpr std::string_view NetworkModeName(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kAllowlist:
      return "allowlist";
    case NetworkMode::kOpen:
      return "open";
    case NetworkMode::kDefault:
      break;
  }
  return "default";
}

// A box's network policy as a create asks for it. Entries are the spoke's text form
// ("example.com", "*.example.com:443", "10.1.0.0/16"); the spoke parses and checks them.
struct NetworkPolicy {
  NetworkMode mode = NetworkMode::kDefault;
  std::vector<std::string> allow;
};

// A change to a live box's network: entries to add and remove, and its mode (kDefault: kept).
struct NetworkChange {
  std::vector<std::string> add;
  std::vector<std::string> remove;
  NetworkMode mode = NetworkMode::kDefault;
};

// A connection the spoke refused a box. The strings come from the box (the name it asked
// for): the client makes them valid UTF-8 and cuts them to the bounds below, whatever the
// spoke sent.
struct NetworkRefusal {
  std::chrono::sys_time<std::chrono::milliseconds> time{};
  std::string destination;  // the name or address; at most 255 bytes
  std::uint32_t port = 0;   // 0 when the protocol has none
  std::string protocol;     // "tcp", "udp", ...; at most 16 bytes
  std::string rule;         // why; at most 256 bytes
};

// A box's network as its spoke enforces it. Lists bounded by the client (kMaxNetworkList
// entries, kMaxNetworkRefusals refusals: the newest).
struct BoxNetwork {
  NetworkMode mode = NetworkMode::kDefault;  // kDefault only from a spoke that predates policies
  std::vector<std::string> allow;            // the box's own entries
  std::vector<std::string> base;             // the spoke's base list
  std::string proxy;                         // "http://<gateway>:<port>"; empty when none
  std::vector<NetworkRefusal> refusals;      // oldest first; from GetBox and SetBoxNetwork
};
inline constexpr std::size_t kMaxNetworkList = 256;
inline constexpr std::size_t kMaxNetworkRefusals = 32;

// A position in a spoke's change feed (spoke/service/change_feed.h): the epoch the spoke chose
// at its start and a sequence number in it. {0, 0}: none (a spoke without a feed, or nothing
// applied yet).
struct FeedPosition {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};
// The changed boxes a health answer may list; more count as "every box changed".
inline constexpr int kMaxFeedChanges = 4096;

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
  BoxNetwork network;  // ListBoxes leaves its refusals empty
  // Where in the spoke's change feed this answer was taken (GetBox, CreateBox, SetBoxNetwork);
  // {0, 0} elsewhere and from a spoke without a feed.
  FeedPosition at;
};

struct CreateBoxArgs {
  std::string box_id;
  std::string image;  // empty: the spoke's default
  std::string description;
  std::string owner;  // who asked for it (an API key's name), recorded by the spoke
  std::optional<NetworkPolicy> network;  // unset: the spoke's default policy
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
  // Why the spoke cannot create a box now (no default image, no claude_bin) and what its
  // operator should do, in its words (at most 2 KiB); empty when it can.
  std::string cannot_create;
  // The spoke's change feed after the position the call named: its position now, and the
  // boxes (canonical ids) changed after that position with their latest change's number; `all`
  // when every box may have changed (another epoch, a position too old, too many changes, its
  // engine down). at.epoch 0: the spoke keeps no feed.
  FeedPosition changes_at;
  bool changes_all = true;
  std::vector<std::pair<std::string, std::uint64_t>> changes;

  // The boxes the spoke holds, whatever their phase.
  std::uint32_t Boxes() const { return creating + pending + ready + error; }
};

// Boxes a spoke removed on its own (its reaper), as its removal journal answers
// (ListRemovals). Everything here is the spoke's word, unchecked: the hub's RemovalAudit
// (hub/boxes/removal_audit.h) bounds and validates it before any of it is written anywhere.
struct SpokeRemoval {
  std::uint64_t seq = 0;
  std::string box_id;
  std::string reason;  // "expired", "container_gone", ...
  std::chrono::sys_time<std::chrono::milliseconds> at{};
  int code = 0;  // a google.rpc.Code as the spoke sent it (0: removed)
  std::string error;
};
struct SpokeRemovals {
  std::string journal_id;
  std::vector<SpokeRemoval> removals;  // as sent, oldest first
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
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

  // One box as the spoke sees it now, its network's latest refusals included. NotFound when
  // the spoke has no such box.
  [[nodiscard]] virtual absl::StatusOr<SpokeBox> GetBox(const std::string& box_id,
                                                        std::chrono::milliseconds timeout) = 0;

  // Every managed box on the spoke, stopped ones included.
  [[nodiscard]] virtual absl::StatusOr<std::vector<SpokeBox>> ListBoxes(
      std::chrono::milliseconds timeout) = 0;

  // Changes a live box's network policy and returns the box as GetBox would. The spoke's
  // errors: InvalidArgument naming an entry that does not parse, PermissionDenied saying what
  // the spoke's policy allows, NotFound, Unimplemented from a spoke without policies.
  [[nodiscard]] virtual absl::StatusOr<SpokeBox> SetBoxNetwork(
      const std::string& box_id, const NetworkChange& change,
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

  // Liveness, capacity, the state of the spoke's Docker engine, the images it accepts, and the
  // boxes changed after `since` in its change feed.
  [[nodiscard]] virtual absl::StatusOr<SpokeHealth> HealthSince(std::chrono::milliseconds timeout,
                                                                const FeedPosition& since) = 0;
  // The same, from no position (every box counts as changed).
  [[nodiscard]] absl::StatusOr<SpokeHealth> Health(std::chrono::milliseconds timeout) {
    return HealthSince(timeout, {});
  }

  // The removals the spoke made on its own after `after_seq` of the journal `journal_id` (all
  // it holds for another or an empty id), at most 100. Unimplemented from a spoke that keeps
  // no journal (an older one), and from clients that do not ask (this default).
  [[nodiscard]] virtual absl::StatusOr<SpokeRemovals> ListRemovals(
      const std::string& journal_id, std::uint64_t after_seq, std::chrono::milliseconds timeout) {
    (void)journal_id;
    (void)after_seq;
    (void)timeout;
    return absl::UnimplementedError("this spoke client does not list removals");
  }
};

}  // namespace llmbox::hub::cluster
