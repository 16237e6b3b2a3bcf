// hub/boxes/registry.h
//
// The hub's side of a box's life: it reserves the id in the Store, places the box on a spoke,
// keeps the activation token (by hash) and the authorize URL (server-side only), and turns
// spoke answers into what the hub reports. The MCP tools (box_tools.h) and the activation
// page call it; it never talks Docker, only to the spokes (through cluster::SpokeClient).
//
//   BoxRegistry registry(store, spokes, clock, {.public_url = "https://hub.example.com"});
//   LLMBOX_ASSIGN_OR_RETURN(CreatedBox box, registry.Create({.box_id = "demo"}, progress));
//   // box.auth_url == "https://hub.example.com/auth/<token>"; the token is never stored
//
// Ownership: a box belongs to the principal that created it (auth::Principal, record.owner).
// Every call on a box takes the caller and acts only on the caller's own boxes; another
// principal's box answers exactly as a box that does not exist (the same NotFound message,
// from the same lookup: no existence oracle). An admin acts on every box. Box ids stay unique
// across the hub, so creating a taken id is AlreadyExists, without saying whose it is.
//
// Quotas: with a QuotaBook, a create and an exec first ask it for the caller's place
// (quota_book.h): boxes alive (counted in the store), creates per hour, execs at once and
// exec seconds per hour, each exec charged its duration on every path out.
//
// Errors: InvalidArgument (bad id, unknown spoke, bad command), AlreadyExists (id taken),
// NotFound (no such box, or not the caller's), Unavailable (spoke down), DeadlineExceeded,
// ResourceExhausted (spoke full, or the caller's quota: the message names the limit and when
// it frees); messages say what to do. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/auth/principal.h"
#include "hub/boxes/live_views.h"
#include "hub/boxes/quota_book.h"
#include "hub/boxes/removal_audit.h"
#include "hub/boxes/spoke_monitor.h"
#include "hub/cluster/spoke_client.h"
#include "hub/store/store.h"

namespace llmbox::hub::metrics {
class HubMetrics;
}

namespace llmbox::hub::boxes {

// The spokes the hub can place boxes on, by name. Thread-safe.
class SpokeDirectory {
 public:
  // Adds a spoke (`client` never null), or replaces the one of that name.
  void Add(std::string name, std::shared_ptr<cluster::SpokeClient> client, bool local);
  // Forgets a spoke; nothing when unknown.
  void Remove(std::string_view name);
  // nullptr when unknown.
  std::shared_ptr<cluster::SpokeClient> Find(std::string_view name) const;
  struct Entry {
    std::string name;
    bool local = false;
    std::shared_ptr<cluster::SpokeClient> client;
  };
  std::vector<Entry> List() const;  // by name

 private:
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> spokes_;
};

struct RegistryOptions {
  std::string public_url = "http://127.0.0.1:8080";  // no trailing slash
  std::string
      default_spoke;  // empty: placement (SpokeMonitor::Place); set: boxes go there unless named
  std::string default_image;                          // empty: the spoke's default
  std::chrono::milliseconds create_timeout{180'000};  // spoke CreateBox, image pull included
  std::chrono::milliseconds call_timeout{15'000};     // list/destroy/logs/health/network
  // What get_llmbox waits for the box's live part (its network) before it answers without it.
  std::chrono::milliseconds live_timeout{5'000};
  // How long get_llmbox answers a box's network from what its spoke last said (live_views.h)
  // before it asks the spoke again, when the spoke's change feed does not vouch for it (a
  // spoke without one, or not heard within this time); 0: every get asks.
  std::chrono::milliseconds live_ttl{60'000};
  // How long it answers at most when the spoke's feed vouches for it (no change reported).
  std::chrono::milliseconds live_tracked_ttl{600'000};
  std::chrono::milliseconds submit_timeout{90'000};
  // How long one spoke's reconcile (ReconcileSpoke) may go on starting calls to it; what is
  // left waits for the next reconcile.
  std::chrono::milliseconds reconcile_budget{60'000};
  std::chrono::seconds default_exec_timeout{60};
  std::chrono::seconds max_exec_timeout{300};
  std::uint32_t max_exec_output_bytes = 64 << 10;
  std::uint32_t default_log_lines = 200;
  std::uint32_t max_log_lines = 5000;
  std::uint32_t max_log_bytes = 64 << 10;
  // Spoke states, health polling and placement (spoke_monitor.h).
  MonitorOptions monitor;
  // Told of every create and code submission (/metrics); not owned, may be null.
  metrics::HubMetrics* metrics = nullptr;
  // Audit: where every reconcile of a spoke records the boxes it removed on its own
  // (removal_audit.h); not owned, may be null (not recorded).
  RemovalAudit* removal_audit = nullptr;
};

struct CreateRequest {
  std::string box_id;  // empty: the hub picks one
  std::string image;
  std::string description;
  std::string spoke;  // empty: placement
  // Who creates it, and so owns it.
  auth::Principal owner = auth::Principal::Anonymous();
  // What the box may reach; unset: the spoke's default. The spoke checks it against its own
  // policy (PermissionDenied saying what it allows).
  std::optional<cluster::NetworkPolicy> network;
};

struct CreatedBox {
  store::BoxRecord record;
  std::string auth_url;         // <public_url>/auth/<token>
  cluster::BoxNetwork network;  // as the spoke made it
};

// A box with what only its spoke knows.
struct BoxDetails {
  store::BoxRecord record;
  // The box's network, its latest refusals included (as its spoke last said, while its change
  // feed reports no change of the box, or now); or why the spoke could not say (the spoke named).
  // nullopt: not asked (the box is gone, or still being created).
  std::optional<absl::StatusOr<cluster::BoxNetwork>> network;
  // Set when the box's spoke is unreachable: "spoke NAME unreachable since <time>: <last
  // error>"; the record is then the registry's last word, not asked of the spoke.
  std::optional<std::string> spoke_unreachable;
};

// What destroy_llmbox came to.
struct DestroyOutcome {
  // The spoke could not be reached: the destroy is recorded (store::BoxRecord::
  // destroy_queued_at_ms) and completed when the spoke answers again.
  bool queued = false;
  std::string note;  // for the caller when queued: which spoke, since when, what happens next
};

struct LogsResult {
  std::string logs;
  bool truncated = false;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;
  bool timed_out = false;
};

// What a code submission came to (for the activation page).
struct SubmitResult {
  bool activated = false;
  std::string session_url;
  std::string box_error;  // the box's own words when the code was refused
  std::uint32_t attempts_remaining = 0;
  store::BoxRecord record;
};

// Reports progress of a long call: (done, total, what is happening).
using ProgressFn = std::function<void(double, double, std::string_view)>;

class BoxRegistry {
 public:
  // `store`, `spokes`, `clock` and `quotas` must outlive the registry. `quotas` null: no
  // quotas (tests of other things; the hub always has a book).
  BoxRegistry(store::Store& store, SpokeDirectory& spokes, common::Clock& clock,
              RegistryOptions options, QuotaBook* quotas = nullptr);

  // The box belongs to request.owner, and counts against its quotas.
  [[nodiscard]] absl::StatusOr<CreatedBox> Create(const CreateRequest& request,
                                                  const ProgressFn& progress);
  // The calls on one box: NotFound when there is no such box or it is not `caller`'s (and
  // `caller` is no admin), with the same message either way.
  [[nodiscard]] absl::StatusOr<store::BoxRecord> Get(const auth::Principal& caller,
                                                     std::string_view box_id);
  // Get, and the box's network: from what its spoke last said while that holds (LiveViews: no
  // change of the box in its spoke's feed; at most live_ttl from a spoke without one), else asked
  // of its spoke within live_timeout; an answer that shows the box in another phase or with another
  // session URL (it stopped, or restarted) updates the record at once. A spoke that cannot answer
  // fails only `network`, never the call.
  [[nodiscard]] absl::StatusOr<BoxDetails> GetDetails(const auth::Principal& caller,
                                                      std::string_view box_id);
  // Changes the box's network on its spoke (set_llmbox_network) and returns the network now.
  // The spoke's errors keep their code and words: InvalidArgument for an entry it cannot
  // parse, PermissionDenied saying what its policy allows.
  [[nodiscard]] absl::StatusOr<cluster::BoxNetwork> SetNetwork(
      const auth::Principal& caller, std::string_view box_id, const cluster::NetworkChange& change);
  // One page of the caller's boxes (list_llmboxes; filtered in the store by owner), or of
  // every box for an admin (then filter.owner, when set, narrows to one owner): at most `limit`
  // boxes after `after`, read by index. PermissionDenied when a caller that is no admin names
  // another owner in filter.owner.
  [[nodiscard]] absl::StatusOr<store::BoxPage> ListPage(
      const auth::Principal& caller, store::BoxFilter filter,
      const std::optional<store::BoxPosition>& after, std::size_t limit);
  // Destroys on the spoke, then forgets the box. A box its spoke no longer has is forgotten too.
  // When the spoke is unreachable (the monitor says so, or the call cannot reach it) the
  // destroy is queued instead (DestroyOutcome::queued), and completed by ReconcileSpoke.
  [[nodiscard]] absl::StatusOr<DestroyOutcome> Destroy(const auth::Principal& caller,
                                                       std::string_view box_id);
  [[nodiscard]] absl::StatusOr<LogsResult> Logs(const auth::Principal& caller,
                                                std::string_view box_id,
                                                std::optional<std::uint32_t> tail);
  // `cancel` may be set from another thread to abandon the exec. Takes one of the caller's
  // concurrent execs for as long as it runs and charges its duration to the caller's exec
  // seconds, also when it fails, times out or is cancelled.
  [[nodiscard]] absl::StatusOr<ExecResult> Exec(
      const auth::Principal& caller, std::string_view box_id, const std::vector<std::string>& argv,
      std::optional<std::chrono::seconds> timeout,
      const std::function<void(std::function<void()>)>& on_cancel);
  // The origin auth URLs are built on (set once the hub knows its bound port).
  void SetPublicUrl(std::string public_url);

  // Activation (the page): the box whose token this is.
  [[nodiscard]] absl::StatusOr<store::BoxRecord> FindByToken(std::string_view token);
  // Makes `email` the box's activation owner unless someone claimed it first; returns the
  // owner it has now. The activation page calls it when sign-in gating is on. The first
  // signed-in person claims a box, unless RequiredActivator names someone: then only that
  // email can claim it (the others are refused as someone else's box).
  [[nodiscard]] absl::StatusOr<std::string> ClaimActivation(std::string_view box_id,
                                                            std::string_view email);
  // The one person allowed to activate `record`, when the hub knows one; nullopt: the first
  // signed-in person claims it. A box created by a principal with a verified email (a person
  // signed in through the hub's OAuth server: auth::Principal::verified_email) answers that
  // email, lowercase (the activation page's sign-in gives emails lowercase); API keys and the
  // anonymous principal carry none.
  static std::optional<std::string> RequiredActivator(const store::BoxRecord& record);
  // The box this token belonged to when it was destroyed; NotFound when none.
  [[nodiscard]] absl::StatusOr<store::DestroyedBox> FindDestroyedByToken(std::string_view token);
  // Sends the code to the box's stdin through its spoke. One code at a time per box: a
  // second submission while one is in flight is FailedPrecondition and never reaches the box.
  [[nodiscard]] absl::StatusOr<SubmitResult> SubmitCode(std::string_view token,
                                                        std::string_view code);

  // What the hub does once as it starts: the monitor's first health round, whose return hooks
  // then reconcile each spoke that answered (on the monitor's pool; unreachable spokes at their
  // return), without waiting for them. Call before serving.
  void Start();

  // Brings the registry in line with the spokes: a box its spoke no longer has becomes gone; a
  // box the spoke reports in another phase takes it; a managed box the registry does not know
  // is logged (and returned); a box left creating by a hub that stopped mid-create is taken
  // down and forgotten. Spokes that cannot be reached are skipped (and logged).
  std::vector<std::string> Reconcile();
  // One spoke, both ways at once: first the destroys queued for it, then its boxes against the
  // registry's (boxes it no longer has become gone; boxes the registry does not know, trial
  // boxes aside, are taken down), each logged. The monitor's return hook. Returns the boxes
  // the registry did not know ("spoke/box"). Starts no call to the spoke after
  // reconcile_budget; the rest waits for the next reconcile.
  std::vector<std::string> ReconcileSpoke(const std::string& spoke);

  // The spokes' states, health and placement. Lives as long as the registry.
  SpokeMonitor& monitor() { return monitor_; }

 private:
  // Create and SubmitCode without their metrics.
  [[nodiscard]] absl::StatusOr<CreatedBox> CreateUnmetered(const CreateRequest& request,
                                                           const ProgressFn& progress);
  [[nodiscard]] absl::StatusOr<SubmitResult> SubmitCodeUnmetered(std::string_view token,
                                                                 std::string_view code);
  std::string AuthUrl(std::string_view token) const;
  // DestroyBox for `box_id` on `spoke` within call_timeout; the spoke's status.
  [[nodiscard]] absl::Status DestroyOnSpoke(cluster::SpokeClient& spoke, const std::string& box_id);
  // Whether a record still creating has no create running for it in this process (a hub that
  // stopped mid-create left it).
  bool InterruptedCreate(const store::BoxRecord& record);
  // `record` as its spoke's answer `box` shows it (phase, session URL, last error, container),
  // or nullopt when the answer changes nothing or must not decide (a code is being tried).
  std::optional<store::BoxRecord> Observed(const store::BoxRecord& record,
                                           const cluster::SpokeBox& box);
  [[nodiscard]] absl::StatusOr<std::shared_ptr<cluster::SpokeClient>> SpokeFor(
      const store::BoxRecord& record) const;
  std::int64_t NowMs();

  // Unreachable spokes (issue 17).
  // "unreachable since <time>: <last error>" while the monitor holds `spoke` unreachable.
  std::optional<std::string> UnreachableWhy(std::string_view spoke) const;
  // SpokeFor, but Unavailable at once (the spoke named, since when) while the monitor holds
  // the box's spoke unreachable: exec, logs, network and codes do not wait out a timeout.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<cluster::SpokeClient>> ReachableSpokeFor(
      const store::BoxRecord& record) const;
  // Records the destroy of `record` for its spoke, which `why` ("is unreachable since ...",
  // "did not answer (...)"), and says so.
  [[nodiscard]] absl::StatusOr<DestroyOutcome> QueueDestroy(const store::BoxRecord& record,
                                                            const std::string& why);
  // While `spoke` drains with --destroy-pending: queues the destroy of its pending boxes.
  void QueueDrainingPending(const std::string& spoke);
  // Completes the destroys queued for `spoke`, oldest first. One the spoke refuses stays
  // queued and is tried again after a back-off (30 s, doubling up to 10 min), logged, while the
  // rest go on. False when the spoke could not be reached or `deadline` passed.
  bool CompleteQueuedDestroys(const std::string& spoke, cluster::SpokeClient& client,
                              common::Clock::SteadyTime deadline);
  // Whether `record` (from a list of queued destroys) is still the box under its id, its
  // destroy still queued, and no create of this process runs for the id.
  bool StillQueued(const store::BoxRecord& record);
  // Queued destroys the spoke refused, by "<canonical id>/<token hash>": when to try again.
  struct DestroyRetry {
    std::chrono::milliseconds wait{0};
    common::Clock::SteadyTime next{};
  };
  std::mutex retry_mu_;  // guards destroy_retries_
  std::map<std::string, DestroyRetry> destroy_retries_;
  std::mutex reconciling_mu_;          // guards reconciling_
  std::set<std::string> reconciling_;  // spokes a ReconcileSpoke runs for

  store::Store& store_;
  SpokeDirectory& spokes_;
  common::Clock& clock_;
  RegistryOptions options_;
  QuotaBook* quotas_;                    // null: none
  mutable std::mutex options_mu_;        // guards options_.public_url
  std::mutex creating_mu_;               // guards creating_
  std::multiset<std::string> creating_;  // canonical ids of creates running in this process
  std::mutex submit_mu_;                 // guards submitting_
  std::set<std::string> submitting_;     // canonical ids of boxes with a code in flight
  LiveViews live_;                       // what the spokes last said of boxes' networks
  // Last: its return hooks run on threads of its own and use every member above, so it stops
  // them before anything else goes.
  SpokeMonitor monitor_;
};

}  // namespace llmbox::hub::boxes
