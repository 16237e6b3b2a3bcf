// hub/boxes/quota_book.h
//
// What each principal may use of the hub (hub.quotas, config/quota_config.h): boxes alive,
// creates per hour, execs at once and exec seconds per hour. BoxRegistry asks the book before
// it creates a box or runs an exec; a refusal is ResourceExhausted and names the limit (its
// config key and value) and when it frees.
//
//   QuotaBook quotas(config.quotas, clock);
//   LLMBOX_RETURN_IF_ERROR(quotas.AdmitCreate(
//       caller, [&] { return store.CountLiveBoxes(caller.id()); },
//       [&] { return store.InsertBox(record); }));
//   LLMBOX_ASSIGN_OR_RETURN(QuotaBook::ExecTicket ticket, quotas.AdmitExec(caller));
//   // ... run the exec; destroying the ticket frees its place and charges its seconds
//
// What is counted where: boxes alive are not counted here but read from the store by the
// caller (count_alive), so they survive a restart. The hourly windows (creates, exec seconds)
// and the execs running are in memory: a restart forgets the last hour (docs/security.md,
// "Quotas"). A window slides: a create frees its place one hour after it was admitted; exec
// seconds are kept in steps of at most a minute each, and free one hour after the last exec
// of their step ended (never earlier than an hour after they were used).
//
// Whose quota: the principal that asks (an admin acting on another's box uses the admin's
// own). Admins have no limits unless an override names them or admins_exempt is off.
//
// Thread-safe. Time comes from the injected clock (steady time for windows and durations,
// wall time only to say when something frees).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/auth/principal.h"
#include "hub/config/quota_config.h"

namespace llmbox::hub::boxes {

class QuotaBook {
 public:
  // An exec's place among its principal's concurrent execs. Destroying it (on every path:
  // success, error, cancellation) frees the place and charges the time since AdmitExec, by
  // the clock, to the principal's exec seconds. Move-only; a moved-from or default ticket
  // does nothing.
  class ExecTicket {
   public:
    ExecTicket() = default;
    ExecTicket(ExecTicket&& other) noexcept;
    ExecTicket& operator=(ExecTicket&& other) noexcept;
    ExecTicket(const ExecTicket&) = delete;
    ExecTicket& operator=(const ExecTicket&) = delete;
    ~ExecTicket();

   private:
    friend class QuotaBook;
    ExecTicket(QuotaBook* book, std::string principal, common::Clock::SteadyTime started)
        : book_(book), principal_(std::move(principal)), started_(started) {}
    void Release();

    QuotaBook* book_ = nullptr;
    std::string principal_;
    common::Clock::SteadyTime started_;
  };

  // What a principal has used, for tests and the docs' examples.
  struct Usage {
    std::int64_t creates_in_window = 0;
    std::int64_t execs_running = 0;
    std::chrono::milliseconds exec_time_in_window{0};
  };

  static constexpr std::chrono::hours kWindow{1};

  // `clock` must outlive the book (and every ticket it hands out).
  QuotaBook(config::QuotaConfig config, common::Clock& clock);
  QuotaBook(const QuotaBook&) = delete;
  QuotaBook& operator=(const QuotaBook&) = delete;

  // The limits that apply to `principal`: its override, else none for an exempt admin
  // (nullopt), else the defaults.
  std::optional<config::QuotaLimits> LimitsFor(const auth::Principal& principal) const;

  // Whether `principal`, with the boxes alive `count_alive` reads, may create one now: OK,
  // count_alive's error, or ResourceExhausted naming boxes_alive or creates_per_hour. Counts
  // nothing: a cheap early answer before the create does any work (AdmitCreate decides). For a
  // principal without limits, OK without reading.
  [[nodiscard]] absl::Status CheckCreate(
      const auth::Principal& principal,
      const std::function<absl::StatusOr<std::int64_t>()>& count_alive);

  // Decides a create. Under one lock for the whole book, so two creates never both take a
  // principal's last place: reads the principal's boxes alive (`count_alive`), refuses as
  // CheckCreate does, else runs `reserve` (which must make the new box count as alive: insert
  // its record) and, when it succeeds, counts the create in the principal's hour. Returns
  // count_alive's error, the refusal, or reserve's status. For a principal without limits
  // only `reserve` runs.
  [[nodiscard]] absl::Status AdmitCreate(
      const auth::Principal& principal,
      const std::function<absl::StatusOr<std::int64_t>()>& count_alive,
      const std::function<absl::Status()>& reserve);

  // A place for one exec of `principal`, or ResourceExhausted naming concurrent_execs (frees
  // when one of its execs ends) or exec_seconds_per_hour (with when it frees). A principal
  // without limits gets a ticket that counts nothing.
  [[nodiscard]] absl::StatusOr<ExecTicket> AdmitExec(const auth::Principal& principal);

  Usage UsageOf(const auth::Principal& principal);
  // How many principals the book holds counts for (those active within the last hour, give
  // or take the minute between sweeps).
  std::size_t Accounts();

 private:
  using SteadyTime = common::Clock::SteadyTime;
  // One principal's counts; erased when all are empty.
  struct Account {
    std::deque<SteadyTime> creates;  // admitted creates in the window, oldest first
    // Exec time charged, in steps: (when the step's last exec ended, milliseconds), oldest
    // first. A step takes charges for a minute after it opened, so the deque stays short.
    std::deque<std::pair<SteadyTime, std::chrono::milliseconds>> exec_time;
    SteadyTime exec_step_opened{};
    std::int64_t execs_running = 0;
    bool Empty() const { return creates.empty() && exec_time.empty() && execs_running == 0; }
  };

  // The refusal for `principal` with `alive` boxes, or OK. Holds mu_.
  absl::Status CreateRefusalLocked(const auth::Principal& principal,
                                   const config::QuotaLimits& limits, std::int64_t alive,
                                   SteadyTime now);
  // Drops what has left the window from one account.
  void PruneLocked(Account& account, SteadyTime now);
  // At most once a minute: prunes every account and erases those gone empty.
  void SweepLocked(SteadyTime now);
  void Release(const std::string& principal, SteadyTime started);
  // "2026-11-29T21:40:12Z (in 23m5s)" for a steady time ahead.
  std::string WhenText(SteadyTime at);

  const config::QuotaConfig config_;
  common::Clock& clock_;
  std::mutex admission_mu_;  // held across a whole AdmitCreate; taken before mu_
  std::mutex mu_;            // guards accounts_ and last_sweep_
  std::map<std::string, Account, std::less<>> accounts_;
  SteadyTime last_sweep_{};
};

}  // namespace llmbox::hub::boxes
