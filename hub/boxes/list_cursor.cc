// hub/boxes/list_cursor.cc
#include "hub/boxes/list_cursor.h"

#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::hub::boxes {
namespace {

// A sealed cursor's bytes: the version, then for list_llmboxes created_at_ms (8 bytes,
// big-endian) and the box key, for list_spokes the spoke name; then the 32-byte MAC.
constexpr char kVersion = '\x01';
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kHeaderBytes = 1 + 8;

// What a list_llmboxes cursor is bound to. A JSON array keeps the fields apart (no separator a
// principal id or spoke name could forge), and null apart from "" (no filter is not the empty
// filter).
std::string BoxList(std::string_view principal_id, const store::BoxFilter& filter) {
  nlohmann::json list = {
      std::string(principal_id),
      filter.phase.has_value() ? nlohmann::json(std::string(store::PhaseName(*filter.phase)))
                               : nullptr,
      filter.spoke.has_value() ? nlohmann::json(*filter.spoke) : nullptr,
      filter.owner.has_value() ? nlohmann::json(*filter.owner) : nullptr,
  };
  return "llmbox list_llmboxes cursor\n" +
         list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// What a list_spokes cursor is bound to.
std::string SpokeList(std::string_view principal_id) {
  const nlohmann::json list = nlohmann::json::array({std::string(principal_id)});
  return "llmbox list_spokes cursor\n" +
         list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

ListCursors::ListCursors(std::string key) : key_(std::move(key)) {
  LLMBOX_CHECK(key_.size() >= 32, "list cursors need a MAC key of at least 32 bytes");
}

std::string ListCursors::Mac(std::string_view list, std::string_view payload) const {
  std::string data(list);
  data += '\n';
  data.append(payload);
  return common::HmacSha256(key_, data);
}

std::string ListCursors::SealPayload(std::string_view list, std::string payload) const {
  payload += Mac(list, payload);
  return common::Base64UrlEncode(payload);
}

absl::StatusOr<std::string> ListCursors::OpenPayload(std::string_view list,
                                                     std::string_view cursor) const {
  const absl::Status invalid = absl::InvalidArgumentError(kInvalidCursor);
  if (cursor.empty() || cursor.size() > kMaxCursorChars) return invalid;
  auto bytes = common::Base64UrlDecode(cursor);
  if (!bytes.ok() || bytes->size() < 1 + kMacBytes || (*bytes)[0] != kVersion) return invalid;
  const std::string_view all(*bytes);
  const std::string_view payload = all.substr(0, all.size() - kMacBytes);
  const std::string_view mac = all.substr(all.size() - kMacBytes);
  if (!common::ConstantTimeEquals(Mac(list, payload), mac)) return invalid;
  return std::string(payload);
}

std::string ListCursors::Seal(std::string_view principal_id, const store::BoxFilter& filter,
                              const store::BoxPosition& position) const {
  std::string bytes(1, kVersion);
  const auto ms = static_cast<std::uint64_t>(position.created_at_ms);
  for (int shift = 56; shift >= 0; shift -= 8) {
    bytes += static_cast<char>((ms >> shift) & 0xff);
  }
  bytes += position.box_key;
  return SealPayload(BoxList(principal_id, filter), std::move(bytes));
}

absl::StatusOr<store::BoxPosition> ListCursors::Open(std::string_view principal_id,
                                                     const store::BoxFilter& filter,
                                                     std::string_view cursor) const {
  LLMBOX_ASSIGN_OR_RETURN(const std::string payload,
                          OpenPayload(BoxList(principal_id, filter), cursor));
  if (payload.size() < kHeaderBytes) return absl::InvalidArgumentError(kInvalidCursor);
  std::uint64_t ms = 0;
  for (std::size_t i = 1; i < kHeaderBytes; ++i) {
    ms = (ms << 8) | static_cast<unsigned char>(payload[i]);
  }
  return store::BoxPosition{.created_at_ms = static_cast<std::int64_t>(ms),
                            .box_key = payload.substr(kHeaderBytes)};
}

std::string ListCursors::SealSpoke(std::string_view principal_id, std::string_view name) const {
  std::string bytes(1, kVersion);
  bytes.append(name);
  return SealPayload(SpokeList(principal_id), std::move(bytes));
}

absl::StatusOr<std::string> ListCursors::OpenSpoke(std::string_view principal_id,
                                                   std::string_view cursor) const {
  LLMBOX_ASSIGN_OR_RETURN(const std::string payload, OpenPayload(SpokeList(principal_id), cursor));
  return payload.substr(1);
}

}  // namespace llmbox::hub::boxes
