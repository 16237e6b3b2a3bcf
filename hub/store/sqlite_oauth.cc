// The OAuth grants, codes and tokens of SqliteStore (schema 7, tables from migration 6 -> 7 in
// sqlite_store.cc).
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "hub/store/sqlite.h"
#include "hub/store/sqlite_store.h"

namespace llmbox::hub::store {
namespace {

using sqlite::Db;
using sqlite::Statement;

// Macros rather than strings so that every query stays one literal (the literal is the key of
// the connection's prepared-statement cache). Column order matches ReadGrant / ReadToken.
#define LLMBOX_GRANT_COLUMNS                                                              \
  "grant_id, client_id, client_name, principal_id, principal_kind, display_name, email, " \
  "scope, resource, created_at_ms, expires_at_ms, last_used_at_ms, revoked_at_ms, "       \
  "revoked_reason"
#define LLMBOX_G_GRANT_COLUMNS                                                                 \
  "g.grant_id, g.client_id, g.client_name, g.principal_id, g.principal_kind, g.display_name, " \
  "g.email, g.scope, g.resource, g.created_at_ms, g.expires_at_ms, g.last_used_at_ms, "        \
  "g.revoked_at_ms, g.revoked_reason"
#define LLMBOX_GRANT_COUNT 14
// A token, its grant and, for a grant of an API-key principal ("key:<name>"), whether that
// key is live and an admin: one lookup by the token's primary key, then the grant's and the
// key's. It runs on every MCP request that carries an OAuth token.
#define LLMBOX_SELECT_TOKEN_WITH_GRANT                                               \
  "SELECT t.hash, t.grant_id, t.kind, t.issued_at_ms, t.expires_at_ms, "             \
  "t.used_at_ms, " LLMBOX_G_GRANT_COLUMNS                                            \
  ", CASE WHEN g.principal_kind = 'api_key' THEN "                                   \
  "k.name IS NOT NULL AND k.revoked_at_ms IS NULL ELSE 1 END, coalesce(k.admin, 0) " \
  "FROM oauth_tokens t JOIN oauth_grants g ON g.grant_id = t.grant_id "              \
  "LEFT JOIN api_keys k ON g.principal_kind = 'api_key' AND "                        \
  "substr(g.principal_id, 1, 4) = 'key:' AND k.name = substr(g.principal_id, 5) "    \
  "WHERE t.hash = ?1"

constexpr std::string_view kCodeReplayed = "authorization code used twice";
constexpr std::string_view kCodeMisused =
    "authorization code presented with the wrong client, redirect URI, verifier or resource";
constexpr std::string_view kRefreshReused = "refresh token reused";
// TouchOAuthGrant throttles in the API keys' map, under keys that cannot be key names (those
// hold no ':').
constexpr std::string_view kGrantTouchPrefix = "oauth-grant:";

std::string_view TokenKindName(OAuthTokenKind kind) {
  return kind == OAuthTokenKind::kAccess ? "access" : "refresh";
}

// Reads the grant columns starting at column `first`.
OAuthGrantRecord ReadGrant(const Statement& s, int first = 0) {
  OAuthGrantRecord grant;
  grant.grant_id = s.ColumnText(first + 0);
  grant.client_id = s.ColumnText(first + 1);
  grant.client_name = s.ColumnText(first + 2);
  grant.principal_id = s.ColumnText(first + 3);
  grant.principal_kind = s.ColumnText(first + 4);
  grant.display_name = s.ColumnText(first + 5);
  grant.email = s.ColumnText(first + 6);
  grant.scope = s.ColumnText(first + 7);
  grant.resource = s.ColumnText(first + 8);
  grant.created_at_ms = s.ColumnInt64(first + 9);
  grant.expires_at_ms = s.ColumnInt64(first + 10);
  grant.last_used_at_ms = s.ColumnInt64(first + 11);
  grant.revoked_at_ms = s.ColumnOptionalInt64(first + 12);
  grant.revoked_reason = s.ColumnText(first + 13);
  return grant;
}

// A row of LLMBOX_SELECT_TOKEN_WITH_GRANT.
OAuthTokenWithGrant ReadTokenWithGrant(const Statement& s) {
  OAuthTokenWithGrant out;
  out.token.hash = s.ColumnText(0);
  out.token.grant_id = s.ColumnText(1);
  out.token.kind = s.ColumnText(2) == "access" ? OAuthTokenKind::kAccess : OAuthTokenKind::kRefresh;
  out.token.issued_at_ms = s.ColumnInt64(3);
  out.token.expires_at_ms = s.ColumnInt64(4);
  out.token.used_at_ms = s.ColumnOptionalInt64(5);
  out.grant = ReadGrant(s, 6);
  out.principal_live = s.ColumnInt64(6 + LLMBOX_GRANT_COUNT) != 0;
  out.principal_admin = s.ColumnInt64(7 + LLMBOX_GRANT_COUNT) != 0;
  return out;
}

[[nodiscard]] absl::StatusOr<std::optional<OAuthTokenWithGrant>> LookUpToken(
    Db& db, std::string_view hash) {
  LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(LLMBOX_SELECT_TOKEN_WITH_GRANT));
  LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
  LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
  if (!row) return std::nullopt;
  return ReadTokenWithGrant(s);
}

[[nodiscard]] absl::Status InsertTokens(Db& db, std::string_view grant_id,
                                        const std::vector<OAuthTokenRecord>& tokens) {
  for (const OAuthTokenRecord& token : tokens) {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("INSERT INTO oauth_tokens (hash, grant_id, kind, issued_at_ms, expires_at_ms, "
                   "used_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, token.hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, grant_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, TokenKindName(token.kind)));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, token.issued_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, token.expires_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, token.used_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Run());
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status RevokeGrant(Db& db, std::string_view grant_id, std::int64_t now_ms,
                                       std::string_view reason) {
  LLMBOX_ASSIGN_OR_RETURN(
      Statement s, db.Prepare("UPDATE oauth_grants SET revoked_at_ms = ?2, revoked_reason = ?3 "
                              "WHERE grant_id = ?1 AND revoked_at_ms IS NULL"));
  LLMBOX_RETURN_IF_ERROR(s.Bind(1, grant_id));
  LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
  LLMBOX_RETURN_IF_ERROR(s.Bind(3, reason));
  return s.Run();
}

// Marks the code or token with this hash used, by `sql` (?1 the hash, ?2 the time). The caller
// read it unused in this same write transaction, so it is there to mark.
[[nodiscard]] absl::Status Spend(Db& db, const char* sql, std::string_view hash,
                                 std::int64_t now_ms) {
  LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(sql));
  LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
  LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
  LLMBOX_RETURN_IF_ERROR(s.Run());
  LLMBOX_CHECK(db.Changes() == 1, "the row was read unused in this same transaction");
  return absl::OkStatus();
}

// Why a grant can issue nothing more at now_ms, or "" when it can.
std::string GrantDeadReason(const OAuthGrantRecord& grant, std::int64_t now_ms) {
  if (grant.revoked_at_ms.has_value())
    return "its grant was revoked (" + grant.revoked_reason + ")";
  if (now_ms >= grant.expires_at_ms) return "its grant has expired (sign in and consent again)";
  return "";
}

// Binds ?1..?3 to the filter's grant id, principal id and client id (NULL when unset).
[[nodiscard]] absl::Status BindFilter(Statement& s, const OAuthGrantFilter& filter) {
  int index = 1;
  for (const std::optional<std::string>* value :
       {&filter.grant_id, &filter.principal_id, &filter.client_id}) {
    if (value->has_value()) {
      LLMBOX_RETURN_IF_ERROR(s.Bind(index, **value));
    } else {
      LLMBOX_RETURN_IF_ERROR(s.BindNull(index));
    }
    ++index;
  }
  return absl::OkStatus();
}

#define LLMBOX_GRANT_FILTER                                                  \
  "(?1 IS NULL OR grant_id = ?1) AND (?2 IS NULL OR principal_id = ?2) AND " \
  "(?3 IS NULL OR client_id = ?3)"

}  // namespace

absl::Status SqliteStore::InsertOAuthGrant(const OAuthGrantRecord& grant,
                                           const OAuthCodeRecord& code) {
  return Write("insert OAuth grant", grant.grant_id, [&](Db& db) -> absl::Status {
    {
      LLMBOX_ASSIGN_OR_RETURN(Statement s,
                              db.Prepare("INSERT INTO oauth_grants (" LLMBOX_GRANT_COLUMNS
                                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                                         "?11, ?12, ?13, ?14)"));
      LLMBOX_RETURN_IF_ERROR(s.Bind(1, grant.grant_id));
      LLMBOX_RETURN_IF_ERROR(s.Bind(2, grant.client_id));
      LLMBOX_RETURN_IF_ERROR(s.Bind(3, grant.client_name));
      LLMBOX_RETURN_IF_ERROR(s.Bind(4, grant.principal_id));
      LLMBOX_RETURN_IF_ERROR(s.Bind(5, grant.principal_kind));
      LLMBOX_RETURN_IF_ERROR(s.Bind(6, grant.display_name));
      LLMBOX_RETURN_IF_ERROR(s.Bind(7, grant.email));
      LLMBOX_RETURN_IF_ERROR(s.Bind(8, grant.scope));
      LLMBOX_RETURN_IF_ERROR(s.Bind(9, grant.resource));
      LLMBOX_RETURN_IF_ERROR(s.Bind(10, grant.created_at_ms));
      LLMBOX_RETURN_IF_ERROR(s.Bind(11, grant.expires_at_ms));
      LLMBOX_RETURN_IF_ERROR(s.Bind(12, grant.last_used_at_ms));
      LLMBOX_RETURN_IF_ERROR(s.Bind(13, grant.revoked_at_ms));
      LLMBOX_RETURN_IF_ERROR(s.Bind(14, grant.revoked_reason));
      absl::Status status = s.Run();
      if (absl::IsAlreadyExists(status)) {
        return absl::AlreadyExistsError("OAuth grant id \"" + grant.grant_id + "\" is taken");
      }
      LLMBOX_RETURN_IF_ERROR(status);
    }
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("INSERT INTO oauth_codes (hash, grant_id, redirect_uri, code_challenge, "
                   "expires_at_ms, used_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, code.hash));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, grant.grant_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(3, code.redirect_uri));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, code.code_challenge));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, code.expires_at_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(6, code.used_at_ms));
    absl::Status status = s.Run();
    if (absl::IsAlreadyExists(status)) {
      return absl::AlreadyExistsError("this authorization code is already stored");
    }
    return status;
  });
}

absl::StatusOr<std::pair<OAuthCodeRecord, OAuthGrantRecord>> SqliteStore::RedeemOAuthCode(
    std::string_view hash, std::int64_t now_ms, OAuthCodeCheck check,
    const std::vector<OAuthTokenRecord>& tokens) {
  OAuthCodeRecord code;
  OAuthGrantRecord grant;
  // A replayed or misused code revokes its grant, and that revocation must be committed even
  // though the call fails: the refusal travels outside the transaction.
  absl::Status refusal;
  LLMBOX_RETURN_IF_ERROR(Write("redeem OAuth code", "", [&](Db& db) -> absl::Status {
    // Read and mark in one BEGIN IMMEDIATE transaction: a second redemption of the same code
    // waits for the write lock and then finds it used.
    {
      LLMBOX_ASSIGN_OR_RETURN(
          Statement s,
          db.Prepare("SELECT c.hash, c.grant_id, c.redirect_uri, c.code_challenge, "
                     "c.expires_at_ms, c.used_at_ms, " LLMBOX_G_GRANT_COLUMNS
                     " FROM oauth_codes c JOIN oauth_grants g ON g.grant_id = c.grant_id "
                     "WHERE c.hash = ?1"));
      LLMBOX_RETURN_IF_ERROR(s.Bind(1, hash));
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) return absl::NotFoundError("this authorization code is unknown");
      code.hash = s.ColumnText(0);
      code.grant_id = s.ColumnText(1);
      code.redirect_uri = s.ColumnText(2);
      code.code_challenge = s.ColumnText(3);
      code.expires_at_ms = s.ColumnInt64(4);
      code.used_at_ms = s.ColumnOptionalInt64(5);
      grant = ReadGrant(s, 6);
    }
    if (code.used_at_ms.has_value()) {
      refusal = absl::FailedPreconditionError(
          "this authorization code was already used; everything issued from it is revoked");
      return RevokeGrant(db, code.grant_id, now_ms, kCodeReplayed);
    }
    if (now_ms >= code.expires_at_ms) {
      return absl::FailedPreconditionError("this authorization code has expired");
    }
    if (std::string dead = GrantDeadReason(grant, now_ms); !dead.empty()) {
      return absl::FailedPreconditionError("this authorization code is void: " + dead);
    }
    LLMBOX_RETURN_IF_ERROR(
        Spend(db, "UPDATE oauth_codes SET used_at_ms = ?2 WHERE hash = ?1 AND used_at_ms IS NULL",
              hash, now_ms));
    if (absl::Status checked = check(code, grant); !checked.ok()) {
      refusal = std::move(checked);
      return RevokeGrant(db, code.grant_id, now_ms, kCodeMisused);
    }
    return InsertTokens(db, code.grant_id, tokens);
  }));
  if (!refusal.ok()) return refusal;
  return std::make_pair(std::move(code), std::move(grant));
}

absl::StatusOr<OAuthTokenWithGrant> SqliteStore::RotateOAuthRefreshToken(
    std::string_view hash, std::string_view client_id, std::int64_t now_ms,
    const std::vector<OAuthTokenRecord>& tokens) {
  OAuthTokenWithGrant found;
  absl::Status refusal;  // committed with the revocation it caused, as in RedeemOAuthCode
  LLMBOX_RETURN_IF_ERROR(Write("rotate OAuth refresh token", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(std::optional<OAuthTokenWithGrant> row, LookUpToken(db, hash));
    if (!row.has_value() || row->token.kind != OAuthTokenKind::kRefresh ||
        row->grant.client_id != client_id) {
      return absl::NotFoundError("this refresh token is unknown");
    }
    found = *std::move(row);
    if (found.token.used_at_ms.has_value()) {
      refusal = absl::FailedPreconditionError(
          "this refresh token was already used; its whole grant is revoked (sign in again)");
      return RevokeGrant(db, found.grant.grant_id, now_ms, kRefreshReused);
    }
    if (now_ms >= found.token.expires_at_ms) {
      return absl::FailedPreconditionError("this refresh token has expired");
    }
    if (std::string dead = GrantDeadReason(found.grant, now_ms); !dead.empty()) {
      return absl::FailedPreconditionError("this refresh token is void: " + dead);
    }
    LLMBOX_RETURN_IF_ERROR(
        Spend(db, "UPDATE oauth_tokens SET used_at_ms = ?2 WHERE hash = ?1 AND used_at_ms IS NULL",
              hash, now_ms));
    return InsertTokens(db, found.grant.grant_id, tokens);
  }));
  if (!refusal.ok()) return refusal;
  return found;
}

absl::StatusOr<OAuthTokenWithGrant> SqliteStore::FindOAuthToken(std::string_view hash) {
  std::optional<OAuthTokenWithGrant> found;
  LLMBOX_RETURN_IF_ERROR(Read("find OAuth token", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(found, LookUpToken(db, hash));
    return absl::OkStatus();
  }));
  // Not echoing the hash: it names a live credential.
  if (!found.has_value()) return absl::NotFoundError("no OAuth token has this hash");
  return *std::move(found);
}

absl::Status SqliteStore::TouchOAuthGrant(std::string_view grant_id, std::int64_t now_ms) {
  const std::string touch_key = std::string(kGrantTouchPrefix) + std::string(grant_id);
  {
    std::lock_guard<std::mutex> lock(touch_mu_);
    auto [it, inserted] = last_touch_ms_.try_emplace(touch_key, now_ms);
    if (!inserted) {
      if (now_ms - it->second < kTouchIntervalMs) return absl::OkStatus();
      it->second = now_ms;
    }
  }
  absl::Status status = Write("touch OAuth grant", grant_id, [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(Statement s,
                            db.Prepare("UPDATE oauth_grants SET last_used_at_ms = ?2 WHERE "
                                       "grant_id = ?1 AND last_used_at_ms < ?2"));
    LLMBOX_RETURN_IF_ERROR(s.Bind(1, grant_id));
    LLMBOX_RETURN_IF_ERROR(s.Bind(2, now_ms));
    return s.Run();
  });
  if (!status.ok()) {
    std::lock_guard<std::mutex> lock(touch_mu_);
    last_touch_ms_.erase(touch_key);
  }
  return status;
}

absl::StatusOr<std::vector<OAuthGrantRecord>> SqliteStore::ListOAuthGrants(
    const OAuthGrantFilter& filter) {
  std::vector<OAuthGrantRecord> grants;
  LLMBOX_RETURN_IF_ERROR(Read("list OAuth grants", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s,
        db.Prepare("SELECT " LLMBOX_GRANT_COLUMNS " FROM oauth_grants WHERE " LLMBOX_GRANT_FILTER
                   " AND (?4 OR revoked_at_ms IS NULL) ORDER BY created_at_ms, grant_id"));
    LLMBOX_RETURN_IF_ERROR(BindFilter(s, filter));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, static_cast<std::int64_t>(filter.include_revoked ? 1 : 0)));
    while (true) {
      LLMBOX_ASSIGN_OR_RETURN(const bool row, s.Step());
      if (!row) return absl::OkStatus();
      grants.push_back(ReadGrant(s));
    }
  }));
  return grants;
}

absl::StatusOr<std::int64_t> SqliteStore::RevokeOAuthGrants(const OAuthGrantFilter& filter,
                                                            std::int64_t now_ms,
                                                            std::string_view reason) {
  if (!filter.grant_id && !filter.principal_id && !filter.client_id) {
    return absl::InvalidArgumentError(
        "store: revoking OAuth grants needs a grant id, a principal or a client");
  }
  std::int64_t revoked = 0;
  LLMBOX_RETURN_IF_ERROR(Write("revoke OAuth grants", "", [&](Db& db) -> absl::Status {
    LLMBOX_ASSIGN_OR_RETURN(
        Statement s, db.Prepare("UPDATE oauth_grants SET revoked_at_ms = ?4, revoked_reason = ?5 "
                                "WHERE revoked_at_ms IS NULL AND " LLMBOX_GRANT_FILTER));
    LLMBOX_RETURN_IF_ERROR(BindFilter(s, filter));
    LLMBOX_RETURN_IF_ERROR(s.Bind(4, now_ms));
    LLMBOX_RETURN_IF_ERROR(s.Bind(5, reason));
    LLMBOX_RETURN_IF_ERROR(s.Run());
    revoked = db.Changes();
    return absl::OkStatus();
  }));
  return revoked;
}

absl::StatusOr<std::int64_t> SqliteStore::PruneOAuth(std::int64_t now_ms) {
  // A revoked or expired grant stays a day, so `oauth list --all` can show why it ended.
  constexpr std::int64_t kDeadGrantRetentionMs = 24LL * 3600 * 1000;
  {
    // Touches older than the interval throttle nothing any more: forget them, so the map holds
    // only the grants used in the last minute.
    std::lock_guard<std::mutex> lock(touch_mu_);
    std::erase_if(last_touch_ms_, [&](const auto& entry) {
      return entry.first.starts_with(kGrantTouchPrefix) &&
             now_ms - entry.second >= kTouchIntervalMs;
    });
  }
  std::int64_t deleted = 0;
  LLMBOX_RETURN_IF_ERROR(Write("prune OAuth", "", [&](Db& db) -> absl::Status {
    // Codes and tokens of the grants that go are deleted by name first, rather than by the
    // foreign keys' cascade, so that the count includes them. ?1 is now, ?2 the dead grants'
    // retention horizon.
    const std::int64_t horizon = now_ms - kDeadGrantRetentionMs;
    auto run = [&](const char* sql, std::initializer_list<std::int64_t> params) -> absl::Status {
      LLMBOX_ASSIGN_OR_RETURN(Statement s, db.Prepare(sql));
      int index = 1;
      for (std::int64_t param : params) LLMBOX_RETURN_IF_ERROR(s.Bind(index++, param));
      LLMBOX_RETURN_IF_ERROR(s.Run());
      deleted += db.Changes();
      return absl::OkStatus();
    };
    LLMBOX_RETURN_IF_ERROR(
        run("DELETE FROM oauth_tokens WHERE expires_at_ms <= ?1 OR grant_id IN (SELECT grant_id "
            "FROM oauth_grants WHERE revoked_at_ms <= ?2 OR expires_at_ms <= ?2)",
            {now_ms, horizon}));
    // A code row stays a day past its expiry: a replay of a used code then still finds it, and
    // revokes what it issued, rather than being merely unknown.
    LLMBOX_RETURN_IF_ERROR(
        run("DELETE FROM oauth_codes WHERE expires_at_ms <= ?2 OR grant_id IN (SELECT grant_id "
            "FROM oauth_grants WHERE revoked_at_ms <= ?2 OR expires_at_ms <= ?2)",
            {now_ms, horizon}));
    LLMBOX_RETURN_IF_ERROR(run(
        "DELETE FROM oauth_grants WHERE revoked_at_ms <= ?1 OR expires_at_ms <= ?1", {horizon}));
    // Dynamically registered clients never used past their expiry (clients.h).
    LLMBOX_RETURN_IF_ERROR(
        run("DELETE FROM oauth_clients WHERE expires_at_ms > 0 AND "
            "last_used_at_ms = 0 AND expires_at_ms <= ?1",
            {now_ms}));
    // Used ones a day after their last use once no grant of theirs is left (claude.ai
    // registers on every connection: kept forever, they would fill max_clients).
    LLMBOX_RETURN_IF_ERROR(
        run("DELETE FROM oauth_clients WHERE last_used_at_ms > 0 AND last_used_at_ms <= ?1 AND "
            "NOT EXISTS (SELECT 1 FROM oauth_grants WHERE oauth_grants.client_id = "
            "oauth_clients.client_id)",
            {horizon}));
    return absl::OkStatus();
  }));
  return deleted;
}

#undef LLMBOX_GRANT_COLUMNS
#undef LLMBOX_G_GRANT_COLUMNS
#undef LLMBOX_GRANT_COUNT
#undef LLMBOX_SELECT_TOKEN_WITH_GRANT
#undef LLMBOX_GRANT_FILTER

}  // namespace llmbox::hub::store
