// hub/store/sqlite_rows.h
//
// What SqliteStore's .cc files share about box rows: the column list every box query selects,
// the row reader, and the key and quoting of box ids in messages. Only hub/store/*.cc includes
// it.
//
//   LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(LLMBOX_SELECT_BOXES " WHERE box_key = ?1"));
//   LLMBOX_ASSIGN_OR_RETURN(BoxRecord box, rows::ReadBox(s));
//
// Thread-safety: none needed (no state).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

#include "hub/store/sqlite.h"
#include "hub/store/store.h"

// Macros rather than std::strings so that every query stays one literal: the literal is the
// key of the connection's prepared-statement cache. LLMBOX_BOX_COLUMNS are the columns a box
// is written with (BindBox's ?1..?18); a read selects destroy_queued_at_ms after them, which
// only QueueDestroy writes. Column order matches rows::ReadBox.
#define LLMBOX_BOX_COLUMNS                                                               \
  "box_id, spoke, container_id, image, description, phase, session_url, last_error, "    \
  "authorize_url, token_hash, created_by, created_at_ms, expires_at_ms, updated_at_ms, " \
  "activation_attempts, activation_owner, owner, owner_email"
#define LLMBOX_SELECT_BOXES "SELECT " LLMBOX_BOX_COLUMNS ", destroy_queued_at_ms FROM boxes"

namespace llmbox::hub::store::rows {

// The box id ASCII-lowercased: the boxes table's primary key.
std::string BoxKey(std::string_view box_id);

// `text` in double quotes, for messages.
std::string Quoted(std::string_view text);

// The box at the current row of a LLMBOX_SELECT_BOXES query. Internal for a phase the schema
// does not know.
[[nodiscard]] absl::StatusOr<BoxRecord> ReadBox(const sqlite::Statement& s);

}  // namespace llmbox::hub::store::rows
