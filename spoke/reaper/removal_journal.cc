// spoke/reaper/removal_journal.cc
#include "spoke/reaper/removal_journal.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/files.h"
#include "common/secrets.h"
#include "common/utf8.h"

namespace llmbox::spoke::reaper {
namespace {

using nlohmann::json;

// The file holds at most max_entries entries of a few short fields each.
constexpr std::size_t kMaxFileBytes = 8 << 20;

std::string Cut(std::string_view text) {
  return common::Utf8Prefix(text, RemovalJournal::kMaxTextBytes);
}

}  // namespace

RemovalJournal::RemovalJournal(RemovalJournalOptions options, common::Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  std::lock_guard lock(mu_);
  StartNewLocked();
}

void RemovalJournal::StartNewLocked() {
  auto token = common::RandomToken(12);
  // Without randomness the clock still tells this journal from one made before.
  id_ = token.ok() ? *token : absl::StrCat("t", common::ToUnixMillis(clock_.Now()));
  last_seq_ = 0;
  entries_.clear();
}

absl::Status RemovalJournal::Load() {
  std::lock_guard lock(mu_);
  if (options_.path.empty()) return absl::OkStatus();
  auto text = common::ReadSmallFile(options_.path, kMaxFileBytes);
  if (!text.ok()) {
    std::error_code ec;
    if (absl::IsNotFound(text.status()) && !std::filesystem::exists(options_.path, ec)) {
      return absl::OkStatus();
    }
    return text.status();
  }
  const json doc = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](std::string_view why) {
    StartNewLocked();
    return absl::DataLossError(absl::StrCat("removal journal ", options_.path, ": ",
                                            std::string(why), "; a new journal is started"));
  };
  if (!doc.is_object() || !doc.contains("journal") || !doc["journal"].is_string() ||
      !doc.contains("last_seq") || !doc["last_seq"].is_number_unsigned() ||
      !doc.contains("removals") || !doc["removals"].is_array()) {
    return bad("not a removal journal");
  }
  std::deque<RemovalEntry> entries;
  std::uint64_t previous = 0;
  for (const json& e : doc["removals"]) {
    if (!e.is_object() || !e.value("seq", json()).is_number_unsigned() ||
        !e.value("box_id", json()).is_string() || !e.value("reason", json()).is_string() ||
        !e.value("at_ms", json()).is_number_integer() ||
        !e.value("code", json()).is_number_integer() || !e.value("error", json()).is_string()) {
      return bad("an entry is not a removal");
    }
    RemovalEntry entry{.seq = e["seq"].get<std::uint64_t>(),
                       .box_id = Cut(e["box_id"].get<std::string>()),
                       .reason = Cut(e["reason"].get<std::string>()),
                       .at_ms = e["at_ms"].get<std::int64_t>(),
                       .code = static_cast<absl::StatusCode>(e["code"].get<int>()),
                       .error = Cut(e["error"].get<std::string>())};
    if (entry.seq <= previous) return bad("sequence numbers out of order");
    previous = entry.seq;
    entries.push_back(std::move(entry));
  }
  const std::uint64_t last_seq = doc["last_seq"].get<std::uint64_t>();
  if (last_seq < previous) return bad("last_seq is below an entry's");
  id_ = Cut(doc["journal"].get<std::string>());
  last_seq_ = last_seq;
  entries_ = std::move(entries);
  while (entries_.size() > options_.max_entries) entries_.pop_front();
  return absl::OkStatus();
}

absl::Status RemovalJournal::Add(std::string_view box_id, std::string_view reason,
                                 const absl::Status& outcome) {
  std::lock_guard lock(mu_);
  entries_.push_back({.seq = ++last_seq_,
                      .box_id = Cut(box_id),
                      .reason = Cut(reason),
                      .at_ms = common::ToUnixMillis(clock_.Now()),
                      .code = outcome.code(),
                      .error = Cut(common::AsStd(outcome.message()))});
  while (entries_.size() > options_.max_entries) entries_.pop_front();
  return SaveLocked();
}

absl::Status RemovalJournal::SaveLocked() const {
  if (options_.path.empty()) return absl::OkStatus();
  json removals = json::array();
  for (const RemovalEntry& entry : entries_) {
    removals.push_back({{"seq", entry.seq},
                        {"box_id", entry.box_id},
                        {"reason", entry.reason},
                        {"at_ms", entry.at_ms},
                        {"code", static_cast<int>(entry.code)},
                        {"error", entry.error}});
  }
  const json doc = {{"journal", id_}, {"last_seq", last_seq_}, {"removals", std::move(removals)}};
  return common::WriteFileAtomic(options_.path,
                                 doc.dump(-1, ' ', false, json::error_handler_t::replace), 0600);
}

RemovalPage RemovalJournal::After(std::string_view journal_id, std::uint64_t after_seq,
                                  std::size_t max) const {
  std::lock_guard lock(mu_);
  RemovalPage page{.journal_id = id_,
                   .first_seq = entries_.empty() ? 0 : entries_.front().seq,
                   .last_seq = last_seq_};
  if (journal_id != id_) after_seq = 0;
  max = std::min(max, kMaxPage);
  // Entries are in sequence order: the first after `after_seq` by binary search.
  auto it = std::upper_bound(entries_.begin(), entries_.end(), after_seq,
                             [](std::uint64_t seq, const RemovalEntry& e) { return seq < e.seq; });
  for (; it != entries_.end() && page.entries.size() < max; ++it) page.entries.push_back(*it);
  return page;
}

std::string RemovalJournal::id() const {
  std::lock_guard lock(mu_);
  return id_;
}

}  // namespace llmbox::spoke::reaper
