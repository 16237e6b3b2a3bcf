// hub/boxes/removal_audit.cc
#include "hub/boxes/removal_audit.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "spdlog/spdlog.h"

#include "common/absl_compat.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/utf8.h"
#include "common/validate.h"

namespace llmbox::hub::boxes {
namespace {

bool ValidJournalId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// The spoke's reason when it is a plain word of [a-z_], else "unknown".
std::string Reason(std::string_view reason) {
  const bool plain = !reason.empty() && reason.size() <= 32 &&
                     std::all_of(reason.begin(), reason.end(),
                                 [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  return plain ? std::string(reason) : std::string("unknown");
}

// The latest time RFC 3339 can write (9999-12-31T23:59:59.999Z): a spoke's clock is its word.
constexpr std::int64_t kMaxMillis = 253'402'300'799'999;

}  // namespace

RemovalAudit::RemovalAudit(store::Store& store, audit::AuditLog& audit, RemovalAuditOptions options)
    : store_(store), audit_(audit), options_(options) {}

absl::Status RemovalAudit::Collect(const std::string& spoke, cluster::SpokeClient& client) {
  {
    std::lock_guard lock(mu_);
    if (!collecting_.insert(spoke).second) return absl::OkStatus();
  }
  absl::Status status = CollectLocked(spoke, client);
  {
    std::lock_guard lock(mu_);
    collecting_.erase(spoke);
  }
  return status;
}

absl::Status RemovalAudit::Save(const store::RemovalCursor& cursor) {
  absl::Status saved = store_.SetRemovalCursor(cursor);
  {
    // Kept here either way: this run records none twice; only a restart before the store takes
    // it writes those records again.
    std::lock_guard lock(mu_);
    cursors_[cursor.spoke] = {.cursor = cursor, .saved = saved.ok()};
  }
  if (!saved.ok()) {
    spdlog::warn(
        "audit: spoke {}: where its removals were recorded up to cannot be kept (tried again at "
        "the next collection): {}",
        cursor.spoke, common::AsStd(saved.message()));
  }
  return saved;
}

absl::Status RemovalAudit::CollectLocked(const std::string& spoke, cluster::SpokeClient& client) {
  store::RemovalCursor cursor{.spoke = spoke};
  std::optional<Kept> kept;
  {
    std::lock_guard lock(mu_);
    if (auto it = cursors_.find(spoke); it != cursors_.end()) kept = it->second;
  }
  if (!kept.has_value()) {
    if (auto stored = store_.GetRemovalCursor(spoke); stored.ok()) {
      cursor = *std::move(stored);
    } else if (!absl::IsNotFound(stored.status())) {
      spdlog::warn("audit: spoke {}: its removals wait: {}", spoke,
                   common::AsStd(stored.status().message()));
      return stored.status();
    }
  } else {
    cursor = kept->cursor;
    // A place the store refused last time: kept first, before anything more is recorded.
    if (!kept->saved) LLMBOX_RETURN_IF_ERROR(Save(cursor));
  }
  for (std::size_t answers = 0; answers < options_.max_answers; ++answers) {
    auto answer = client.ListRemovals(cursor.journal_id, static_cast<std::uint64_t>(cursor.seq),
                                      options_.call_timeout);
    // A spoke from before removal journals has nothing to collect.
    if (absl::IsUnimplemented(answer.status())) return absl::OkStatus();
    if (!answer.ok()) return answer.status();
    if (!ValidJournalId(answer->journal_id)) {
      spdlog::warn(
          "audit: spoke {} answered its removals with a journal id that is not valid; "
          "refused",
          spoke);
      return absl::InvalidArgumentError("spoke " + spoke + ": removal journal id not valid");
    }
    std::int64_t after = cursor.seq;
    if (answer->journal_id != cursor.journal_id) {
      if (!cursor.journal_id.empty()) {
        spdlog::warn(
            "audit: spoke {} keeps a new removal journal (its state was lost or reset); "
            "recording it from its start",
            spoke);
      }
      after = 0;
    }
    if (answer->first_seq > static_cast<std::uint64_t>(after) + 1 &&
        answer->first_seq <= answer->last_seq && !answer->removals.empty()) {
      spdlog::warn(
          "audit: spoke {} dropped {} removal(s) from its journal before the hub "
          "collected them (its journal is bounded); they are not in the audit log",
          spoke, answer->first_seq - static_cast<std::uint64_t>(after) - 1);
    }
    std::int64_t last = after;
    std::size_t refused = 0;
    bool out_of_order = false;
    absl::Status written;
    const std::size_t looked_at = std::min(answer->removals.size(), kMaxPerAnswer);
    for (std::size_t i = 0; i < looked_at; ++i) {
      const cluster::SpokeRemoval& removal = answer->removals[i];
      if (removal.seq <= static_cast<std::uint64_t>(last) ||
          removal.seq > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        out_of_order = true;
        break;
      }
      if (!common::ValidateBoxId(removal.box_id).ok()) {
        ++refused;
        last = static_cast<std::int64_t>(removal.seq);
        continue;
      }
      audit::AuditRecord record{.event = audit::Event::kBoxReap,
                                .principal = "spoke:" + spoke,
                                .box_id = removal.box_id,
                                .spoke = spoke};
      const bool known_code = removal.code >= 0 && removal.code <= 16;
      record.outcome = known_code ? audit::Outcome(static_cast<absl::StatusCode>(removal.code))
                                  : std::string("unknown");
      if (removal.code != 0) {
        record.error = common::Utf8Prefix(removal.error, kMaxTextBytes);
        if (record.error.empty()) record.error = "the spoke gave no reason";
      }
      const std::int64_t at_ms =
          std::clamp<std::int64_t>(removal.at.time_since_epoch().count(), 0, kMaxMillis);
      record.details = {{"reason", Reason(removal.reason)},
                        {"removed_at", common::FormatUtcSeconds(at_ms)},
                        {"seq", std::to_string(removal.seq)}};
      written = audit_.Append(record);
      // Not recorded: the cursor stays before it, and the next collection tries again.
      if (!written.ok()) break;
      last = static_cast<std::int64_t>(removal.seq);
    }
    if (refused > 0) {
      spdlog::warn("audit: spoke {} listed {} removal(s) whose box id is not valid; not recorded",
                   spoke, refused);
    }
    if (last != cursor.seq || answer->journal_id != cursor.journal_id) {
      cursor.journal_id = answer->journal_id;
      cursor.seq = last;
      LLMBOX_RETURN_IF_ERROR(Save(cursor));
    }
    if (!written.ok()) return written;
    if (out_of_order) {
      spdlog::warn(
          "audit: spoke {} listed removals out of sequence; the rest of its answer is "
          "refused",
          spoke);
      return absl::InvalidArgumentError("spoke " + spoke + ": removals out of sequence");
    }
    if (answer->removals.size() < kMaxPerAnswer) return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace llmbox::hub::boxes
