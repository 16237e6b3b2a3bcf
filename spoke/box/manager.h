// spoke/box/manager.h
//
// A box's whole life on one Docker engine: create (network, container, injected files, the
// authorize URL captured from the console), code submission, get/list from the engine's own
// state (so a restarted spoke loses nothing), destroy, logs and exec with secrets redacted.
//
// Two identities (docs/decisions/005-two-identities.md). The box container holds Claude, its
// login, its credentials and its console, as root with a small capability set. Everything
// exec runs as ExecIdentity::kUser goes to the box's exec container instead: made on the
// first such exec from the box's image, as an unprivileged user (ExecOptions::user) without
// capabilities or a way to gain any, on the box's network, with its own pids and memory
// limits, sharing only /workspace (a volume of the box container) with Claude. From there no
// process, file outside /workspace or TTY of the box container can be reached. kBox runs as
// root in the box container: for the spoke's and an operator's own needs, never a chatbot's.
//
//   BoxManager boxes(engine, common::SystemClock::Get(), options);
//   LLMBOX_RETURN_IF_ERROR(boxes.Recover());                  // after a (re)start
//   LLMBOX_ASSIGN_OR_RETURN(CreatedBox created, boxes.Create({.box_id = "my-box"}));
//   // created.authorize_url goes to the hub, never to a chatbot
//   LLMBOX_ASSIGN_OR_RETURN(SubmitOutcome outcome, boxes.SubmitCode("my-box", code));
//
// Every failure during Create removes what was made so far (container, network): a failed
// create leaves nothing behind. Errors name the box and the step, with the engine's message.
//
// Time (the created stamp, the url_timeout and submit_timeout deadlines) comes from the
// injected Clock; waits for console output end at the deadline or when the box prints.
//
// Thread-safe: calls for different boxes run in parallel; creates are capped by
// max_concurrent_creates; one code submission per box at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "spoke/box/workspace_disks.h"
#include "spoke/docker/engine.h"
#include "spoke/egress/egress.h"
#include "spoke/egress/policy.h"
#include "spoke/egress/refusal.h"
#include "spoke/hooks/hook_runner.h"

namespace llmbox::spoke::box {

// The exec user's share of a box (its exec container).
struct ExecOptions {
  // uid:gid of the exec user. The workspace is group-writable for its gid.
  int uid = 1000;
  int gid = 1000;
  int64_t memory_bytes = int64_t{1} << 30;  // 0: unlimited
  int64_t pids_limit = 256;                 // 0: unlimited
  int max_concurrent = 4;                   // execs running at once, per box
};

// How much of the engine's data root a box may use (docs/spoke.md, boxes.disk). Every limit
// is enforced by the engine or the kernel, never by the spoke watching.
enum class WorkspaceType {
  kTmpfs,  // a tmpfs volume: memory-backed, any engine
  kLoop,   // an ext4 image on a loop device (WorkspaceDisks): the engine on this host, root
};

struct DiskOptions {
  // The console log of the box and exec containers: json-file, rotated at log_max_bytes,
  // log_max_files files kept (older output is dropped).
  int64_t log_max_bytes = int64_t{10} << 20;
  int log_max_files = 3;
  // /workspace: a filesystem of this size, of workspace_type. A tmpfs is memory-backed (its
  // pages count against the memory limit of the container that writes them; gone when both
  // containers stop); a loop disk is an image file under state_dir/workspaces. 0: an
  // unbounded volume on the data root.
  int64_t workspace_bytes = int64_t{2} << 30;
  WorkspaceType workspace_type = WorkspaceType::kTmpfs;
  // The exec container's root filesystem is read-only; /tmp and /var/tmp are tmpfs of this
  // size each (memory-backed, like the workspace).
  int64_t exec_tmp_bytes = int64_t{256} << 20;
  // The writable layer of both containers (StorageOpt size): only when the engine's storage
  // driver supports it (overlay2 on xfs mounted with pquota). 0: unbounded.
  int64_t root_bytes = 0;
};

enum class ExecIdentity {
  kUser,  // the box's unprivileged exec user, in its exec container
  kBox,   // root in the box container, beside Claude (the spoke's own needs)
};

struct BoxManagerOptions {
  std::string spoke_name = "local";
  std::string default_image = "llmbox-box:dev";
  std::vector<std::string> allowed_images;  // besides default_image
  int max_boxes = 20;
  int max_concurrent_creates = 4;
  // Host path of the Claude binary, bind-mounted read-only at /usr/local/bin/claude. Empty:
  // the image provides claude on its PATH.
  std::string claude_bin;
  std::vector<std::string> remote_control_args = {"--spawn", "same-dir"};
  int64_t memory_bytes = int64_t{4} << 30;
  int64_t nano_cpus = 2'000'000'000;
  int64_t pids_limit = 1024;
  std::chrono::milliseconds url_timeout{30'000};
  std::chrono::milliseconds submit_timeout{60'000};
  std::chrono::seconds stop_grace{10};
  int max_activation_attempts = 5;
  ExecOptions exec;
  DiskOptions disk;
  // Containers a box may be connected to (peers), by name.
  std::vector<std::string> allowed_peers;
  // What boxes may reach (docs/network.md): the modes, the base allowlist, what a box may add.
  egress::SpokePolicy egress;
  // Where hook state (between a box's create and destroy hooks) and activation attempt
  // counts are kept, in files at 0600. Required when hooks are given; without it, attempts
  // are counted in memory only.
  std::string state_dir;
};

// kCreating and kActivating are reported while a Create or a SubmitCode for the box is in
// flight on this spoke (they live in memory; the engine only knows the others).
enum class BoxPhase { kCreating, kPending, kActivating, kReady, kStopped };

std::string_view PhaseName(BoxPhase phase);

// A box's network policy as get shows it.
struct BoxNetworkView {
  egress::Mode mode = egress::Mode::kAllowlist;
  std::vector<std::string> allow;  // the box's own entries (canonical text)
  std::vector<std::string> base;   // the spoke's base list (allowlist mode)
  std::string proxy;               // "http://<gateway>:<port>", what the box's HTTP(S)_PROXY say
  // The latest refused connections, oldest first (Get only; List leaves it empty).
  std::vector<egress::Refusal> refusals;
};

struct BoxView {
  std::string box_id;
  std::string container_id;
  std::string container_name;
  BoxPhase phase = BoxPhase::kPending;
  std::string image;
  std::string description;
  std::string owner;
  std::string container_state;  // Docker's
  std::chrono::system_clock::time_point created;
  std::string session_url;  // once ready (kept in memory; recovered from logs after restart)
  std::string last_error;   // redacted
  int activation_attempts = 0;
  BoxNetworkView network;
  // Moves with each connection the box was refused (egress::BoxEgress::RefusalMark), in Get
  // and List alike; 0 without egress.
  std::uint64_t refusal_mark = 0;
};

struct CreateBoxRequest {
  std::string box_id;
  std::string image;  // empty: the default image
  std::string description;
  std::string owner;
  std::vector<std::string> peers;
  // The box's network policy; unset: the spoke's default mode and no entries of its own.
  // Checked against options.egress (PermissionDenied saying what the spoke allows).
  std::optional<egress::BoxPolicy> network;
};

// A change to a live box's allowlist (set_llmbox_network). Entries in egress::ParseEntry's
// text form; removing one the box does not have is not an error.
struct NetworkChange {
  std::vector<std::string> add;
  std::vector<std::string> remove;
  std::optional<egress::Mode> mode;  // unset: unchanged
};

struct CreatedBox {
  BoxView box;
  std::string authorize_url;  // for the hub only
};

struct SubmitOutcome {
  bool activated = false;
  std::string session_url;
  std::string box_error;      // the box's own words, redacted
  std::string authorize_url;  // a fresh one when the box started another login
  int attempts_remaining = 0;
  BoxView box;
};

class BoxManager {
 public:
  // `engine`, `clock`, `hooks` (may be null: no hooks), `egress` and `workspace_disks` (needed
  // with disk.workspace_type kLoop, else unused) must outlive the manager. Box networks are
  // always `internal` (no route out); `egress` (the spoke's proxy and host rules) is their only
  // way out. Null: no proxy, so boxes reach nothing beyond their network.
  BoxManager(docker::DockerEngine& engine, common::Clock& clock, BoxManagerOptions options,
             hooks::HookRunner* hooks = nullptr, egress::BoxEgress* egress = nullptr,
             WorkspaceDisks* workspace_disks = nullptr);
  ~BoxManager();

  // Re-reads the managed boxes from the engine and re-attaches to pending ones, so they can
  // still be activated after a spoke restart. Runs CheckDisk first (its error, if any).
  [[nodiscard]] absl::Status Recover();

  // Checks that the engine can enforce every configured disk limit: with disk.root_bytes set,
  // makes (and removes, never starts) a container of the default image with that size; with
  // loop workspaces, that they can be made (WorkspaceDisks::Check). FailedPrecondition with
  // the engine's words and the fix when it cannot. Call at start.
  [[nodiscard]] absl::Status CheckDisk();

  [[nodiscard]] absl::StatusOr<CreatedBox> Create(const CreateBoxRequest& request);
  [[nodiscard]] absl::StatusOr<SubmitOutcome> SubmitCode(
      const std::string& box_id, const std::string& code,
      std::optional<std::chrono::milliseconds> timeout = {});
  [[nodiscard]] absl::StatusOr<BoxView> Get(const std::string& box_id);
  [[nodiscard]] absl::StatusOr<std::vector<BoxView>> List();
  // Stops (SIGTERM, grace, SIGKILL) and removes the box, its network and its egress (proxy
  // listener, host rules, saved policy). Destroying a box
  // that is already gone is OK (returns false). A container whose removal another call began
  // is waited for (a few seconds at most) rather than reported as a failure.
  [[nodiscard]] absl::StatusOr<bool> Destroy(const std::string& box_id,
                                             std::optional<std::chrono::seconds> grace = {});
  [[nodiscard]] absl::StatusOr<docker::LogsResult> Logs(const std::string& box_id, int tail,
                                                        size_t max_bytes);
  // Runs `spec.argv` in the box as `identity` (spec.user is ignored: the identity decides).
  // kUser makes the box's exec container on first use (and starts it again when it stopped),
  // and refuses more than ExecOptions::max_concurrent execs at once per box
  // (ResourceExhausted). The working directory defaults to /workspace.
  [[nodiscard]] absl::StatusOr<docker::ExecResult> Exec(const std::string& box_id,
                                                        const docker::ExecSpec& spec,
                                                        ExecIdentity identity);

  // Changes the box's network policy; the new policy applies to its next connection. The
  // result must pass egress::CheckBoxPolicy (PermissionDenied saying what the spoke allows);
  // InvalidArgument for an entry that does not parse; NotFound for an unknown box. Returns the
  // box as Get would.
  [[nodiscard]] absl::StatusOr<BoxView> SetNetwork(const std::string& box_id,
                                                   const NetworkChange& change);

  // True while Create() runs for this box id (its network may exist before its container).
  bool IsBeingCreated(const std::string& box_id);

  // This spoke's boxes by phase as the manager knows them, without asking the engine (the
  // metrics' box gauge calls it at every scrape): the phases its latest listing of the engine
  // showed (every List, which the reaper calls each reaper.interval, every Get and every other
  // lookup of a box), with what it did since (creates, activations, destroys) and the boxes
  // being created or activated now. A container that stops or vanishes behind the spoke's back
  // is counted so from the next listing on. Phases without boxes are absent.
  std::map<BoxPhase, int> CountByPhase();

  // Get and List report a box as kCreating from the moment its create passed the uniqueness
  // and capacity checks until Create returns (hooks, network, container, the authorize URL),
  // also before its container exists; and as kActivating while a code submitted for it is
  // being tried.

  // Label keys on every managed container and network.
  static constexpr const char* kManagedLabel = "io.llmbox.managed";
  static constexpr const char* kBoxIdLabel = "io.llmbox.box-id";
  static constexpr const char* kSpokeLabel = "io.llmbox.spoke";
  // Whether a managed container or network with these labels is this spoke's: its spoke label
  // names this spoke, or it has none (from before the label). Another spoke may share the
  // engine, and its boxes and networks are not this spoke's to restore, reap or destroy.
  bool Owns(const docker::Labels& labels) const;
  static constexpr const char* kOwnerLabel = "io.llmbox.owner";
  static constexpr const char* kDescriptionLabel = "io.llmbox.description";
  static constexpr const char* kImageLabel = "io.llmbox.image";
  // On a box's exec container (instead of kManagedLabel): the box it serves.
  static constexpr const char* kExecForLabel = "io.llmbox.exec-for";
  // On a box's container: the network mode it was created with (informational; the policy
  // itself, which set_llmbox_network changes, is kept in <state_dir>/egress/<box>).
  static constexpr const char* kNetworkModeLabel = "io.llmbox.network-mode";
  // How many refusals Get shows.
  static constexpr size_t kRefusalsShown = 10;

 private:
  struct Live;  // the console of a pending box
  // What this spoke keeps in memory about one box (the engine keeps the rest). An entry
  // exists while any field differs from its default; keyed by the canonical box id.
  struct BoxState {
    bool reserved = false;            // a Create for this id is running
    std::optional<BoxView> creating;  // ... and past its checks: reported kCreating
    bool activating = false;          // a code is being tried
    std::shared_ptr<Live> live;       // the console, while pending
    std::string session_url;
    // When the box's container had started when session_url was read: a later start (a restart)
    // means a new session, read again from what it printed since.
    std::chrono::system_clock::time_point session_started;
    std::string last_error;  // redacted
    int attempts = 0;
    int execs = 0;  // kUser execs running
  };
  [[nodiscard]] absl::StatusOr<docker::ContainerInfo> FindContainer(const std::string& box_id);
  // Lists the managed containers (all spokes') and remembers this spoke's boxes' phases from
  // the list (for CountByPhase).
  [[nodiscard]] absl::StatusOr<std::vector<docker::ContainerInfo>> ListManaged();
  // Remembers one box's phase after this manager changed it; nullopt: it is gone.
  void RememberBox(const std::string& box_id, std::optional<BoxPhase> phase);
  // Whether a managed container is this spoke's (its spoke label names this spoke, or it has
  // none): another spoke may share the engine.
  bool Mine(const docker::ContainerInfo& info) const;
  // Attaches to the console of a running pending box, with what it printed since its
  // container's last start (the authorize URL its login waits on).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<Live>> AttachConsole(
      const std::string& container_id);
  // A ready box's session URL, read again from its console since its container last started
  // when that start is newer than the one the known URL came from (its engine or its restart
  // policy restarted it: the old session ended with its process). No URL printed yet since the
  // restart: none is reported. Engine errors leave what is known.
  void RefreshSession(const std::string& box_id, const std::string& container_id);
  // A pending box whose console ended while its container runs was restarted, and its login
  // with it: attaches to the new console and answers with the new authorize URL (the code,
  // meant for the old login, is not used and costs no attempt). Unavailable while the box has
  // not printed one yet.
  [[nodiscard]] absl::StatusOr<SubmitOutcome> RestartedLogin(const std::string& box_id,
                                                             const docker::ContainerInfo& info,
                                                             const std::string& old_url);
  // Recover's work; at runtime (a console to re-attach) only the per-box state, not the start's
  // clean-up, disk check or host rules.
  [[nodiscard]] absl::Status RecoverBoxes(bool at_start);
  // Every live box's proxy and host rules, from its network and saved policy (narrowed to what
  // the spoke allows now); the host holds exactly these afterwards.
  [[nodiscard]] absl::Status RestoreEgress(const std::vector<docker::ContainerInfo>& list);
  [[nodiscard]] absl::StatusOr<CreatedBox> CreateReserved(const CreateBoxRequest& request,
                                                          const std::string& image,
                                                          const egress::BoxPolicy& policy);
  void Cleanup(const std::string& container_id, const std::string& network);
  // The id of the box's running exec container, made or started as needed.
  [[nodiscard]] absl::StatusOr<std::string> ExecContainerFor(const docker::ContainerInfo& box);
  // Removes the box's exec containers (before the box: they hold its workspace volume).
  [[nodiscard]] absl::Status RemoveExecContainers(const std::string& box_id);
  // Removes a container (force). Gone already is OK; when the engine answers that its removal
  // is already in progress (another destroy, the reaper), waits on the clock until it is gone,
  // for at most a few seconds (DeadlineExceeded saying so after that).
  [[nodiscard]] absl::Status RemoveContainerAndWait(const std::string& container_id);
  // A box's network as the host sees it and the policy it has now.
  struct NetState {
    egress::BoxNetwork network;
    egress::BoxPolicy policy;
  };
  // The box's network and policy: remembered, else read back (its network from the engine,
  // its policy from its state file, else the mode on its label).
  [[nodiscard]] absl::StatusOr<NetState> NetStateOf(const std::string& box_id,
                                                    const docker::ContainerInfo* box);
  [[nodiscard]] absl::StatusOr<egress::BoxNetwork> ReadNetwork(const std::string& box_id);
  egress::BoxPolicy ReadPolicy(const std::string& box_id, const docker::ContainerInfo* box);
  std::string PolicyPath(const std::string& box_id) const;  // "" without a state_dir
  [[nodiscard]] absl::Status SavePolicy(const std::string& box_id, const egress::BoxPolicy& policy);
  // The environment that points a container on the box's network at its proxy.
  std::vector<std::string> ProxyEnv(const egress::BoxNetwork& network) const;
  void FillNetworkView(const std::string& box_id, BoxView* view, bool with_refusals);
  bool LoopWorkspace() const { return options_.disk.workspace_type == WorkspaceType::kLoop; }
  std::string HookStatePath(const std::string& box_id) const;
  // <state_dir>/<folder>/<box_id>; "" without a state_dir.
  std::string StatePath(std::string_view folder, const std::string& box_id) const;
  std::string AttemptsPath(const std::string& box_id) const;  // "" without a state_dir
  // Where a ready box's session URL is kept, for a restart after its console log rotated
  // past it (boxes.disk.log_max_size). "" without a state_dir.
  std::string SessionUrlPath(const std::string& box_id) const;
  [[nodiscard]] absl::Status SaveHookState(const std::string& box_id, const std::string& state);
  // Runs the destroy hooks with the box's saved state and forgets it (kept when they fail,
  // so that destroying again retries them).
  [[nodiscard]] absl::Status RunDestroyHooks(const hooks::BoxFacts& facts);
  BoxView ViewOf(const docker::ContainerInfo& info);
  // Marks the box kCreating in Get/List until the returned guard's Done() or destruction.
  class CreatingMark;
  std::shared_ptr<Live> LiveOf(const std::string& box_id);
  // Changes the state of `box_id` under mu_ (held by the caller) and drops the entry when
  // nothing is left in it.
  template <typename Change>
  void UpdateLocked(const std::string& box_id, Change change);

  docker::DockerEngine& engine_;
  common::Clock& clock_;
  const BoxManagerOptions options_;
  hooks::HookRunner* hooks_;
  egress::BoxEgress* egress_;
  WorkspaceDisks* workspace_disks_;

  std::mutex mu_;
  std::map<std::string, NetState> nets_;  // by canonical box id, once known
  std::mutex network_change_mu_;          // one SetNetwork at a time
  int creates_in_flight_ = 0;             // boxes with `reserved` set
  std::map<std::string, BoxState> states_;
  // What CountByPhase counts: each box's phase as the engine last showed it (nullopt: destroyed
  // here), by canonical id, with the number of the change that set it. A listing replaces the
  // entries whose change is not newer than the listing's start, so that a listing begun before
  // a create or a destroy finished cannot undo what it did.
  struct KnownPhase {
    std::optional<BoxPhase> phase;
    uint64_t change = 0;
  };
  std::map<std::string, KnownPhase> known_;
  uint64_t changes_ = 0;  // numbers RememberBox's changes
  // One exec-container setup at a time per box (canonical id); dropped with the box.
  std::map<std::string, std::shared_ptr<std::mutex>> exec_setup_;
};

}  // namespace llmbox::spoke::box
