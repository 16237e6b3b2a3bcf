// Benchmark: what an audit record costs the call it records. Microseconds per
// AuditLog::Append of an exec record (redaction of its argv, JSON, the lock, the write) from
// one thread and from 8 at once, against the floor of one plain O_APPEND write(2) of the same
// line; and with hub.audit.fsync on, against a plain write + fsync. Files go to a scratch
// folder under $TMPDIR.
//
// It asserts nothing about time; it fails only when a record is not written.
//
//   build/tests/bench/llmbox_audit_log_bench [records, default 20000]

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "hub/audit/audit_log.h"
#include "tests/bench/bench_report.h"

namespace {

namespace fs = std::filesystem;
using llmbox::bench::Percentile;
using llmbox::bench::Say;
using namespace llmbox::hub::audit;

double MicrosSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

const AuditRecord& Exec() {
  static const AuditRecord record{
      .event = Event::kBoxExec,
      .principal = "key:alice",
      .client = "192.0.2.7",
      .box_id = "build-box-1",
      .argv = {"sh", "-c", "cd /workspace && make -j4 test 2>&1 | tail -n 50"}};
  return record;
}

void Report(const char* what, const std::vector<double>& us) {
  Say("%-44s p50 %7.2f us  p99 %7.2f us\n", what, Percentile(us, 0.5), Percentile(us, 0.99));
}

// One plain write of `line` per record, and an fsync after each when asked: the floor.
std::vector<double> Floor(const fs::path& path, const std::string& line, int n, bool sync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) std::exit(1);
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(1);
    if (sync) ::fsync(fd);
    us.push_back(MicrosSince(start));
  }
  ::close(fd);
  return us;
}

std::vector<double> Audited(const fs::path& path, int n, bool sync) {
  AuditLog log({.path = path.string(), .fsync = sync}, llmbox::common::SystemClock::Get());
  if (!log.Open().ok()) std::exit(1);
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!log.Append(Exec()).ok()) std::exit(1);
    us.push_back(MicrosSince(start));
  }
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const fs::path dir =
      fs::temp_directory_path() / ("llmbox-audit-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string line = FormatRecord(Exec(), 0);
  Say("audit record: %zu bytes; %d records each; files in %s\n", line.size(), n, dir.c_str());

  Report("floor: write(2) of the line", Floor(dir / "floor.log", line, n, false));
  Report("AuditLog::Append, 1 thread", Audited(dir / "audit.log", n, false));

  AuditLog shared({.path = (dir / "shared.log").string()}, llmbox::common::SystemClock::Get());
  const auto timed = llmbox::bench::RunConcurrently(8, n, [&](int, int) {
    const auto start = std::chrono::steady_clock::now();
    if (!shared.Append(Exec()).ok()) std::exit(1);
    return MicrosSince(start) / 1000.0;
  });
  std::vector<double> us;
  for (double ms : timed.ms) us.push_back(ms * 1000.0);
  Report("AuditLog::Append, 8 threads", us);
  Say("%-44s %7.0f records/s\n", "8 threads, throughput", n / timed.seconds);

  const int synced = std::max(1, n / 100);
  Report("floor: write(2) + fsync", Floor(dir / "floor-sync.log", line, synced, true));
  Report("AuditLog::Append, hub.audit.fsync: true", Audited(dir / "sync.log", synced, true));

  fs::remove_all(dir);
  llmbox::bench::WriteReport();
  return 0;
}
