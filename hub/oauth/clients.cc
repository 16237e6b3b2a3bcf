#include "hub/oauth/clients.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include <nlohmann/json.hpp>

#include "common/absl_compat.h"
#include "common/json_depth.h"
#include "common/secrets.h"
#include "common/status.h"
#include "common/utf8.h"
#include "common/validate.h"
#include "hub/activation/rate_limit.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/redirect_uri.h"

namespace llmbox::hub::oauth {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxRegistrationBytes = 16 * 1024;
constexpr std::size_t kMaxJsonDepth = 8;
constexpr std::size_t kMaxRedirectUris = 16;
constexpr std::size_t kMaxClientNameChars = 200;
constexpr std::size_t kMaxClientIdBytes = 2048;
constexpr std::size_t kMaxCimdCacheEntries = 1000;
constexpr auto kCimdFailureTtl = std::chrono::minutes(1);
constexpr char kClientIdPrefix[] = "lbc_";

absl::Status BadMetadata(std::string_view description) {
  return OAuthError(kInvalidClientMetadata, description);
}

absl::Status Unknown(std::string_view description) {
  return OAuthError(kInvalidClient, description);
}

// A store failure as the client sees it; the cause goes to the log, not to the client.
absl::Status StoreFailure(const absl::Status& status, std::string_view what) {
  spdlog::warn("oauth: {}: {}", what, common::AsStd(status.message()));
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return OAuthError(kTemporarilyUnavailable,
                      absl::StrCat(common::AsAbsl(what), ": the hub's store is busy"));
  }
  return OAuthError(kServerError, absl::StrCat(common::AsAbsl(what), ": the hub's store failed"));
}

// The code point of the valid UTF-8 character of `length` bytes at `text[i]`.
char32_t DecodeUtf8(std::string_view text, std::size_t i, std::size_t length) {
  const auto byte = [&](std::size_t k) { return static_cast<char32_t>(text[i + k]) & 0xff; };
  switch (length) {
    case 1:
      return byte(0);
    case 2:
      return ((byte(0) & 0x1f) << 6) | (byte(1) & 0x3f);
    case 3:
      return ((byte(0) & 0x0f) << 12) | ((byte(1) & 0x3f) << 6) | (byte(2) & 0x3f);
    default:
      return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3f) << 12) | ((byte(2) & 0x3f) << 6) |
             (byte(3) & 0x3f);
  }
}

// Unicode general category Cf (format characters, Unicode 15.1), plus U+2028/U+2029 (Zl, Zp):
// invisible characters that change how the text around them shows (direction overrides and
// isolates, zero-width joiners and spaces, the BOM, tag characters) or break a line.
bool IsFormatOrSeparator(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kRanges[] = {
      {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},
      {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},
      {0x200B, 0x200F},   {0x2028, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
      {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
      {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
      {0xE0020, 0xE007F},
  };
  for (const auto& [first, last] : kRanges) {
    if (c >= first && c <= last) return true;
  }
  return false;
}

// Printable text of at most kMaxClientNameChars characters, valid UTF-8 (decoded in one pass):
// no control characters (Cc) and no format characters (Cf) or line and paragraph separators,
// which could make the consent page show one name and mean another.
absl::Status CheckClientName(std::string_view name) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < name.size();) {
    std::size_t invalid = 0;
    const std::size_t length = common::Utf8CharLength(name, i, &invalid);
    if (length == 0) return BadMetadata("client_name is not valid UTF-8");
    const char32_t c = DecodeUtf8(name, i, length);
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
      return BadMetadata("client_name contains a control character");
    }
    if (IsFormatOrSeparator(c)) {
      return BadMetadata(
          "client_name contains an invisible formatting character (bidirectional control, "
          "zero-width character, line separator...)");
    }
    i += length;
    if (++chars > kMaxClientNameChars) {
      return BadMetadata(
          absl::StrCat("client_name is longer than ", kMaxClientNameChars, " characters"));
    }
  }
  return absl::OkStatus();
}

// An optional array of strings, each in `allowed`; `fallback` when absent. Refuses an empty
// array, a non-string, a value outside `allowed`.
absl::StatusOr<std::vector<std::string>> StringSet(const json& doc, const char* field,
                                                   std::initializer_list<std::string_view> allowed,
                                                   std::vector<std::string> fallback) {
  auto it = doc.find(field);
  if (it == doc.end()) return fallback;
  if (!it->is_array() || it->empty() || it->size() > allowed.size() * 2) {
    return BadMetadata(absl::StrCat(field, " must be a non-empty array of strings"));
  }
  std::vector<std::string> values;
  for (const json& value : *it) {
    if (!value.is_string()) {
      return BadMetadata(absl::StrCat(field, " must be a non-empty array of strings"));
    }
    const std::string& text = value.get_ref<const std::string&>();
    if (std::find(allowed.begin(), allowed.end(), text) == allowed.end()) {
      std::string supported;
      for (std::string_view value : allowed) {
        absl::StrAppend(&supported, supported.empty() ? "" : ", ", common::AsAbsl(value));
      }
      return BadMetadata(absl::StrCat(field, " ", common::QuoteForMessage(text),
                                      " is not supported; supported: ", supported));
    }
    if (std::find(values.begin(), values.end(), text) == values.end()) values.push_back(text);
  }
  return values;
}

// The metadata a registration and a metadata document share, checked the same way.
struct Metadata {
  std::string name;
  std::vector<std::string> redirect_uris;
  std::vector<std::string> grant_types;
  std::vector<std::string> response_types;
  std::string auth_method;
};

absl::StatusOr<json> ParseObject(std::string_view text, std::size_t max_bytes,
                                 std::string_view what) {
  if (text.size() > max_bytes) {
    return BadMetadata(absl::StrCat(common::AsAbsl(what), " is larger than ", max_bytes, " bytes"));
  }
  if (common::JsonDeeperThan(text, kMaxJsonDepth)) {
    return BadMetadata(
        absl::StrCat(common::AsAbsl(what), " nests deeper than ", kMaxJsonDepth, " levels"));
  }
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return BadMetadata(absl::StrCat(common::AsAbsl(what), " is not a JSON object"));
  }
  return doc;
}

absl::StatusOr<Metadata> ReadMetadata(const json& doc, const OAuthOptions& options,
                                      std::string_view default_auth_method) {
  Metadata m;
  auto uris = doc.find("redirect_uris");
  if (uris == doc.end() || !uris->is_array() || uris->empty()) {
    return OAuthError(kInvalidRedirectUri, "redirect_uris must be a non-empty array");
  }
  if (uris->size() > kMaxRedirectUris) {
    return OAuthError(kInvalidRedirectUri,
                      absl::StrCat("at most ", kMaxRedirectUris, " redirect_uris"));
  }
  for (const json& uri : *uris) {
    if (!uri.is_string()) return OAuthError(kInvalidRedirectUri, "a redirect_uri is not a string");
    const std::string& text = uri.get_ref<const std::string&>();
    LLMBOX_RETURN_IF_ERROR(CheckRedirectUriAllowed(text, options));
    if (std::find(m.redirect_uris.begin(), m.redirect_uris.end(), text) == m.redirect_uris.end()) {
      m.redirect_uris.push_back(text);
    }
  }
  LLMBOX_ASSIGN_OR_RETURN(m.grant_types,
                          StringSet(doc, "grant_types", {"authorization_code", "refresh_token"},
                                    {"authorization_code"}));
  if (std::find(m.grant_types.begin(), m.grant_types.end(), "authorization_code") ==
      m.grant_types.end()) {
    return BadMetadata("grant_types must include authorization_code");
  }
  LLMBOX_ASSIGN_OR_RETURN(m.response_types, StringSet(doc, "response_types", {"code"}, {"code"}));
  auto method = doc.find("token_endpoint_auth_method");
  if (method == doc.end()) {
    m.auth_method = default_auth_method;
  } else if (!method->is_string()) {
    return BadMetadata("token_endpoint_auth_method must be a string");
  } else {
    m.auth_method = method->get<std::string>();
    if (m.auth_method != "none" && m.auth_method != "client_secret_post" &&
        m.auth_method != "client_secret_basic") {
      return BadMetadata(absl::StrCat("token_endpoint_auth_method ",
                                      common::QuoteForMessage(m.auth_method),
                                      " is not supported; supported: none, client_secret_post, "
                                      "client_secret_basic"));
    }
  }
  auto name = doc.find("client_name");
  if (name != doc.end()) {
    if (!name->is_string()) return BadMetadata("client_name must be a string");
    m.name = name->get<std::string>();
    LLMBOX_RETURN_IF_ERROR(CheckClientName(m.name));
  }
  return m;
}

// A CIMD URL the hub will fetch (draft-ietf-oauth-client-id-metadata-document): https (or
// loopback http in tests), a path, no dot segments.
absl::Status CheckCimdUrl(std::string_view url, const OAuthOptions& options) {
  absl::StatusOr<UriParts> parts = ParseRedirectUri(url);
  if (!parts.ok()) {
    return Unknown(absl::StrCat("the client id is not a usable URL: ", parts.status().message()));
  }
  if (parts->scheme != "https" &&
      !(options.cimd_allow_loopback && IsLoopbackRedirectHost(parts->host))) {
    return Unknown("a client id URL must be https");
  }
  const std::string_view path =
      std::string_view(parts->path_and_query).substr(0, parts->path_and_query.find('?'));
  if (path.size() < 2 || path.front() != '/') {
    return Unknown("a client id URL must have a path");
  }
  if (path.find("/./") != std::string_view::npos || path.find("/../") != std::string_view::npos ||
      path.ends_with("/.") || path.ends_with("/..")) {
    return Unknown("a client id URL must not have dot segments");
  }
  return absl::OkStatus();
}

// What the client hears of any failed fetch, whatever the cause: one message, so that a client
// cannot tell "resolves to a private address" from "no such name" or "no answer" and map the
// names of the hub's own network. The fetcher's message goes to the log.
constexpr std::string_view kFetchFailure =
    "it could not be fetched (no answer, not HTTP 200, too large, too slow, a redirect or a "
    "non-public address; the hub's log says which)";

// How long past a fetch's own timeout a request naming the same document waits for its result
// (name resolution and the fetcher's bookkeeping).
constexpr auto kFetchWaitSlack = std::chrono::seconds(1);

bool IsCimdId(std::string_view client_id) {
  return client_id.starts_with("https://") || client_id.starts_with("http://");
}

}  // namespace

struct ClientRegistry::State {
  State(store::Store& store_in, CimdFetcher& fetcher_in, common::Clock& clock_in,
        const OAuthOptions& options_in)
      : store(store_in),
        fetcher(fetcher_in),
        clock(clock_in),
        options(options_in),
        registrations(clock_in, {.limit = options_in.max_registrations_per_address,
                                 .window = options_in.registration_window}),
        listed_registrations(clock_in,
                             {.limit = options_in.max_allowlisted_registrations_per_address,
                              .window = options_in.registration_window}),
        cimd_lookups(clock_in, {.limit = options_in.cimd_fetches_per_address,
                                .window = options_in.cimd_fetch_window}) {}

  absl::StatusOr<Client> FindCimd(const std::string& url, std::string_view client_key);
  absl::StatusOr<Client> FetchCimd(const std::string& url);
  // With mu held.
  void Remember(const std::string& url, const absl::StatusOr<Client>& result);

  store::Store& store;
  CimdFetcher& fetcher;
  common::Clock& clock;
  const OAuthOptions options;
  activation::RateLimiter registrations;         // any with a loopback redirect, and junk
  activation::RateLimiter listed_registrations;  // redirect_uris all the operator's
  activation::RateLimiter cimd_lookups;          // uncached documents, per client address
  std::vector<Client> preregistered;

  struct Cached {
    absl::StatusOr<Client> client;
    common::Clock::SteadyTime expires;
  };
  // A fetch in progress; requests naming the same URL wait for its result.
  struct Fetch {
    common::Clock::SteadyTime deadline;  // when its waiters stop waiting
    bool done = false;                   // guarded by mu
    absl::StatusOr<Client> result;       // guarded by mu, set when done
  };
  std::mutex mu;
  std::condition_variable fetched;                                     // a Fetch is done
  std::map<std::string, Cached, std::less<>> cimd_cache;               // guarded by mu
  std::map<std::string, std::shared_ptr<Fetch>, std::less<>> fetches;  // guarded by mu
  int uncached_lookups = 0;  // requests fetching or waiting for a fetch; guarded by mu
};

ClientRegistry::ClientRegistry(store::Store& store, CimdFetcher& fetcher, common::Clock& clock,
                               const OAuthOptions& options)
    : state_(std::make_unique<State>(store, fetcher, clock, options)) {
  for (const PreregisteredClient& configured : options.clients) {
    Client client{.client_id = configured.client_id,
                  .kind = ClientKind::kPreregistered,
                  .name = configured.name,
                  .redirect_uris = configured.redirect_uris};
    if (!configured.client_secret.empty()) {
      client.auth_method = "client_secret_post";
      client.secret_hash = common::Sha256Hex(configured.client_secret);
    }
    state_->preregistered.push_back(std::move(client));
  }
}

ClientRegistry::~ClientRegistry() = default;

absl::StatusOr<std::string> ClientRegistry::Register(std::string_view body,
                                                     std::string_view client_key) {
  State& s = *state_;
  // Read (bounded: kMaxRegistrationBytes, kMaxJsonDepth) before the budget is chosen: one whose
  // redirect URIs are all the operator's (claude.ai's, registering on every connection from a
  // few egress addresses that all its users share) has its own, larger budget; anything else,
  // a loopback redirect or junk, the ordinary one. Every attempt counts, a malformed one too:
  // a flood of junk costs the flooder its window.
  absl::StatusOr<Metadata> metadata = [&]() -> absl::StatusOr<Metadata> {
    LLMBOX_ASSIGN_OR_RETURN(const json doc,
                            ParseObject(body, kMaxRegistrationBytes, "the registration request"));
    return ReadMetadata(doc, s.options, /*default_auth_method=*/"client_secret_basic");
  }();
  const bool listed =
      metadata.ok() && std::all_of(metadata->redirect_uris.begin(), metadata->redirect_uris.end(),
                                   [&](const std::string& uri) {
                                     return IsOperatorListedRedirectUri(uri, s.options);
                                   });
  activation::RateLimiter& budget = listed ? s.listed_registrations : s.registrations;
  if (std::optional<std::chrono::seconds> wait = budget.Take(client_key)) {
    return OAuthError(kTemporarilyUnavailable,
                      absl::StrCat("too many client registrations from this address; try again "
                                   "in ",
                                   wait->count(), " s"));
  }
  if (!metadata.ok()) return metadata.status();

  absl::StatusOr<std::int64_t> count = s.store.CountOAuthClients();
  if (!count.ok()) return StoreFailure(count.status(), "register a client");
  if (*count >= static_cast<std::int64_t>(s.options.max_clients)) {
    budget.GiveBack(client_key);
    spdlog::warn(
        "oauth: a client registration was refused: the hub holds {} clients "
        "(auth.oauth.max_clients)",
        *count);
    return OAuthError(kTemporarilyUnavailable,
                      "the hub holds as many registered clients as it may; try again later");
  }

  store::OAuthClientRecord record;
  std::string secret;
  if (metadata->auth_method != "none") {
    LLMBOX_ASSIGN_OR_RETURN(secret, common::RandomToken(32));
    record.secret_hash = common::Sha256Hex(secret);
  }
  const common::Clock::WallTime now = s.clock.Now();
  record.name = metadata->name;
  record.redirect_uris = metadata->redirect_uris;
  record.auth_method = metadata->auth_method;
  record.registered_from = std::string(client_key);
  record.created_at_ms = common::ToUnixMillis(now);
  record.expires_at_ms = common::ToUnixMillis(now + s.options.unused_client_ttl);
  absl::Status inserted;
  // A 128-bit id does not collide; the retry only keeps a freak collision from failing.
  for (int attempt = 0; attempt < 2; ++attempt) {
    LLMBOX_ASSIGN_OR_RETURN(std::string random, common::RandomToken(16));
    record.client_id = absl::StrCat(kClientIdPrefix, random);
    inserted = s.store.InsertOAuthClient(record);
    if (!absl::IsAlreadyExists(inserted)) break;
  }
  if (!inserted.ok()) return StoreFailure(inserted, "register a client");

  json reply = {
      {"client_id", record.client_id},
      {"client_id_issued_at", static_cast<std::int64_t>(record.created_at_ms / 1000)},
      {"redirect_uris", metadata->redirect_uris},
      // Whatever subset was asked for, a client may use both grants (RFC 7591 lets the server
      // replace requested values; the hub keeps no per-client grant list).
      {"grant_types", json::array({"authorization_code", "refresh_token"})},
      {"response_types", metadata->response_types},
      {"token_endpoint_auth_method", metadata->auth_method},
      {"scope", std::string(kScope)},
  };
  if (!metadata->name.empty()) reply["client_name"] = metadata->name;
  if (!secret.empty()) {
    reply["client_secret"] = secret;
    reply["client_secret_expires_at"] = std::int64_t{0};
  }
  spdlog::info("oauth: registered client {} ({}) from {}", record.client_id,
               common::QuoteForMessage(record.name, 80), common::QuoteForMessage(client_key));
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<Client> ClientRegistry::Find(std::string_view client_id,
                                            std::string_view client_key) {
  State& s = *state_;
  if (client_id.empty()) return Unknown("client_id is missing");
  if (client_id.size() > kMaxClientIdBytes) return Unknown("client_id is too long");
  for (const Client& client : s.preregistered) {
    if (client.client_id == client_id) return client;
  }
  if (IsCimdId(client_id)) {
    if (!s.options.client_id_metadata_documents) {
      return Unknown("this hub does not accept client metadata documents as client ids");
    }
    return s.FindCimd(std::string(client_id), client_key);
  }
  absl::StatusOr<store::OAuthClientRecord> record = s.store.GetOAuthClient(client_id);
  if (absl::IsNotFound(record.status())) {
    return Unknown(absl::StrCat("unknown client ", common::QuoteForMessage(client_id)));
  }
  if (!record.ok()) return StoreFailure(record.status(), "look up a client");
  if (record->last_used_at_ms == 0 && record->expires_at_ms != 0 &&
      common::ToUnixMillis(s.clock.Now()) >= record->expires_at_ms) {
    return Unknown(absl::StrCat("client ", common::QuoteForMessage(client_id),
                                " expired unused; register again"));
  }
  return Client{.client_id = record->client_id,
                .kind = ClientKind::kDynamic,
                .name = record->name,
                .redirect_uris = record->redirect_uris,
                .auth_method = record->auth_method,
                .secret_hash = record->secret_hash};
}

absl::StatusOr<Client> ClientRegistry::State::FindCimd(const std::string& url,
                                                       std::string_view client_key) {
  // Checked before the cache, and never cached: junk ids cost nothing and evict nothing.
  LLMBOX_RETURN_IF_ERROR(CheckCimdUrl(url, options));
  std::unique_lock<std::mutex> lock(mu);
  auto cached = cimd_cache.find(url);
  if (cached != cimd_cache.end() && clock.SteadyNow() < cached->second.expires) {
    return cached->second.client;
  }
  // Not cached: this request holds an HTTP worker for up to cimd_timeout, and anyone can name
  // a new slow URL. So such requests are bounded in the whole hub at once (refused at once
  // beyond it, never queued) and per client address over time.
  if (uncached_lookups >= options.cimd_max_concurrent_fetches) {
    spdlog::warn(
        "oauth: a client metadata document lookup was refused: {} are in progress "
        "(auth.oauth cimd_max_concurrent_fetches)",
        uncached_lookups);
    return OAuthError(kTemporarilyUnavailable,
                      "the hub is fetching as many client metadata documents as it may at once; "
                      "try again in a few seconds");
  }
  if (!client_key.empty()) {
    if (std::optional<std::chrono::seconds> wait = cimd_lookups.Take(client_key)) {
      return OAuthError(kTemporarilyUnavailable,
                        absl::StrCat("too many client metadata documents fetched for this "
                                     "address; try again in ",
                                     wait->count(), " s"));
    }
  }
  ++uncached_lookups;
  if (auto running = fetches.find(url); running != fetches.end()) {
    // One fetch per URL: the others wait for its result (up to its own timeout), each still
    // counting against the bound above, so waiters cannot hold every worker either.
    const std::shared_ptr<Fetch> fetch = running->second;
    const bool done = clock.WaitUntil(lock, fetched, fetch->deadline, [&] { return fetch->done; });
    --uncached_lookups;
    if (!done) {
      return OAuthError(kTemporarilyUnavailable,
                        "the client metadata document is still being fetched; try again");
    }
    return fetch->result;
  }
  auto fetch = std::make_shared<Fetch>();
  fetch->deadline = clock.SteadyNow() +
                    std::chrono::duration_cast<std::chrono::nanoseconds>(options.cimd_timeout) +
                    kFetchWaitSlack;
  fetches.emplace(url, fetch);
  lock.unlock();
  // Fetched outside the lock: a slow document holds up only the requests that name it.
  absl::StatusOr<Client> result = FetchCimd(url);
  lock.lock();
  Remember(url, result);
  fetch->result = result;
  fetch->done = true;
  fetches.erase(url);
  --uncached_lookups;
  lock.unlock();
  fetched.notify_all();
  return result;
}

absl::StatusOr<Client> ClientRegistry::State::FetchCimd(const std::string& url) {
  const std::string what =
      absl::StrCat("the client metadata document ", common::QuoteForMessage(url, 200));
  absl::StatusOr<std::string> body = fetcher.Fetch(url);
  if (!body.ok()) {
    spdlog::info("oauth: {}: {}", what, common::AsStd(body.status().message()));
    return Unknown(absl::StrCat(what, " cannot be used: ", common::AsAbsl(kFetchFailure)));
  }
  auto refused = [&](const absl::Status& status) {
    return Unknown(absl::StrCat(what, ": ", status.message()));
  };
  absl::StatusOr<json> doc = ParseObject(*body, options.cimd_max_bytes, "the document");
  if (!doc.ok()) return refused(doc.status());
  auto id = doc->find("client_id");
  if (id == doc->end() || !id->is_string() || id->get_ref<const std::string&>() != url) {
    return Unknown(absl::StrCat(what, " names another client_id than its own URL"));
  }
  if (doc->contains("client_secret") || doc->contains("client_secret_expires_at")) {
    return Unknown(absl::StrCat(what,
                                " carries a client secret, which a public document must "
                                "not"));
  }
  absl::StatusOr<Metadata> metadata = ReadMetadata(*doc, options, /*default_auth_method=*/"none");
  if (!metadata.ok()) return refused(metadata.status());
  if (metadata->auth_method != "none") {
    return Unknown(absl::StrCat(what, " asks for token_endpoint_auth_method ",
                                metadata->auth_method, "; only none is supported"));
  }
  return Client{.client_id = url,
                .kind = ClientKind::kMetadataDocument,
                .name = std::move(metadata->name),
                .redirect_uris = std::move(metadata->redirect_uris),
                .auth_method = "none"};
}

void ClientRegistry::State::Remember(const std::string& url, const absl::StatusOr<Client>& result) {
  // A store outage is not the document's fault: not cached.
  if (!result.ok() && OAuthErrorCode(result.status()) != kInvalidClient) return;
  const common::Clock::SteadyTime now = clock.SteadyNow();
  const common::Clock::SteadyTime expires =
      now + (result.ok()
                 ? std::chrono::duration_cast<std::chrono::nanoseconds>(options.cimd_cache_ttl)
                 : std::chrono::duration_cast<std::chrono::nanoseconds>(kCimdFailureTtl));
  if (cimd_cache.size() >= kMaxCimdCacheEntries && !cimd_cache.contains(url)) {
    std::erase_if(cimd_cache, [&](const auto& entry) { return entry.second.expires <= now; });
    if (cimd_cache.size() >= kMaxCimdCacheEntries) {
      auto soonest = std::min_element(
          cimd_cache.begin(), cimd_cache.end(),
          [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
      cimd_cache.erase(soonest);
    }
  }
  cimd_cache.insert_or_assign(url, Cached{result, expires});
}

absl::Status ClientRegistry::AuthenticateClient(const Client& client,
                                                std::optional<std::string_view> secret) {
  // An empty client_secret is what some libraries send for "none"; it proves nothing either way.
  const bool sent = secret.has_value() && !secret->empty();
  if (client.secret_hash.empty()) {
    if (sent) return Unknown("a public client must not send a client_secret");
    return absl::OkStatus();
  }
  if (!sent) return Unknown("client authentication is required for this client");
  if (!common::ConstantTimeEquals(common::Sha256Hex(*secret), client.secret_hash)) {
    return Unknown("client authentication failed");
  }
  return absl::OkStatus();
}

void ClientRegistry::MarkUsed(const Client& client) {
  if (client.kind != ClientKind::kDynamic) return;
  absl::Status touched =
      state_->store.TouchOAuthClient(client.client_id, common::ToUnixMillis(state_->clock.Now()));
  if (!touched.ok()) {
    spdlog::warn("oauth: client {}: could not record its use: {}", client.client_id,
                 common::AsStd(touched.message()));
  }
}

}  // namespace llmbox::hub::oauth
