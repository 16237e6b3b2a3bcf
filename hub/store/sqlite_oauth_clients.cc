// The OAuth clients of SqliteStore (schema 7, table oauth_clients). redirect_uris is a JSON
// array of strings.
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {
namespace {

using sqlite::Db;
using sqlite::Statement;

// One literal, so it is one cached statement; column order matches ReadClient.
#define LLMBOX_OAUTH_CLIENT_COLUMNS                                                            \
  "client_id, secret_hash, name, redirect_uris, auth_method, registered_from, created_at_ms, " \
  "last_used_at_ms, expires_at_ms"

std::string UrisJson(const std::vector<std::string>& uris) {
  // The registry only stores URIs it parsed (ASCII); replace keeps dump() from throwing on a
  // caller that did not.
  return nlohmann::json(uris).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

[[nodiscard]] absl::StatusOr<OAuthClientRecord> ReadClient(const Statement& s) {
  OAuthClientRecord client;
  client.client_id = s.ColumnText(0);
  client.secret_hash = s.ColumnText(1);
  client.name = s.ColumnText(2);
  const nlohmann::json uris = nlohmann::json::parse(s.ColumnText(3), nullptr, false);
  if (!uris.is_array()) {
    return absl::InternalError("store: OAuth client \"" + client.client_id +
                               "\" has unreadable redirect_uris");
  }
  for (const nlohmann::json& uri : uris) {
    if (!uri.is_string()) {
      return absl::InternalError("store: OAuth client \"" + client.client_id +
                                 "\" has a redirect URI that is not a string");
    }
    client.redirect_uris.push_back(uri.get<std::string>());
  }
  client.auth_method = s.ColumnText(4);
  client.registered_from = s.ColumnText(5);
  client.created_at_ms = s.ColumnInt64(6);
  client.last_used_at_ms = s.ColumnInt64(7);
  client.expires_at_ms = s.ColumnInt64(8);
  return client;
}

absl::Status NoClient(std::string_view client_id) {
  return absl::NotFoundError("no OAuth client \"" + std::string(client_id) + "\"");
}

}  // namespace

absl::Status SqliteStore::InsertOAuthClient(const OAuthClientRecord& client) {
  return Write("insert OAuth client", client.client_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("INSERT INTO oauth_clients (" LLMBOX_OAUTH_CLIENT_COLUMNS
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, client.client_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, client.secret_hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, client.name));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, UrisJson(client.redirect_uris)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, client.auth_method));
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, client.registered_from));
    LLMBOX_RETURN_IF_ERROR(s.Bind(7, client.created_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(8, client.last_used_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(9, client.expires_at_ms));
    absl::Status status = s.Run();
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError("OAuth client id \"" + client.client_id + "\" is taken");
    }
    return status;
  });
}

absl::StatusOr<OAuthClientRecord> SqliteStore::GetOAuthClient(std::string_view client_id) {
  OAuthClientRecord client;
  LLMBOX_RETURN_IF_ERROR(Read("get OAuth client", client_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT " LLMBOX_OAUTH_CLIENT_COLUMNS
                                                    " FROM oauth_clients WHERE client_id = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, client_id));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) return NoClient(client_id);
    LLMBOX_ASSIGN_OR_RETURN(client, ReadClient(s));
    return absl::OkStatus();
  }));
  return client;
}

absl::Status SqliteStore::TouchOAuthClient(std::string_view client_id, std::int64_t now_ms) {
  return Write("touch OAuth client", client_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("UPDATE oauth_clients SET last_used_at_ms = ?2, expires_at_ms = 0 "
                                "WHERE client_id = ?1"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, client_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    if (db.Changes() == 0) return NoClient(client_id);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::int64_t> SqliteStore::CountOAuthClients() {
  std::int64_t count = 0;
  LLMBOX_RETURN_IF_ERROR(Read("count OAuth clients", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT count(*) FROM oauth_clients"));
    LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (row) count = s.ColumnInt64(0);
    return absl::OkStatus();
  }));
  return count;
}

}  // namespace llmbox::hub::store
