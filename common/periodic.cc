#include "common/periodic.h"

#include <utility>

#include "common/status.h"

namespace llmbox::common {

PeriodicTask::PeriodicTask(Clock& clock, std::chrono::nanoseconds interval,
                           std::function<void()> task)
    : clock_(clock), interval_(interval), task_(std::move(task)) {
  LLMBOX_CHECK(interval_.count() > 0, "PeriodicTask: the interval must be positive");
}

PeriodicTask::~PeriodicTask() { Stop(); }

void PeriodicTask::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Loop(); });
}

void PeriodicTask::Stop() {
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    // Taken under the lock, so that concurrent Stops join once.
    LLMBOX_CHECK(!thread_.joinable() || thread_.get_id() != std::this_thread::get_id(),
                 "PeriodicTask::Stop called from its own task (it would join itself)");
    thread = std::move(thread_);
  }
  cv_.notify_all();
  if (thread.joinable()) thread.join();
}

void PeriodicTask::RunNow() {
  {
    std::lock_guard lock(mu_);
    run_now_ = true;
  }
  cv_.notify_all();
}

int PeriodicTask::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

bool PeriodicTask::WaitForRuns(int count, Clock::SteadyTime deadline) {
  std::unique_lock lock(mu_);
  return clock_.WaitUntil(lock, done_cv_, deadline, [&] { return runs_ >= count; });
}

void PeriodicTask::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    clock_.WaitUntil(lock, cv_, clock_.SteadyNow() + interval_,
                     [this] { return stop_ || run_now_; });
    if (stop_) break;
    run_now_ = false;
    lock.unlock();
    task_();
    lock.lock();
    ++runs_;
    done_cv_.notify_all();
  }
}

}  // namespace llmbox::common
