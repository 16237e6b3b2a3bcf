// hub/boxes/quota_book.cc
#include "hub/boxes/quota_book.h"

#include <ctime>
#include <utility>

#include "common/status.h"

namespace llmbox::hub::boxes {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::chrono::minutes kExecStep{1};

std::string Plural(std::int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// "23m5s", rounded up to the second: never sooner than the truth.
std::string DurationText(std::chrono::nanoseconds left) {
  std::int64_t s = std::chrono::ceil<seconds>(left).count();
  if (s < 0) s = 0;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m";
  out += std::to_string(s % 60) + "s";
  return out;
}

std::string Rfc3339(common::Clock::WallTime time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::ceil<seconds>(time));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

absl::Status Refusal(const auth::Principal& principal, std::string_view used,
                     const config::QuotaLimit& limit, std::string_view frees) {
  return absl::ResourceExhaustedError("quota: " + principal.id() + " " + std::string(used) +
                                      ", and " + limit.key + " allows " +
                                      std::to_string(limit.value) + "; " + std::string(frees));
}

// What a limit of 0 says instead of when it frees.
constexpr std::string_view kNeverFrees =
    "a limit of 0 allows none, ever: ask the hub's operator to raise it";

}  // namespace

QuotaBook::ExecTicket::ExecTicket(ExecTicket&& other) noexcept
    : book_(std::exchange(other.book_, nullptr)),
      principal_(std::move(other.principal_)),
      started_(other.started_) {}

QuotaBook::ExecTicket& QuotaBook::ExecTicket::operator=(ExecTicket&& other) noexcept {
  if (this != &other) {
    Release();
    book_ = std::exchange(other.book_, nullptr);
    principal_ = std::move(other.principal_);
    started_ = other.started_;
  }
  return *this;
}

QuotaBook::ExecTicket::~ExecTicket() { Release(); }

void QuotaBook::ExecTicket::Release() {
  if (book_ == nullptr) return;
  std::exchange(book_, nullptr)->Release(principal_, started_);
}

QuotaBook::QuotaBook(config::QuotaConfig config, common::Clock& clock)
    : config_(std::move(config)), clock_(clock), last_sweep_(clock.SteadyNow()) {}

std::optional<config::QuotaLimits> QuotaBook::LimitsFor(const auth::Principal& principal) const {
  for (const auto& entry : config_.overrides) {
    if (entry.principal == principal.id()) return entry.limits;
  }
  if (principal.IsAdmin() && config_.admins_exempt) return std::nullopt;
  return config_.defaults;
}

std::string QuotaBook::WhenText(SteadyTime at) {
  const auto left = at - clock_.SteadyNow();
  return Rfc3339(clock_.Now() +
                 std::chrono::duration_cast<common::Clock::WallTime::duration>(left)) +
         " (in " + DurationText(left) + ")";
}

void QuotaBook::PruneLocked(Account& account, SteadyTime now) {
  while (!account.creates.empty() && account.creates.front() + kWindow <= now) {
    account.creates.pop_front();
  }
  while (!account.exec_time.empty() && account.exec_time.front().first + kWindow <= now) {
    account.exec_time.pop_front();
  }
}

void QuotaBook::SweepLocked(SteadyTime now) {
  // Accounts nobody touched for an hour still hold old entries; once a minute they are
  // dropped, so the map holds only principals active within the window.
  if (now - last_sweep_ < std::chrono::minutes(1)) return;
  last_sweep_ = now;
  for (auto it = accounts_.begin(); it != accounts_.end();) {
    PruneLocked(it->second, now);
    it = it->second.Empty() ? accounts_.erase(it) : std::next(it);
  }
}

absl::Status QuotaBook::CreateRefusalLocked(const auth::Principal& principal,
                                            const config::QuotaLimits& limits, std::int64_t alive,
                                            SteadyTime now) {
  if (alive >= limits.boxes_alive.value) {
    return Refusal(principal, "has " + Plural(alive, "box", "boxes") + " alive", limits.boxes_alive,
                   limits.boxes_alive.value == 0
                       ? kNeverFrees
                       : "destroy one of its boxes first (destroy_llmbox), then create again");
  }
  SweepLocked(now);
  auto it = accounts_.find(principal.id());
  if (it != accounts_.end()) PruneLocked(it->second, now);
  const std::int64_t made =
      it == accounts_.end() ? 0 : static_cast<std::int64_t>(it->second.creates.size());
  if (made >= limits.creates_per_hour.value) {
    std::string frees(kNeverFrees);
    if (limits.creates_per_hour.value > 0) {
      // The place frees when enough of the oldest creates leave the window.
      const auto& creates = it->second.creates;
      frees = "the next create is allowed at " +
              WhenText(creates[static_cast<std::size_t>(made - limits.creates_per_hour.value)] +
                       kWindow);
    }
    return Refusal(principal, "made " + Plural(made, "create", "creates") + " in the last hour",
                   limits.creates_per_hour, frees);
  }
  return absl::OkStatus();
}

absl::Status QuotaBook::CheckCreate(
    const auth::Principal& principal,
    const std::function<absl::StatusOr<std::int64_t>()>& count_alive) {
  const auto limits = LimitsFor(principal);
  if (!limits.has_value()) return absl::OkStatus();
  LLMBOX_ASSIGN_OR_RETURN(const std::int64_t alive, count_alive());
  std::lock_guard lock(mu_);
  return CreateRefusalLocked(principal, *limits, alive, clock_.SteadyNow());
}

absl::Status QuotaBook::AdmitCreate(
    const auth::Principal& principal,
    const std::function<absl::StatusOr<std::int64_t>()>& count_alive,
    const std::function<absl::Status()>& reserve) {
  const auto limits = LimitsFor(principal);
  if (!limits.has_value()) return reserve();
  std::lock_guard admission(admission_mu_);
  LLMBOX_ASSIGN_OR_RETURN(const std::int64_t alive, count_alive());
  {
    std::lock_guard lock(mu_);
    LLMBOX_RETURN_IF_ERROR(CreateRefusalLocked(principal, *limits, alive, clock_.SteadyNow()));
  }
  LLMBOX_RETURN_IF_ERROR(reserve());
  std::lock_guard lock(mu_);
  accounts_[principal.id()].creates.push_back(clock_.SteadyNow());
  return absl::OkStatus();
}

absl::StatusOr<QuotaBook::ExecTicket> QuotaBook::AdmitExec(const auth::Principal& principal) {
  const auto limits = LimitsFor(principal);
  if (!limits.has_value()) return ExecTicket();
  std::lock_guard lock(mu_);
  const SteadyTime now = clock_.SteadyNow();
  SweepLocked(now);
  Account& current = accounts_[principal.id()];
  PruneLocked(current, now);
  const config::QuotaLimit& running = limits->concurrent_execs;
  if (current.execs_running >= running.value) {
    return Refusal(principal, "has " + Plural(current.execs_running, "exec", "execs") + " running",
                   running, running.value == 0 ? kNeverFrees : "wait for one of them to end");
  }
  const config::QuotaLimit& time = limits->exec_seconds_per_hour;
  milliseconds used{0};
  for (const auto& [at, charged] : current.exec_time) used += charged;
  const milliseconds allowed = seconds(time.value);
  if (used >= allowed) {
    std::string frees(kNeverFrees);
    if (time.value > 0) {
      // Exec time frees step by step; the place is back once the total falls below the limit.
      milliseconds left = used;
      SteadyTime at = now;
      for (const auto& [ended, charged] : current.exec_time) {
        left -= charged;
        at = ended + kWindow;
        if (left < allowed) break;
      }
      frees = "exec time frees at " + WhenText(at);
    }
    return Refusal(principal,
                   "used " + std::to_string(std::chrono::floor<seconds>(used).count()) +
                       " s of exec time in the last hour",
                   time, frees);
  }
  ++current.execs_running;
  return ExecTicket(this, principal.id(), now);
}

void QuotaBook::Release(const std::string& principal, SteadyTime started) {
  std::lock_guard lock(mu_);
  const SteadyTime now = clock_.SteadyNow();
  Account& account = accounts_[principal];
  --account.execs_running;
  const milliseconds ran = std::chrono::duration_cast<milliseconds>(now - started);
  if (!account.exec_time.empty() && now - account.exec_step_opened < kExecStep) {
    // Into the open step; it now frees an hour after this exec ended (later, never sooner).
    account.exec_time.back().first = now;
    account.exec_time.back().second += ran;
  } else {
    account.exec_time.emplace_back(now, ran);
    account.exec_step_opened = now;
  }
}

std::size_t QuotaBook::Accounts() {
  std::lock_guard lock(mu_);
  return accounts_.size();
}

QuotaBook::Usage QuotaBook::UsageOf(const auth::Principal& principal) {
  std::lock_guard lock(mu_);
  SweepLocked(clock_.SteadyNow());
  auto it = accounts_.find(principal.id());
  if (it == accounts_.end()) return {};
  PruneLocked(it->second, clock_.SteadyNow());
  Usage usage{.creates_in_window = static_cast<std::int64_t>(it->second.creates.size()),
              .execs_running = it->second.execs_running};
  for (const auto& [at, charged] : it->second.exec_time) usage.exec_time_in_window += charged;
  return usage;
}

}  // namespace llmbox::hub::boxes
