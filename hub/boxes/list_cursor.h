// hub/boxes/list_cursor.h
//
// The cursors of list_llmboxes and list_spokes: where the next page starts, sealed with an
// HMAC-SHA-256 under a key the hub holds, and bound to the list it continues (the tool, the
// principal that asked and the filter it named) without carrying them. A client sees base64url
// it cannot read as anything but a token; one that changes a byte, keeps the cursor for another
// filter or the other tool, or hands it to another principal gets InvalidArgument
// kInvalidCursor.
//
//   ListCursors cursors(common::HmacSha256(session_key, "llmbox list cursors"));
//   std::string next = cursors.Seal(caller.id(), filter, *page.next);
//   LLMBOX_ASSIGN_OR_RETURN(store::BoxPosition after, cursors.Open(caller.id(), filter, next));
//   std::string more = cursors.SealSpoke(caller.id(), last_spoke_name);
//
// Thread-safe (immutable after construction).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "hub/store/store.h"

namespace llmbox::hub::boxes {

inline constexpr char kInvalidCursor[] =
    "this cursor is not valid for this list; list again without it";

class ListCursors {
 public:
  // Longer cursors are refused before they are decoded (a sealed one is under 160).
  static constexpr std::size_t kMaxCursorChars = 256;

  // `key`: the MAC key (at least 32 bytes). Cursors live as long as the key does.
  explicit ListCursors(std::string key);

  // The cursor that continues `principal_id`'s list under `filter` after `position`.
  std::string Seal(std::string_view principal_id, const store::BoxFilter& filter,
                   const store::BoxPosition& position) const;

  // The position `cursor` continues from, when it was sealed by this key for the same
  // principal and filter. InvalidArgument kInvalidCursor otherwise (too long, not base64url,
  // cut, changed, or sealed for another list), with nothing of the cursor in the message.
  [[nodiscard]] absl::StatusOr<store::BoxPosition> Open(std::string_view principal_id,
                                                        const store::BoxFilter& filter,
                                                        std::string_view cursor) const;

  // list_spokes (spokes by name): the cursor that continues `principal_id`'s list after the
  // spoke `name`, and the name a cursor continues after (InvalidArgument kInvalidCursor as
  // Open). A list_llmboxes cursor is not a list_spokes one, nor the other way round.
  std::string SealSpoke(std::string_view principal_id, std::string_view name) const;
  [[nodiscard]] absl::StatusOr<std::string> OpenSpoke(std::string_view principal_id,
                                                      std::string_view cursor) const;

 private:
  // The cursor carrying `payload` (which starts with a version byte), sealed for the list
  // `list` (the tool and what binds the cursor, written so no two lists share bytes), and the
  // payload back from a cursor sealed for `list`.
  std::string SealPayload(std::string_view list, std::string payload) const;
  [[nodiscard]] absl::StatusOr<std::string> OpenPayload(std::string_view list,
                                                        std::string_view cursor) const;
  // The MAC of `payload` bound to the list.
  std::string Mac(std::string_view list, std::string_view payload) const;

  std::string key_;
};

}  // namespace llmbox::hub::boxes
