// hub/audit/audit_log.cc
#include "hub/audit/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include <nlohmann/json.hpp>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/absl_compat.h"
#include "common/redact.h"
#include "common/status.h"
#include "common/utf8.h"

namespace llmbox::hub::audit {
namespace {

// Fields in a fixed order (time, event, who, what, outcome) for people reading the file.
using json = nlohmann::ordered_json;

std::string Clean(std::string_view text) {
  return common::Utf8Prefix(common::Redact(text), kMaxFieldBytes);
}

std::string SystemError(std::string_view what, const std::string& path) {
  return "audit log: cannot " + std::string(what) + " " + path + ": " + std::strerror(errno);
}

// The file a rotation moves `path`'s n-th generation to.
std::string Generation(const std::string& path, int n) {
  return n == 0 ? path : path + "." + std::to_string(n);
}

}  // namespace

std::string_view EventName(Event event) {
  switch (event) {
    case Event::kBoxCreate:
      return "box.create";
    case Event::kBoxActivate:
      return "box.activate";
    case Event::kBoxActivateRefused:
      return "box.activate_refused";
    case Event::kBoxDestroy:
      return "box.destroy";
    case Event::kBoxExec:
      return "box.exec";
    case Event::kBoxLogs:
      return "box.logs";
    case Event::kBoxNetwork:
      return "box.network";
    case Event::kApiKeyCreate:
      return "apikey.create";
    case Event::kApiKeyRevoke:
      return "apikey.revoke";
    case Event::kJoinTokenCreate:
      return "join_token.create";
    case Event::kOAuthGrantRevoke:
      return "oauth_grant.revoke";
    case Event::kOAuthConsent:
      return "oauth.consent";
    case Event::kSpokeJoin:
      return "spoke.join";
    case Event::kSpokeRemove:
      return "spoke.remove";
    case Event::kSpokeCordon:
      return "spoke.cordon";
    case Event::kSpokeUncordon:
      return "spoke.uncordon";
    case Event::kSpokeDrain:
      return "spoke.drain";
    case Event::kClusterRotateIdentity:
      return "cluster.rotate_identity";
    case Event::kBoxReap:
      return "box.reap";
  }
  LLMBOX_CHECK(false, "an audit event without a name");
  return "";
}

std::string Outcome(absl::StatusCode code) {
  if (code == absl::StatusCode::kOk) return "ok";
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

std::string Outcome(const absl::Status& status) { return Outcome(status.code()); }

std::vector<std::string> ArgvForAudit(const std::vector<std::string>& argv, bool* truncated) {
  *truncated = argv.size() > kMaxArgs;
  std::vector<std::string> out;
  std::size_t total = 0;
  std::string_view previous;
  for (std::size_t i = 0; i < argv.size() && i < kMaxArgs; ++i) {
    // A secret split over two arguments ("Bearer" "<token>", "-H" "Authorization: ...") is
    // caught by redacting the pair: when the pair loses more than the two alone, the
    // argument is a secret's second half.
    std::string arg = common::Redact(argv[i]);
    if (!previous.empty()) {
      const std::string pair = std::string(previous) + " " + argv[i];
      if (common::Redact(pair) != common::Redact(previous) + " " + arg) {
        arg = std::string(common::kRedacted);
      }
    }
    previous = argv[i];
    std::string kept = common::Utf8Prefix(arg, std::min(kMaxFieldBytes, kMaxArgvBytes - total));
    if (kept.size() < arg.size()) *truncated = true;
    total += kept.size();
    out.push_back(std::move(kept));
    if (total >= kMaxArgvBytes) {
      *truncated = *truncated || i + 1 < argv.size();
      break;
    }
  }
  return out;
}

std::string FormatRecord(const AuditRecord& record, std::int64_t now_ms) {
  json line = json::object();
  line["time"] =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(now_ms), absl::UTCTimeZone());
  line["event"] = EventName(record.event);
  line["principal"] = Clean(record.principal);
  line["client"] = Clean(record.client);
  if (!record.box_id.empty()) line["box_id"] = Clean(record.box_id);
  if (!record.spoke.empty()) line["spoke"] = Clean(record.spoke);
  line["outcome"] = Clean(record.outcome);
  if (!record.error.empty()) line["error"] = Clean(record.error);
  if (record.event == Event::kBoxExec) {
    bool truncated = false;
    line["argv"] = ArgvForAudit(record.argv, &truncated);
    if (truncated) {
      line["argv_truncated"] = true;
      line["argc"] = record.argv.size();
    }
  }
  for (const auto& [name, value] : record.details) {
    if (!line.contains(name)) line[name] = Clean(value);
  }
  return line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

AuditLog::AuditLog(AuditOptions options, common::Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status AuditLog::Open() {
  std::lock_guard lock(mu_);
  return OpenLocked();
}

absl::Status AuditLog::OpenLocked() {
  if (fd_ >= 0) ::close(fd_);
  // Read as well as append: the last byte tells whether a line was left torn.
  fd_ = ::open(options_.path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return absl::FailedPreconditionError(SystemError("open", options_.path));
  return absl::OkStatus();
}

absl::Status AuditLog::RotateLocked() {
  // Oldest first, so that no generation is overwritten before it moved on.
  for (int n = options_.keep - 1; n >= 0; --n) {
    if (::rename(Generation(options_.path, n).c_str(), Generation(options_.path, n + 1).c_str()) !=
            0 &&
        errno != ENOENT) {
      return absl::FailedPreconditionError(SystemError("rotate", Generation(options_.path, n)));
    }
  }
  return OpenLocked();
}

absl::Status AuditLog::WriteLocked(const std::string& line) {
  // The file we hold may have been moved away (another rotation, logrotate) or removed:
  // records go to the file at `path`.
  struct stat held {};
  struct stat named {};
  if (fd_ < 0 || ::fstat(fd_, &held) != 0 || ::stat(options_.path.c_str(), &named) != 0 ||
      held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
    LLMBOX_RETURN_IF_ERROR(OpenLocked());
    if (::fstat(fd_, &held) != 0) {
      return absl::FailedPreconditionError(SystemError("stat", options_.path));
    }
  }
  // Writers in other processes (the admin commands) take the same lock, so the size and the
  // last byte read below are not those of a write still under way.
  if (::flock(fd_, LOCK_EX) != 0) {
    return absl::FailedPreconditionError(SystemError("lock", options_.path));
  }
  // A rotation below closes the locked file (which drops its lock) and opens another.
  struct Unlock {
    const int& fd;
    ~Unlock() {
      if (fd >= 0) ::flock(fd, LOCK_UN);
    }
  } unlock{fd_};
  if (::fstat(fd_, &held) != 0) {
    return absl::FailedPreconditionError(SystemError("stat", options_.path));
  }
  auto size = static_cast<std::uint64_t>(held.st_size);
  if (options_.rotate && size > 0 && size + line.size() > options_.max_size) {
    LLMBOX_RETURN_IF_ERROR(RotateLocked());
    size = 0;
  }
  // A line torn by a crash or a full disk (ours or another process's) is ended first.
  std::string out;
  char last = '\n';
  if (size > 0 && ::pread(fd_, &last, 1, static_cast<off_t>(size - 1)) != 1) {
    return absl::FailedPreconditionError(SystemError("read", options_.path));
  }
  if (last != '\n') out = "\n";
  out += line;
  const ssize_t written = ::write(fd_, out.data(), out.size());
  if (written != static_cast<ssize_t>(out.size())) {
    if (written >= 0) errno = ENOSPC;
    return absl::FailedPreconditionError(SystemError("write", options_.path));
  }
  if (options_.fsync && ::fsync(fd_) != 0) {
    return absl::FailedPreconditionError(SystemError("fsync", options_.path));
  }
  return absl::OkStatus();
}

absl::Status AuditLog::Write(const AuditRecord& record, bool* first_failure) {
  const std::string line = FormatRecord(record, common::ToUnixMillis(clock_.Now()));
  std::lock_guard lock(mu_);
  absl::Status written = WriteLocked(line);
  if (written.ok()) {
    if (failures_ > 0) {
      spdlog::warn("audit log: writing again to {} after {} record(s) lost", options_.path,
                   failures_);
    }
    failures_ = 0;
  } else {
    *first_failure = ++failures_ == 1;
  }
  return written;
}

absl::Status AuditLog::Append(const AuditRecord& record) {
  bool first_failure = false;
  return Write(record, &first_failure);
}

void AuditLog::Record(const AuditRecord& record) {
  // Only the first failure of a run is logged, so a full disk does not fill the other log too.
  bool first_failure = false;
  if (auto st = Write(record, &first_failure); !st.ok() && first_failure) {
    spdlog::error("{} (the {} record is lost; later ones are tried, the lost counted)",
                  common::AsStd(st.message()), EventName(record.event));
  }
}

}  // namespace llmbox::hub::audit
