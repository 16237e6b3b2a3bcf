// hub/boxes/spoke_monitor.cc
#include "hub/boxes/spoke_monitor.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/match.h"
#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/redact.h"
#include "common/secrets.h"
#include "common/utf8.h"
#include "common/validate.h"
#include "hub/boxes/registry.h"

namespace llmbox::hub::boxes {
namespace {

// What a spoke says (errors, its engine's error) is redacted and cut before the monitor keeps
// it: it ends up in the store, in logs and in placement's refusals.
constexpr std::size_t kMaxReasonBytes = 300;

std::string Cut(std::string_view text) {
  return common::Utf8Prefix(common::ToValidUtf8(common::Redact(text)), kMaxReasonBytes);
}

// A health call that did not reach the spoke (as opposed to one it answered with an error).
bool MissedTheSpoke(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

// "30 s", "1500 ms": a wait, for people.
std::string Wait(std::int64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace

CreateOutcome ClassifyCreateFailure(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return CreateOutcome::kSucceeded;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted:
      return CreateOutcome::kSpokeFault;
    case absl::StatusCode::kFailedPrecondition:
      // A box whose console ended before it printed its authorize URL (spoke/box/manager.cc,
      // "waiting for the authorize URL") failed on the spoke, whatever the code says; a box
      // that never printed one in time is DeadlineExceeded already.
      return absl::StrContains(status.message(), "waiting for the authorize URL")
                 ? CreateOutcome::kSpokeFault
                 : CreateOutcome::kNotCounted;
    default:
      return CreateOutcome::kNotCounted;
  }
}

struct SpokeMonitor::Trial {
  std::thread thread;
  bool done = false;  // guarded by mu_
};

SpokeMonitor::SpokeMonitor(store::Store& store, SpokeDirectory& directory, common::Clock& clock,
                           MonitorOptions options)
    : store_(store), directory_(directory), clock_(clock), options_(std::move(options)) {}

SpokeMonitor::~SpokeMonitor() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(returns_mu_);
    returns_stopping_ = true;
    returns_queue_.clear();
    returns_queued_.clear();
    workers.swap(return_workers_);
  }
  returns_cv_.notify_all();
  for (auto& worker : workers) worker.join();
  std::vector<std::unique_ptr<Trial>> trials;
  {
    std::lock_guard lock(mu_);
    trials.swap(trials_);
  }
  for (auto& trial : trials) trial->thread.join();
}

std::int64_t SpokeMonitor::NowMs() const { return common::ToUnixMillis(clock_.Now()); }

void SpokeMonitor::SetReturnHook(std::function<void(const std::string& spoke)> hook) {
  std::lock_guard lock(mu_);
  return_hook_ = std::move(hook);
}

void SpokeMonitor::UpdateCondition(Spoke& spoke, std::int64_t now_ms) {
  store::SpokeConditionRecord& c = spoke.condition;
  const store::SpokeCondition before = c.condition;
  if (spoke.unreachable) {
    c.condition = store::SpokeCondition::kUnreachable;
    c.since_ms = spoke.unreachable_since_ms;
    c.reason = spoke.unreachable_reason;
  } else if (spoke.degraded) {
    c.condition = store::SpokeCondition::kDegraded;
    c.since_ms = spoke.degraded_since_ms;
    c.reason = spoke.degraded_reason;
  } else {
    c.condition = store::SpokeCondition::kHealthy;
    c.reason.clear();
    if (before != store::SpokeCondition::kHealthy || c.since_ms == 0) c.since_ms = now_ms;
  }
}

void SpokeMonitor::PruneOutcomes(Spoke& spoke, std::int64_t now_ms) const {
  const std::int64_t oldest = now_ms - options_.window_age.count();
  while (!spoke.outcomes.empty() &&
         (spoke.outcomes.size() > options_.window || spoke.outcomes.front().at_ms < oldest)) {
    spoke.outcomes.pop_front();
  }
}

void SpokeMonitor::Persist(const std::string& name) {
  std::lock_guard write(write_mu_);
  store::SpokeConditionRecord record;
  {
    std::lock_guard lock(mu_);
    auto it = spokes_.find(name);
    if (it == spokes_.end()) return;
    Spoke& spoke = it->second;
    if (spoke.written.has_value() && spoke.written->condition == spoke.condition.condition &&
        spoke.written->reason == spoke.condition.reason) {
      return;
    }
    record = spoke.condition;
    record.name = name;
    spoke.written = record;
  }
  if (absl::Status st = store_.SetSpokeCondition(record); !st.ok()) {
    spdlog::warn("spoke {}: could not record that it is {} (tried again next round): {}", name,
                 store::SpokeConditionName(record.condition), common::AsStd(st.message()));
    std::lock_guard lock(mu_);
    if (auto it = spokes_.find(name); it != spokes_.end()) it->second.written.reset();
  }
}

void SpokeMonitor::Poll() {
  std::lock_guard round(poll_mu_);
  ReapTrials();
  const std::int64_t start_ms = NowMs();

  // The store, three reads; a read that fails leaves what the last round had.
  auto admin = store_.ListSpokeAdmin();
  if (!admin.ok()) {
    spdlog::warn("spokes: cannot read the operators' spoke states: {}",
                 common::AsStd(admin.status().message()));
  }
  auto conditions = store_.ListSpokeConditions();
  if (!conditions.ok()) {
    spdlog::warn("spokes: cannot read the spokes' recorded conditions: {}",
                 common::AsStd(conditions.status().message()));
  }
  auto counts = store_.CountBoxesBySpoke();
  if (!counts.ok()) {
    spdlog::warn("spokes: cannot count the registry's boxes by spoke: {}",
                 common::AsStd(counts.status().message()));
  }
  const std::vector<SpokeDirectory::Entry> entries = directory_.List();

  struct Probe {
    std::string name;
    std::shared_ptr<cluster::SpokeClient> client;
    cluster::FeedPosition since;  // the spoke's change feed, as far as the views applied it
    bool first = false;           // it has not answered since this monitor started
    absl::StatusOr<cluster::SpokeHealth> health = absl::UnknownError("not asked");
  };
  std::vector<Probe> probes;
  probes.reserve(entries.size());
  {
    std::lock_guard lock(mu_);
    std::set<std::string, std::less<>> listed;
    for (const auto& entry : entries) {
      listed.insert(entry.name);
      auto [it, added] = spokes_.try_emplace(entry.name);
      Spoke& spoke = it->second;
      if (added) {
        spoke.condition = {.name = entry.name, .since_ms = start_ms};
        spoke.written = store::SpokeConditionRecord{.name = entry.name};
      }
      spoke.in_directory = true;
      spoke.local = entry.local;
      spoke.client = entry.client;
      probes.push_back(
          {.name = entry.name,
           .client = entry.client,
           .since = views_ != nullptr ? views_->Position(entry.name) : cluster::FeedPosition{},
           .first = !spoke.answered});
    }
    for (auto& [name, spoke] : spokes_) {
      if (!listed.contains(name)) {
        spoke.in_directory = false;
        spoke.client = nullptr;
      }
    }
    if (admin.ok()) {
      for (auto& [name, spoke] : spokes_) spoke.admin = {.name = name};
      for (const auto& record : *admin) {
        if (auto it = spokes_.find(record.name); it != spokes_.end()) it->second.admin = record;
      }
    }
    // Conditions written before a restart: a spoke seen for the first time takes its own.
    if (conditions.ok()) {
      for (const auto& record : *conditions) {
        auto it = spokes_.find(record.name);
        if (it == spokes_.end() || it->second.condition_loaded) continue;
        Spoke& spoke = it->second;
        spoke.condition_loaded = true;
        spoke.written = record;
        if (record.condition == store::SpokeCondition::kDegraded && !spoke.degraded) {
          spoke.degraded = true;
          spoke.degraded_since_ms = record.since_ms;
          spoke.degraded_reason = record.reason;
          spoke.backoff = options_.trial_backoff_min;
          spoke.next_trial_ms = start_ms;
        } else if (record.condition == store::SpokeCondition::kUnreachable && !spoke.unreachable) {
          spoke.unreachable = true;
          spoke.unreachable_since_ms = record.since_ms;
          spoke.unreachable_reason = record.reason;
          spoke.missed = options_.unreachable_after;
          spoke.missed_since_ms = record.since_ms;
        }
        UpdateCondition(spoke, start_ms);
        if (record.condition == store::SpokeCondition::kHealthy) {
          spoke.condition.since_ms = record.since_ms;
        }
      }
      for (auto& [name, spoke] : spokes_) spoke.condition_loaded = true;
    }
    if (counts.ok()) {
      for (auto& [name, spoke] : spokes_) spoke.registry_boxes = {};
      for (const auto& [name, count] : *counts) {
        if (count.boxes <= 0) continue;
        // A removed spoke that still holds boxes stays in view.
        auto [it, added] = spokes_.try_emplace(name);
        if (added) it->second.condition = {.name = name, .since_ms = start_ms};
        it->second.registry_boxes = count;
      }
    }
    for (auto it = spokes_.begin(); it != spokes_.end();) {
      const Spoke& spoke = it->second;
      if (!spoke.in_directory && spoke.registry_boxes.boxes <= 0 && !spoke.trial_running) {
        it = spokes_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Every spoke's health, at most max_concurrent_probes at a time: workers take the next
  // spoke from a shared index, so a slow spoke holds one worker, not the round.
  {
    std::atomic<std::size_t> next{0};
    const auto work = [&probes, &next, views = views_, timeout = options_.health_timeout] {
      for (std::size_t i = next++; i < probes.size(); i = next++) {
        Probe& probe = probes[i];
        probe.health = probe.client->HealthSince(timeout, probe.since);
        // A spoke's first call that failed at once (a connect that failed by chance: seen as
        // "Unavailable ... No such file or directory" at a hub's start) is tried again now:
        // otherwise the spoke waits a whole interval to be placeable. Only Unavailable (fast)
        // and only before its first answer, so a spoke that is down costs one more connect.
        if (probe.first && absl::IsUnavailable(probe.health.status())) {
          probe.health = probe.client->HealthSince(timeout, probe.since);
        }
        // What the spoke's feed says changed: those boxes' views go now, not after the round
        // (a slow spoke must not hold back the others').
        if (views != nullptr && probe.health.ok()) {
          views->ApplyFeed(probe.name, probe.health->changes_at, probe.health->changes_all,
                           probe.health->changes);
        }
      }
    };
    const std::size_t workers =
        std::min(std::max<std::size_t>(options_.max_concurrent_probes, 1), probes.size());
    std::vector<std::thread> pool;
    for (std::size_t i = 1; i < workers; ++i) pool.emplace_back(work);
    work();
    for (auto& thread : pool) thread.join();
  }

  const std::int64_t now_ms = NowMs();
  std::vector<std::string> returned;
  std::vector<std::string> changed;
  bool hooked = false;
  {
    std::lock_guard lock(mu_);
    for (Probe& probe : probes) {
      auto it = spokes_.find(probe.name);
      if (it == spokes_.end()) continue;
      Spoke& spoke = it->second;
      spoke.condition.checked_at_ms = now_ms;
      if (probe.health.ok()) {
        if (spoke.unreachable) {
          spdlog::info("spoke {}: answers again (unreachable since {})", probe.name,
                       common::FormatUtcSeconds(spoke.unreachable_since_ms));
        }
        // cfg (issue 18): the outcome of the first dial, and whether the spoke can create.
        const std::string cannot_create = Cut(probe.health->cannot_create);
        if (!spoke.answered) {
          spdlog::info("spoke {}: answers its health checks{}", probe.name,
                       cannot_create.empty() ? "" : "; cannot create boxes: " + cannot_create);
        } else if (spoke.health.has_value() && Cut(spoke.health->cannot_create) != cannot_create) {
          if (cannot_create.empty()) {
            spdlog::info("spoke {}: can create boxes again", probe.name);
          } else {
            spdlog::warn("spoke {}: cannot create boxes: {}", probe.name, cannot_create);
          }
        }
        // Its engine's state, with the spoke's words, for the operator (chatbots are told
        // only that it is down).
        if (!probe.health->engine_reachable &&
            (!spoke.health.has_value() || spoke.health->engine_reachable)) {
          spdlog::warn("spoke {}: its Docker engine is down: {}", probe.name,
                       Cut(probe.health->engine_error));
        } else if (probe.health->engine_reachable && spoke.health.has_value() &&
                   !spoke.health->engine_reachable) {
          spdlog::info("spoke {}: its Docker engine answers again", probe.name);
        }
        cluster::SpokeHealth& health = *probe.health;
        if (health.max_boxes > options_.max_boxes_per_spoke) {
          if (!spoke.health.has_value() || spoke.reported_max_boxes != health.max_boxes) {
            spdlog::warn(
                "spoke {}: its health claims {} places; counted as {} "
                "(hub.spokes.max_boxes_per_spoke)",
                probe.name, health.max_boxes, options_.max_boxes_per_spoke);
          }
          spoke.reported_max_boxes = health.max_boxes;
          health.max_boxes = options_.max_boxes_per_spoke;
        } else {
          spoke.reported_max_boxes = health.max_boxes;
        }
        if (spoke.unreachable || !spoke.answered) {
          returned.push_back(probe.name);
        } else if (spoke.health.has_value() && spoke.probe_error.empty()) {
          // Boxes that changed by themselves (stopped, reaped, restarted into ready, an
          // engine that came back): the registry learns it now. Creates only add boxes, and a
          // code being tried keeps its box pending, so neither makes a reconcile.
          const cluster::SpokeHealth& before = *spoke.health;
          if (health.engine_reachable &&
              (health.ready != before.ready || health.error != before.error ||
               health.Boxes() < before.Boxes() || !before.engine_reachable)) {
            spdlog::debug(
                "spoke {}: its boxes changed (ready {} -> {}, stopped {} -> {}, all {} -> {}); "
                "reconciling it",
                probe.name, before.ready, health.ready, before.error, health.error, before.Boxes(),
                health.Boxes());
            returned.push_back(probe.name);
          }
        }
        spoke.answered = true;
        spoke.unreachable = false;
        spoke.missed = 0;
        spoke.probe_error.clear();
        spoke.health = *std::move(probe.health);
        spoke.health_at_ms = now_ms;
        spoke.created_since_health = 0;
      } else {
        const std::string error = Cut(common::AsStd(probe.health.status().message()));
        spoke.probe_error = error;
        if (MissedTheSpoke(probe.health.status())) {
          if (!spoke.answered && spoke.missed == 0) {
            spdlog::warn("spoke {}: does not answer its first health check: {}", probe.name, error);
          }
          if (spoke.missed++ == 0) spoke.missed_since_ms = now_ms;
          if (spoke.missed >= options_.unreachable_after) {
            if (!spoke.unreachable) {
              spoke.unreachable = true;
              spoke.unreachable_since_ms = spoke.missed_since_ms;
              spdlog::warn("spoke {}: unreachable since {}: {}", probe.name,
                           common::FormatUtcSeconds(spoke.missed_since_ms), error);
            }
            spoke.unreachable_reason = error;
          }
        } else {
          // It answered, with an error: not unreachable, and not placeable either.
          spoke.missed = 0;
          if (spoke.unreachable) spoke.unreachable_reason = "answers with an error: " + error;
        }
      }
      UpdateCondition(spoke, now_ms);
      if (!spoke.written.has_value() || spoke.written->condition != spoke.condition.condition ||
          spoke.written->reason != spoke.condition.reason) {
        changed.push_back(probe.name);
      }
      // Back in rotation only through a trial that succeeds, with a reachable engine.
      if (spoke.degraded && !spoke.unreachable && !spoke.trial_running &&
          spoke.probe_error.empty() && spoke.health.has_value() && spoke.health->engine_reachable &&
          spoke.health->cannot_create.empty() && now_ms >= spoke.next_trial_ms &&
          spoke.client != nullptr) {
        StartTrial(probe.name, spoke);
      }
    }
    polled_ = true;
    hooked = static_cast<bool>(return_hook_);
  }
  for (const std::string& name : changed) Persist(name);
  if (hooked) {
    for (const std::string& name : returned) QueueReturn(name);
  }
}

void SpokeMonitor::QueueReturn(const std::string& name) {
  {
    std::lock_guard lock(returns_mu_);
    if (returns_stopping_ || !returns_queued_.insert(name).second) return;
    returns_queue_.push_back(name);
    const std::size_t busy = returns_running_.size() + returns_queue_.size();
    if (return_workers_.size() < std::max<std::size_t>(options_.return_workers, 1) &&
        return_workers_.size() < busy) {
      return_workers_.emplace_back([this] { ReturnWorker(); });
    }
  }
  returns_cv_.notify_one();
}

void SpokeMonitor::ReturnWorker() {
  std::unique_lock lock(returns_mu_);
  for (;;) {
    // The oldest queued spoke whose hook is not running already (one hook per spoke at a
    // time: a second would only repeat the first's calls).
    auto next = returns_queue_.end();
    returns_cv_.wait(lock, [&] {
      if (returns_stopping_) return true;
      next = std::find_if(returns_queue_.begin(), returns_queue_.end(),
                          [&](const std::string& n) { return !returns_running_.contains(n); });
      return next != returns_queue_.end();
    });
    if (returns_stopping_) return;
    std::string name = std::move(*next);
    returns_queue_.erase(next);
    returns_queued_.erase(name);
    returns_running_.insert(name);
    lock.unlock();
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard hook_lock(mu_);
      hook = return_hook_;
    }
    if (hook) hook(name);
    lock.lock();
    returns_running_.erase(name);
    returns_idle_.notify_all();
    // A spoke queued again while its hook ran can run now.
    returns_cv_.notify_all();
  }
}

bool SpokeMonitor::WaitForReturns(std::chrono::milliseconds limit) {
  std::unique_lock lock(returns_mu_);
  return returns_idle_.wait_for(lock, limit, [this] {
    return returns_stopping_ || (returns_queue_.empty() && returns_running_.empty());
  });
}

void SpokeMonitor::StartTrial(const std::string& name, Spoke& spoke) {
  auto random = common::RandomToken(6);
  if (!random.ok()) {
    spdlog::warn("spoke {}: no trial create: {}", name, common::AsStd(random.status().message()));
    return;
  }
  const std::string box_id =
      std::string(kTrialBoxPrefix) + common::HexEncode(*random).substr(0, 12);
  spoke.trial_running = true;
  trial_boxes_.insert(box_id);
  auto trial = std::make_unique<Trial>();
  Trial* raw = trial.get();
  trials_.push_back(std::move(trial));
  spdlog::info("spoke {}: degraded; trying a create ({})", name, box_id);
  raw->thread = std::thread([this, name, client = spoke.client, box_id, raw] {
    RunTrial(name, client, box_id);
    std::lock_guard lock(mu_);
    raw->done = true;
    trials_done_.notify_all();
  });
}

void SpokeMonitor::RunTrial(std::string name, std::shared_ptr<cluster::SpokeClient> client,
                            std::string box_id) {
  auto created = client->CreateBox({.box_id = box_id,
                                    .description = "a trial create of the hub (destroyed at once)",
                                    .owner = "llmbox-hub"},
                                   options_.trial_timeout);
  const absl::Status& status = created.status();
  // After a timeout or a lost connection the spoke may still finish the box.
  if (status.ok() || absl::IsDeadlineExceeded(status) || absl::IsUnavailable(status) ||
      absl::IsCancelled(status)) {
    if (absl::Status gone = client->DestroyBox(box_id, options_.call_timeout);
        !gone.ok() && !absl::IsNotFound(gone)) {
      spdlog::warn(
          "spoke {}: trial box {} could not be taken down (reconcile takes it down later): {}",
          name, box_id, Cut(common::AsStd(gone.message())));
    }
  }
  const std::int64_t now_ms = NowMs();
  {
    std::lock_guard lock(mu_);
    trial_boxes_.erase(box_id);
    auto it = spokes_.find(name);
    if (it != spokes_.end()) {
      Spoke& spoke = it->second;
      spoke.trial_running = false;
      if (status.ok()) {
        spdlog::info("spoke {}: trial create succeeded; back in placement (degraded since {})",
                     name, common::FormatUtcSeconds(spoke.degraded_since_ms));
        spoke.degraded = false;
        spoke.degraded_reason.clear();
        spoke.outcomes.clear();
        spoke.backoff = std::chrono::milliseconds(0);
        spoke.next_trial_ms = 0;
      } else {
        spoke.backoff =
            std::clamp(spoke.backoff * 2, options_.trial_backoff_min, options_.trial_backoff_max);
        spoke.next_trial_ms = now_ms + spoke.backoff.count();
        spdlog::warn("spoke {}: trial create failed, next in {}: {}", name,
                     Wait(spoke.backoff.count()), Cut(common::AsStd(status.message())));
      }
      UpdateCondition(spoke, now_ms);
    }
  }
  Persist(name);
}

void SpokeMonitor::ReapTrials() {
  std::vector<std::unique_ptr<Trial>> done;
  {
    std::lock_guard lock(mu_);
    auto ended = std::stable_partition(trials_.begin(), trials_.end(),
                                       [](const auto& trial) { return !trial->done; });
    std::move(ended, trials_.end(), std::back_inserter(done));
    trials_.erase(ended, trials_.end());
  }
  for (auto& trial : done) trial->thread.join();
}

bool SpokeMonitor::WaitForTrials(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  const bool idle = trials_done_.wait_for(lock, limit, [this] {
    return std::all_of(trials_.begin(), trials_.end(), [](const auto& t) { return t->done; });
  });
  lock.unlock();
  if (idle) ReapTrials();
  return idle;
}

SpokeView SpokeMonitor::ViewOf(const std::string& name, const Spoke& spoke,
                               std::int64_t now_ms) const {
  SpokeView view{.name = name,
                 .local = spoke.local,
                 .state = EffectiveSpokeState(spoke.admin, spoke.condition, spoke.in_directory),
                 .admin = spoke.admin,
                 .condition = spoke.condition,
                 .health = spoke.in_directory ? spoke.health : std::nullopt,
                 .registry_boxes = spoke.registry_boxes,
                 .creates_in_flight = spoke.in_flight,
                 .next_trial_ms = spoke.degraded ? spoke.next_trial_ms : 0};
  if (view.admin.name.empty()) view.admin.name = name;
  view.condition.name = name;
  const std::int64_t oldest = now_ms - options_.window_age.count();
  for (const Outcome& outcome : spoke.outcomes) {
    if (outcome.at_ms < oldest) continue;
    ++view.recent_creates;
    if (outcome.failed) ++view.recent_failures;
  }
  return view;
}

std::vector<SpokeView> SpokeMonitor::View() const {
  const std::vector<SpokeDirectory::Entry> entries = directory_.List();
  const std::int64_t now_ms = NowMs();
  std::vector<SpokeView> out;
  std::lock_guard lock(mu_);
  out.reserve(spokes_.size() + 1);
  for (const auto& [name, spoke] : spokes_) out.push_back(ViewOf(name, spoke, now_ms));
  // Spokes that joined since the last round: in the directory, not asked yet.
  for (const auto& entry : entries) {
    if (spokes_.contains(entry.name)) continue;
    Spoke fresh;
    fresh.in_directory = true;
    fresh.local = entry.local;
    out.push_back(ViewOf(entry.name, fresh, now_ms));
  }
  std::sort(out.begin(), out.end(),
            [](const SpokeView& a, const SpokeView& b) { return a.name < b.name; });
  return out;
}

std::optional<SpokeView> SpokeMonitor::Find(std::string_view name) const {
  {
    std::lock_guard lock(mu_);
    if (auto it = spokes_.find(name); it != spokes_.end()) {
      return ViewOf(it->first, it->second, NowMs());
    }
  }
  for (const auto& entry : directory_.List()) {
    if (entry.name != name) continue;
    Spoke fresh;
    fresh.in_directory = true;
    fresh.local = entry.local;
    return ViewOf(entry.name, fresh, NowMs());
  }
  return std::nullopt;
}

absl::StatusOr<std::string> SpokeMonitor::Place(const std::string& image,
                                                const std::set<std::string>& exclude) {
  bool polled;
  {
    std::lock_guard lock(mu_);
    polled = polled_;
  }
  if (!polled) Poll();

  const std::int64_t now_ms = NowMs();
  std::lock_guard lock(mu_);
  std::vector<std::string> passed_over;
  Spoke* best = nullptr;
  const std::string* best_name = nullptr;
  std::uint64_t best_free = 0;
  std::uint64_t best_used = 0;
  std::size_t candidates = 0;
  for (auto& [name, spoke] : spokes_) {
    if (!spoke.in_directory) continue;
    ++candidates;
    const SpokeState state = EffectiveSpokeState(spoke.admin, spoke.condition, true);
    if (exclude.contains(name)) {
      passed_over.push_back(name + " was tried already");
      continue;
    }
    if (state != SpokeState::kReady) {
      passed_over.push_back(name + " is " +
                            DescribeSpokeStateBrief(state, spoke.admin, spoke.condition));
      continue;
    }
    // A spoke that missed fewer than unreachable_after health calls keeps its last answer;
    // one that answered its last call with an error has none to go by.
    if (!spoke.probe_error.empty() && spoke.missed == 0) {
      passed_over.push_back(name + " answered its last health check with an error (" +
                            spoke.probe_error + ")");
      continue;
    }
    if (!spoke.health.has_value()) {
      passed_over.push_back(name + " has not answered a health check yet" +
                            (spoke.probe_error.empty() ? "" : " (" + spoke.probe_error + ")"));
      continue;
    }
    if (options_.max_health_age.count() > 0 &&
        now_ms - spoke.health_at_ms > options_.max_health_age.count()) {
      passed_over.push_back(name + "'s last health answer is " + Wait(now_ms - spoke.health_at_ms) +
                            " old");
      continue;
    }
    const cluster::SpokeHealth& health = *spoke.health;
    const auto& images = health.allowed_images;
    // Sums in 64 bits: a spoke's counts are its own word, and four of them near 2^32 must
    // neither wrap around to "empty" nor overflow.
    const std::uint64_t used = std::uint64_t{health.creating} + health.pending + health.ready +
                               health.error + spoke.in_flight + spoke.created_since_health;
    if (!health.engine_reachable) {
      passed_over.push_back(name + "'s Docker engine is down");  // the error: in the hub's log
    } else if (!health.cannot_create.empty()) {
      // cfg (issue 18): the spoke says it cannot create (no default image, no claude_bin).
      // Its words (paths, the engine's address) are the operator's: the hub's log has them,
      // and this refusal may reach any chatbot.
      passed_over.push_back(name + " cannot create boxes (its operator is told why)");
    } else if (!image.empty() && std::find(images.begin(), images.end(), image) == images.end()) {
      passed_over.push_back(name + " does not allow image " + common::QuoteForMessage(image));
    } else if (used >= health.max_boxes) {
      passed_over.push_back(name + " is full (" + std::to_string(used) + " of " +
                            std::to_string(health.max_boxes) + " boxes, creates included)");
    } else {
      const std::uint64_t free = health.max_boxes - used;
      // By name, so on a full tie the first name stays.
      if (best == nullptr || free > best_free || (free == best_free && used < best_used)) {
        best = &spoke;
        best_name = &name;
        best_free = free;
        best_used = used;
      }
    }
  }
  if (best == nullptr) {
    // Spokes that joined since the last round are not asked before the next one.
    for (const auto& entry : directory_.List()) {
      if (spokes_.contains(entry.name)) continue;
      ++candidates;
      passed_over.push_back(entry.name + " joined and has not answered a health check yet");
    }
  }
  if (candidates == 0) return absl::UnavailableError("this hub has no spokes to place a box on");
  if (best == nullptr) {
    std::string why;
    for (const auto& reason : passed_over) why += (why.empty() ? "" : "; ") + reason;
    return absl::ResourceExhaustedError("no spoke can take the box: " + why +
                                        ". Destroy a box, or name a spoke with room");
  }
  ++best->in_flight;
  return *best_name;
}

void SpokeMonitor::Reserve(std::string_view spoke) {
  std::lock_guard lock(mu_);
  if (auto it = spokes_.find(spoke); it != spokes_.end()) ++it->second.in_flight;
}

void SpokeMonitor::CancelPlacement(std::string_view spoke) {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(spoke);
  if (it != spokes_.end() && it->second.in_flight > 0) --it->second.in_flight;
}

void SpokeMonitor::RecordCreate(std::string_view name, CreateOutcome outcome,
                                std::string_view error) {
  const std::int64_t now_ms = NowMs();
  {
    std::lock_guard lock(mu_);
    auto it = spokes_.find(name);
    if (it == spokes_.end()) return;
    Spoke& spoke = it->second;
    if (spoke.in_flight > 0) --spoke.in_flight;
    if (outcome == CreateOutcome::kSucceeded) ++spoke.created_since_health;
    if (outcome == CreateOutcome::kNotCounted) return;
    spoke.outcomes.push_back({.at_ms = now_ms, .failed = outcome == CreateOutcome::kSpokeFault});
    if (outcome == CreateOutcome::kSpokeFault) {
      spoke.last_failure = error.empty() ? std::string("no reason given") : Cut(error);
    }
    PruneOutcomes(spoke, now_ms);
    if (spoke.degraded) return;
    const std::size_t counted = spoke.outcomes.size();
    const std::size_t failed = static_cast<std::size_t>(std::count_if(
        spoke.outcomes.begin(), spoke.outcomes.end(), [](const Outcome& o) { return o.failed; }));
    if (counted < options_.min_creates ||
        static_cast<double>(failed) <= options_.failure_threshold * static_cast<double>(counted)) {
      return;
    }
    spoke.degraded = true;
    spoke.degraded_since_ms = now_ms;
    // Shown to every caller (list_spokes, create refusals): counts only, never a box's id or
    // output from someone's create; the last failure goes to the log below.
    spoke.degraded_reason =
        std::to_string(failed) + " of the last " + std::to_string(counted) + " creates failed";
    spoke.backoff = options_.trial_backoff_min;
    spoke.next_trial_ms = now_ms + options_.trial_backoff_min.count();
    UpdateCondition(spoke, now_ms);
    spdlog::warn(
        "spoke {}: degraded, out of placement until a trial create succeeds: {} (the last: {})",
        it->first, spoke.degraded_reason, spoke.last_failure);
  }
  Persist(std::string(name));
}

bool SpokeMonitor::IsUnreachable(std::string_view spoke) const {
  std::lock_guard lock(mu_);
  auto it = spokes_.find(spoke);
  return it != spokes_.end() &&
         it->second.condition.condition == store::SpokeCondition::kUnreachable;
}

bool SpokeMonitor::IsTrialBox(std::string_view box_id) const {
  std::lock_guard lock(mu_);
  return trial_boxes_.contains(common::CanonicalBoxId(box_id));
}

}  // namespace llmbox::hub::boxes
