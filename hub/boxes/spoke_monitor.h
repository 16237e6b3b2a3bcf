// hub/boxes/spoke_monitor.h
//
// The state of every spoke as the hub sees it, and placement by it. A spoke's state combines
// what an operator set (store::SpokeAdminRecord: `llmbox-hub spoke cordon|uncordon|drain`,
// read from the store every round, so the command reaches a serving hub) with what the hub
// observed (store::SpokeConditionRecord, written to the store when it changes so that
// `spoke list` shows it from another process and it holds across a restart):
//
//   removed      the spoke left the directory (`spoke remove`) but the registry still has
//                boxes on it
//   unreachable  its health calls fail to reach it (unreachable_after in a row); since when,
//                and the last error
//   degraded     it answers, but its recent creates fail over the threshold (engine errors,
//                timeouts, a box that never printed its URL); the reason and since when
//   draining     set by an operator: no new boxes; its boxes are waited for
//   cordoned     set by an operator: no new boxes
//   ready        placement may choose it
// (the first that applies, in this order). Placement (Place) chooses only ready spokes.
//
// Out of rotation by itself: every placed create reports its outcome (RecordCreate). Over a
// window of the spoke's latest creates (at most `window`, none older than `window_age`), when
// at least `min_creates` are counted and the share that failed for a reason of the spoke is
// over `failure_threshold`, the spoke becomes degraded. A degraded spoke comes back after its
// health probe answers with a reachable engine AND a trial create succeeds: Poll starts one
// trial (a real CreateBox of a throw-away box, destroyed at once, never in the registry; its
// id starts with kTrialBoxPrefix, which create_llmbox refuses) when the back-off has passed;
// each failed trial doubles the back-off (trial_backoff_min .. trial_backoff_max).
//
// A spoke whose health says its Docker engine is down is passed over by placement ("engine
// down") but is not degraded: degraded comes only from creates that failed, and an engine
// that is down makes no create fail (none is sent there).
//
// Unreachable: when a spoke that was unreachable answers again (and for every spoke the
// first time it answers after the hub starts), the return hook runs for it once: the registry
// completes the destroys queued for it and reconciles it both ways (BoxRegistry::
// ReconcileSpoke). The hook also runs for a spoke whose own counts show a box changed by
// itself (its ready or stopped boxes changed, it holds fewer boxes, or its engine came back),
// so that a box that stopped, was reaped or restarted reaches the registry within a round,
// not at the next periodic reconcile. Hooks run on a pool of return_workers threads of the
// monitor's own, never on the round's thread: a round does not wait for them, so one slow
// spoke's reconcile cannot hold back the others' health rounds (a spoke's hook waiting or
// running is not queued again).
//
// A spoke's health is its own word: a max_boxes over max_boxes_per_spoke is cut to it (and
// logged), so a lying spoke cannot draw every placement.
//
//   SpokeMonitor monitor(store, directory, clock, {.health_interval = 10s});
//   monitor.SetReturnHook([&](const std::string& spoke) { registry.ReconcileSpoke(spoke); });
//   monitor.Poll();                       // the hub runs it every health_interval
//   LLMBOX_ASSIGN_OR_RETURN(std::string spoke, monitor.Place(image, /*exclude=*/{}));
//   ... CreateBox on it ...
//   monitor.RecordCreate(spoke, ClassifyCreateFailure(status), message);
//
// Conditions written before a restart are read back: a spoke the monitor has not seen yet takes
// its recorded condition (a degraded spoke stays degraded until a trial succeeds; an
// unreachable one keeps its "since"). After that the monitor's own observations rule, and the
// store is written only when a spoke's condition or reason changes.
//
// Cost: a round asks every spoke at most max_concurrent_probes at a time (a bounded pool, not
// a thread per spoke), and reads the store three times (admin states, conditions, box counts);
// Place and View never call a spoke or the store: they answer from the last round, so a create
// with 500 spokes costs no 500 health calls.
//
// Thread-safe. Poll runs one round at a time (a second caller waits for the first).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/boxes/live_views.h"
#include "hub/boxes/spoke_state.h"
#include "hub/cluster/spoke_client.h"
#include "hub/store/store.h"

namespace llmbox::hub::boxes {

class SpokeDirectory;  // hub/boxes/registry.h

// Trial boxes' ids start with this; create_llmbox refuses such ids.
inline constexpr std::string_view kTrialBoxPrefix = "llmbox-trial-";

// What a finished create says of its spoke's health.
enum class CreateOutcome {
  kSucceeded,
  kSpokeFault,  // the spoke's: engine error, timeout, lost connection, URL never captured
  kNotCounted,  // the caller's or nobody's: a refused image or policy, a taken id, a full spoke
};

// The outcome a CreateBox failure counts as: Unavailable, DeadlineExceeded, Internal, Unknown,
// DataLoss and Aborted are the spoke's; InvalidArgument, PermissionDenied, AlreadyExists,
// NotFound, FailedPrecondition, ResourceExhausted, Unimplemented and Cancelled are not.
CreateOutcome ClassifyCreateFailure(const absl::Status& status);

struct MonitorOptions {
  std::chrono::milliseconds health_timeout{3'000};  // one Health call
  std::size_t max_concurrent_probes = 32;
  int unreachable_after = 2;  // health calls in a row that fail to reach the spoke
  // Degraded: over the latest `window` creates (none older than window_age), at least
  // min_creates counted and a failed share over failure_threshold.
  std::size_t window = 10;
  std::size_t min_creates = 3;
  double failure_threshold = 0.5;
  std::chrono::milliseconds window_age{600'000};
  std::chrono::milliseconds trial_backoff_min{30'000};
  std::chrono::milliseconds trial_backoff_max{600'000};
  std::chrono::milliseconds trial_timeout{180'000};  // a trial's CreateBox
  std::chrono::milliseconds call_timeout{15'000};    // a trial's DestroyBox
  // Health answers older than this make a spoke unplaceable (not yet asked, or polling
  // stalled); 0: never.
  std::chrono::milliseconds max_health_age{0};
  // Return hooks running at once (threads of the monitor's own, started when first needed).
  std::size_t return_workers = 4;
  // What a spoke's health may claim as its max_boxes (hub.spokes.max_boxes_per_spoke; the
  // spoke's own spoke.max_boxes is at most 1000).
  std::uint32_t max_boxes_per_spoke = 1000;
};

// One spoke as the monitor sees it.
struct SpokeView {
  std::string name;
  bool local = false;
  SpokeState state = SpokeState::kReady;  // effective (spoke_state.h)
  store::SpokeAdminRecord admin;          // what an operator set (kReady when never)
  store::SpokeConditionRecord condition;  // what the hub observed
  // The last health answer; nullopt before the first (or for a removed spoke).
  std::optional<cluster::SpokeHealth> health;
  // The registry's live boxes on it (from the store, as of the last round).
  store::SpokeBoxCount registry_boxes;
  // Creates placed on it that have not reported their outcome yet.
  std::uint32_t creates_in_flight = 0;
  // The outcome window: counted creates and those that failed for the spoke's reason.
  std::uint32_t recent_creates = 0;
  std::uint32_t recent_failures = 0;
  std::int64_t next_trial_ms = 0;  // degraded: when the next trial may start (0: none planned)
};

class SpokeMonitor {
 public:
  // `store`, `directory` and `clock` must outlive the monitor.
  SpokeMonitor(store::Store& store, SpokeDirectory& directory, common::Clock& clock,
               MonitorOptions options);
  ~SpokeMonitor();  // waits for a trial in flight
  SpokeMonitor(const SpokeMonitor&) = delete;
  SpokeMonitor& operator=(const SpokeMonitor&) = delete;

  // Runs on the monitor's pool after a round for each spoke that answered again after it was
  // unreachable (or answered for the first time since the hub started), or whose counts show
  // a box changed by itself. Set before the first Poll. The hook must stay callable until the
  // monitor is destroyed (its destructor waits for the hooks running and drops the queued).
  void SetReturnHook(std::function<void(const std::string& spoke)> hook);

  // Where each round's health answers' change feeds go (live_views.h: the views of changed
  // boxes are dropped), and whose positions the health calls name. Set before the first
  // Poll; `views` must outlive the monitor. Unset: health calls name no position.
  void SetLiveViews(LiveViews* views) { views_ = views; }

  // One round (see the file comment). Store errors are logged and the round goes on with what
  // it had.
  void Poll();

  // Every spoke of the directory (one that joined since the last round: state ready, no health
  // yet), and removed spokes that still hold registry boxes, by name.
  std::vector<SpokeView> View() const;
  // nullopt when neither in the directory nor holding registry boxes.
  std::optional<SpokeView> Find(std::string_view name) const;

  // The spoke for a box that names none: among ready spokes not in `exclude` whose last health
  // answer has a reachable engine, accepts `image` (empty: the spoke's default) and has room
  // (max_boxes over the spoke's boxes plus creates in flight), the one with the most free
  // places (ties: fewer boxes, then the name). Reserves a place (creates_in_flight) that
  // RecordCreate frees. Unavailable when there are no spokes; ResourceExhausted naming each
  // spoke passed over and why (cordoned, draining, degraded since..., unreachable since...,
  // engine down, image, full, tried already, no health answer yet) otherwise. A spoke that
  // missed fewer than unreachable_after health calls keeps its last answer; one that answered
  // its last call with an error is passed over. Counts are the spoke's own (summed in 64 bits,
  // so a lying spoke cannot wrap them) plus creates in flight and creates that succeeded since
  // its last answer. When no round ran yet, runs one (Poll) first.
  [[nodiscard]] absl::StatusOr<std::string> Place(const std::string& image,
                                                  const std::set<std::string>& exclude);

  // A create on `spoke` is over: frees a place Place reserved (when it did) and counts the
  // outcome in the spoke's window; `error` (redacted, the spoke's words) becomes the degraded
  // reason. Unknown spokes are ignored.
  void RecordCreate(std::string_view spoke, CreateOutcome outcome, std::string_view error);
  // Frees a place Place reserved for a create that never reached the spoke (the record could
  // not be inserted, a quota refused), without counting an outcome.
  void CancelPlacement(std::string_view spoke);
  // Reserves a place on `spoke` for a create that named it (Place reserves its own), so that
  // placement counts it while it runs; RecordCreate or CancelPlacement frees it. Unknown
  // spokes are ignored.
  void Reserve(std::string_view spoke);

  // Whether `spoke` is unreachable now (the registry answers get_llmbox from its records and
  // queues destroys for it). Unknown spokes: false.
  bool IsUnreachable(std::string_view spoke) const;

  // A trial box in flight (reconcile leaves it alone).
  bool IsTrialBox(std::string_view box_id) const;

  // Blocks until no trial runs, for at most `limit` of real time (tests, which cannot advance
  // a trial's transport); whether none runs.
  bool WaitForTrials(std::chrono::milliseconds limit);
  // Blocks until no return hook is queued or running, for at most `limit` of real time (the
  // hub's start, and tests); whether none is.
  bool WaitForReturns(std::chrono::milliseconds limit);

 private:
  // One finished create in a spoke's window.
  struct Outcome {
    std::int64_t at_ms = 0;
    bool failed = false;
  };
  // All the monitor knows of one spoke (guarded by mu_).
  struct Spoke {
    bool local = false;
    bool in_directory = false;
    std::shared_ptr<cluster::SpokeClient> client;  // null once it left the directory
    store::SpokeAdminRecord admin;
    store::SpokeConditionRecord condition;  // effective, as View shows it
    // As last written to (or read from) the store; nullopt: unknown (a write failed).
    std::optional<store::SpokeConditionRecord> written;
    bool condition_loaded = false;  // the store's record (from before a restart) was read
    std::optional<cluster::SpokeHealth> health;  // the last good answer (max_boxes capped)
    std::uint32_t reported_max_boxes = 0;        // max_boxes as the spoke said it
    std::int64_t health_at_ms = 0;               // when it came
    std::string probe_error;                     // the last probe's error; empty when it answered
    bool answered = false;                       // since this monitor started
    // Unreachable: probes in a row that did not reach it, since the first of them.
    int missed = 0;
    std::int64_t missed_since_ms = 0;
    bool unreachable = false;
    std::int64_t unreachable_since_ms = 0;
    std::string unreachable_reason;
    // Degraded: set by the window, cleared by a trial.
    bool degraded = false;
    std::int64_t degraded_since_ms = 0;
    std::string degraded_reason;
    std::deque<Outcome> outcomes;  // oldest first; counted outcomes only
    std::string last_failure;      // the latest spoke fault's words
    store::SpokeBoxCount registry_boxes;
    std::uint32_t in_flight = 0;             // creates reserved, outcome not reported yet
    std::uint32_t created_since_health = 0;  // succeeded since the last health answer
    std::chrono::milliseconds backoff{0};    // the next failed trial's wait is twice this
    std::int64_t next_trial_ms = 0;
    bool trial_running = false;
  };
  struct Trial;

  // Writes the spoke's condition to the store when its condition or reason differs from what
  // was written last. Called without mu_.
  void Persist(const std::string& name);
  // The spoke's condition from its unreachable and degraded parts (mu_ held).
  static void UpdateCondition(Spoke& spoke, std::int64_t now_ms);
  // Drops outcomes older than window_age and beyond `window` (mu_ held).
  void PruneOutcomes(Spoke& spoke, std::int64_t now_ms) const;
  // Starts a trial on `name` on a thread of its own (mu_ held).
  void StartTrial(const std::string& name, Spoke& spoke);
  void RunTrial(std::string name, std::shared_ptr<cluster::SpokeClient> client, std::string box_id);
  // Joins trials that ended (mu_ not held).
  void ReapTrials();
  // Queues the return hook for `name` unless it waits already; starts a worker when fewer
  // than return_workers run (returns_mu_ not held).
  void QueueReturn(const std::string& name);
  void ReturnWorker();
  SpokeView ViewOf(const std::string& name, const Spoke& spoke, std::int64_t now_ms) const;
  std::int64_t NowMs() const;

  store::Store& store_;
  SpokeDirectory& directory_;
  common::Clock& clock_;
  const MonitorOptions options_;
  std::mutex poll_mu_;   // one round at a time
  std::mutex write_mu_;  // one condition write at a time, so the last one written is current
  mutable std::mutex mu_;
  std::condition_variable trials_done_;  // a trial ended (with mu_)
  // Guarded by mu_:
  std::map<std::string, Spoke, std::less<>> spokes_;
  std::function<void(const std::string&)> return_hook_;
  LiveViews* views_ = nullptr;  // set before the first Poll
  bool polled_ = false;
  std::set<std::string, std::less<>> trial_boxes_;  // canonical ids of trial boxes in flight
  std::vector<std::unique_ptr<Trial>> trials_;

  // The return hooks' pool.
  std::mutex returns_mu_;
  std::condition_variable returns_cv_;    // work queued, or stopping (with returns_mu_)
  std::condition_variable returns_idle_;  // a hook finished (with returns_mu_)
  // Guarded by returns_mu_:
  std::deque<std::string> returns_queue_;  // spokes whose hook waits, in order
  std::set<std::string> returns_queued_;   // the same, to queue each once
  std::set<std::string> returns_running_;  // spokes whose hook runs now
  std::vector<std::thread> return_workers_;
  bool returns_stopping_ = false;
};

}  // namespace llmbox::hub::boxes
