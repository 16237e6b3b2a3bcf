// hub/audit/audit_log.h
//
// The hub's audit log: who did what to which box, spoke, key or token, and how it ended. One
// JSON object per line in a file of its own (hub.audit.path, <state_dir>/audit.log by default),
// rotated by size. docs/security.md ("Audit log") says what is in it and what never is.
//
//   AuditLog audit({.path = "/var/lib/llmbox-hub/audit.log"}, clock);
//   LLMBOX_RETURN_IF_ERROR(audit.Open());
//   audit.Record({.event = Event::kBoxDestroy, .principal = "key:alice",
//                 .client = "192.0.2.7", .box_id = "b1", .outcome = Outcome(status)});
//
// A line: {"time":"2026-11-30T07:00:00.123Z","event":"box.destroy","principal":"key:alice",
// "client":"192.0.2.7","box_id":"b1","spoke":"local","outcome":"ok"} — `time` RFC 3339 UTC to
// the millisecond, `event` from the closed set below, `outcome` "ok" or the failure's code in
// snake case ("permission_denied"), with `error` (its message) beside a failure.
//
// What never goes in: a code, token, API key, credential, authorize URL, and no output (exec,
// logs). Callers pass none; every string field is also passed through common::Redact, cut to
// kMaxFieldBytes and made valid UTF-8, and an exec's argv (chatbot input, which may hold a
// secret the chatbot learned) is bounded (ArgvForAudit) and redacted argument by argument and
// in pairs ("Bearer" "<token>").
//
// Writing: each record is one write(2) of a whole line on a file opened O_APPEND, flushed by
// that write (the kernel has it; a hub crash loses nothing written), fsync'd too when
// `fsync` is set. Several processes may append at once (the serving hub and the admin
// commands): on a local file one O_APPEND write is never interleaved with another. A line left
// torn by a crash or a full disk is ended with a newline before the next record, so a torn
// line never swallows the next one. Rotation (only where `rotate` is set: the serving hub)
// happens before a record that would take the file past `max_size`: path.<keep-1> becomes
// path.<keep> (the oldest is overwritten), ..., path becomes path.1, and a new file is made.
// New files get mode 0600.
//
// A record that cannot be written (disk full, folder gone) does not stop what it records:
// Record() logs the failure (the first of a run of failures at error, the rest counted) and
// tries again with the next record; Append() returns the error for callers that want it.
//
// Thread-safe: one mutex around the write and rotation, which take microseconds on a local
// disk (plus an fsync when asked for).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "common/clock.h"

namespace llmbox::hub::audit {

// What happened. A closed set: a reader can rely on these names.
enum class Event {
  kBoxCreate,              // box.create: create_llmbox
  kBoxActivate,            // box.activate: a code was sent to the box; outcome says how it went
  kBoxActivateRefused,     // box.activate_refused: the page refused a submission (`reason`)
  kBoxDestroy,             // box.destroy: destroy_llmbox
  kBoxExec,                // box.exec: exec_llmbox (the argv, never the output)
  kBoxLogs,                // box.logs: get_llmbox_logs (never the logs)
  kBoxNetwork,             // box.network: set_llmbox_network
  kApiKeyCreate,           // apikey.create (the key's name, never the key)
  kApiKeyRevoke,           // apikey.revoke
  kJoinTokenCreate,        // join_token.create (the spoke's name, never the token)
  kOAuthGrantRevoke,       // oauth_grant.revoke
  kOAuthConsent,           // oauth.consent: a person allowed or denied an MCP client
  kSpokeJoin,              // spoke.join: a spoke joined with a token, or was refused
  kSpokeRemove,            // spoke.remove
  kSpokeCordon,            // spoke.cordon
  kSpokeUncordon,          // spoke.uncordon
  kSpokeDrain,             // spoke.drain
  kClusterRotateIdentity,  // cluster.rotate_identity
  // box.reap: a spoke removed a box on its own (its reaper), as its removal journal says
  // (hub/boxes/removal_audit.h); `reason`, `removed_at`, `seq`
  kBoxReap,
};
std::string_view EventName(Event event);

// "ok" for an OK status, else its code in snake case ("permission_denied").
std::string Outcome(const absl::Status& status);
std::string Outcome(absl::StatusCode code);

struct AuditRecord {
  Event event = Event::kBoxCreate;
  std::string principal;  // the caller's principal id ("key:alice"), "operator:<user>", ""
  std::string client;     // the client's address (behind trusted proxies: the browser's)
  std::string box_id;
  std::string spoke;
  std::string outcome = "ok";  // Outcome()
  std::string error;           // a failure's message (redacted and cut like every field)
  // exec only: the command (ArgvForAudit bounds and redacts it again here).
  std::vector<std::string> argv;
  // Further fields by name (names are chosen by the caller's code, never from input): image,
  // reason, name, owner, ... Values are treated as hostile.
  std::vector<std::pair<std::string, std::string>> details;
};

struct AuditOptions {
  std::string path;                      // the file; its folder must exist
  std::uint64_t max_size = 64ull << 20;  // bytes before a rotation (when `rotate`)
  int keep = 5;                          // rotated files kept: path.1 .. path.<keep>
  bool fsync = false;                    // fsync after every record
  bool rotate = true;                    // false: append only (the admin commands)
};

// Bounds of what a record holds.
inline constexpr std::size_t kMaxFieldBytes = 1024;  // any one string field
inline constexpr std::size_t kMaxArgs = 64;          // an exec's arguments kept
inline constexpr std::size_t kMaxArgvBytes = 8192;   // an exec's arguments, in all

// `argv` as the audit log keeps it: at most kMaxArgs arguments of at most kMaxFieldBytes and
// kMaxArgvBytes in all, valid UTF-8, each redacted alone and with the argument before it (so
// "Bearer" "<token>" loses the token). `*truncated` is set when anything was cut.
std::vector<std::string> ArgvForAudit(const std::vector<std::string>& argv, bool* truncated);

// The line a record becomes (with its newline), at `now_ms`. Exposed for tests.
std::string FormatRecord(const AuditRecord& record, std::int64_t now_ms);

class AuditLog {
 public:
  // `clock` must outlive the log. Nothing is opened until Open().
  AuditLog(AuditOptions options, common::Clock& clock);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens (creating, mode 0600) the file. FailedPrecondition naming the path and the system's
  // reason when it cannot.
  [[nodiscard]] absl::Status Open();

  // Appends `record` (rotating first when due). FailedPrecondition naming the path when it
  // cannot be written; the next call tries again (reopening the file).
  [[nodiscard]] absl::Status Append(const AuditRecord& record);
  // Append(), a failure logged instead of returned.
  void Record(const AuditRecord& record);

  const std::string& path() const { return options_.path; }

 private:
  // Append(); `*first_failure` set when this failure starts a run of them.
  [[nodiscard]] absl::Status Write(const AuditRecord& record, bool* first_failure);
  [[nodiscard]] absl::Status OpenLocked();
  [[nodiscard]] absl::Status RotateLocked();
  [[nodiscard]] absl::Status WriteLocked(const std::string& line);

  const AuditOptions options_;
  common::Clock& clock_;
  std::mutex mu_;
  int fd_ = -1;                 // guarded by mu_
  std::uint64_t failures_ = 0;  // records lost in the current run of failures; guarded by mu_
};

}  // namespace llmbox::hub::audit
