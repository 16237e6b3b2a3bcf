// hub/oauth/clients.h
//
// The OAuth clients the hub knows: dynamically registered ones (RFC 7591, kept in the Store),
// client ID metadata documents (the client id is an https URL; its JSON is fetched, checked and
// cached), and pre-registered ones from the config.
//
//   ClientRegistry clients(store, fetcher, clock, options);
//   // POST /register
//   absl::StatusOr<std::string> body =
//       clients.Register(request.body, http::AddressKey(request.client_address));
//   // /authorize, /token
//   LLMBOX_ASSIGN_OR_RETURN(Client client, clients.Find(client_id, client_key));
//   LLMBOX_RETURN_IF_ERROR(clients.AuthenticateClient(client, client_secret));
//
// Registration: JSON object in (at most 16 KiB), 201 JSON out with client_id,
// client_id_issued_at (integer seconds), client_secret and client_secret_expires_at (0) for
// client_secret_post / client_secret_basic, and the registered metadata (grant_types always
// lists both grants, whatever subset was asked: the hub keeps no per-client grant list; scope
// is "llmbox"; fields the hub does not use, client_uri, logo_uri, contacts..., are dropped).
// The JSON may nest at most 8 levels. redirect_uris (1..16) are required, each allowed by
// CheckRedirectUriAllowed; grant_types ⊆ {authorization_code, refresh_token} and holding
// authorization_code; response_types ⊆ {code}; token_endpoint_auth_method one of none,
// client_secret_post, client_secret_basic (absent: client_secret_basic, as RFC 7591 says).
// client_name at most 200 characters of valid UTF-8 printable text (no control characters, no
// format characters of category Cf such as bidirectional controls and zero-width characters,
// no line or paragraph separators). A loopback redirect URI must have a path and no query
// (redirect_uri.h). Registrations are limited per client address and registration_window:
// those whose redirect_uris are all on the operator's list (IsOperatorListedRedirectUri)
// against options.max_allowlisted_registrations_per_address, all others against
// max_registrations_per_address (every attempt counts, a malformed one too, but not one
// refused for the cap); and in all (options.max_clients, counted in the store, expired clients
// included until PruneOAuth removes them). A registered client never used expires after
// unused_client_ttl; a used one is deleted by PruneOAuth a day after its last use once no
// grant of it is left. Secrets are kept as SHA-256 only.
//
// CIMD: a client id that is an https URL (no fragment, no userinfo, a path) is fetched with
// the fetcher (no redirects, options.cimd_timeout, options.cimd_max_bytes), must be JSON whose
// client_id equals the URL exactly, whose redirect_uris are allowed, and whose
// token_endpoint_auth_method is none (or absent); cached for options.cimd_cache_ttl (also a
// refusal, for a minute, so a bad URL is not fetched on every request; at most 1000 documents,
// the soonest to expire evicted first). A lookup of a document not in the cache holds its
// caller's thread for up to cimd_timeout, so: at most options.cimd_max_concurrent_fetches such
// lookups run in the whole registry at once (beyond that, temporarily_unavailable at once, no
// waiting); lookups of a URL that is being fetched share that one fetch (they wait for its
// result, at most its timeout plus a second, and count against the bound while they wait); and
// each client address may make options.cimd_fetches_per_address such lookups per
// cimd_fetch_window (temporarily_unavailable with the wait). The client hears one message for
// every failed fetch, whatever the cause, so it cannot tell a name that resolves to a private
// address from one that does not resolve (no DNS oracle); the log has the fetcher's message.
// The fetch never goes to a loopback, private, link-local or otherwise non-public address (the
// fetcher refuses it), unless options.cimd_allow_loopback (tests).
//
// Thread-safe. Errors carry OAuth error codes (errors.h): invalid_client_metadata,
// invalid_redirect_uri (register), invalid_client (unknown client, bad secret), and
// temporarily_unavailable for a store that fails or a rate limit (with the wait).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

#include "common/clock.h"
#include "hub/activation/http_fetch.h"
#include "hub/oauth/options.h"
#include "hub/store/store.h"

namespace llmbox::hub::oauth {

enum class ClientKind { kDynamic, kMetadataDocument, kPreregistered };

struct Client {
  std::string client_id;
  ClientKind kind = ClientKind::kDynamic;
  std::string name;  // as the client named itself (shown on the consent page); may be ""
  std::vector<std::string> redirect_uris;
  std::string auth_method = "none";  // none | client_secret_post | client_secret_basic
  std::string secret_hash;           // SHA-256 hex, "" for public clients
};

// Fetches a CIMD URL. The real one (MakeCurlCimdFetcher, cimd_fetch.cc) refuses non-public
// addresses (public_address.h) before connecting; tests give a double.
class CimdFetcher {
 public:
  virtual ~CimdFetcher() = default;
  // The body of a 200 answer; errors for anything else (status, size, time, address).
  [[nodiscard]] virtual absl::StatusOr<std::string> Fetch(const std::string& url) = 0;
};

// libcurl, https only, no redirects, no proxy, certificates verified (against `ca_file`, a PEM
// bundle, when given: tests), body capped at `max_bytes`, the whole fetch (name resolution
// included) within `timeout`. Connects only to public addresses: an IP-literal host that is not
// is refused before curl starts, and every address a name resolves to is vetted right before
// its socket opens (no DNS rebinding). With `allow_loopback` (tests) loopback addresses pass
// too, and plain http to a loopback host. Errors: PermissionDenied (address), InvalidArgument
// (URL), FailedPrecondition (a redirect), Unavailable (status, resolution, transport),
// DeadlineExceeded, ResourceExhausted (size).
std::unique_ptr<CimdFetcher> MakeCurlCimdFetcher(std::chrono::milliseconds timeout,
                                                 std::size_t max_bytes, bool allow_loopback,
                                                 std::string ca_file = "");

class ClientRegistry {
 public:
  // `store`, `fetcher` and `clock` must outlive the registry.
  ClientRegistry(store::Store& store, CimdFetcher& fetcher, common::Clock& clock,
                 const OAuthOptions& options);
  ~ClientRegistry();

  // RFC 7591 registration of `body` (JSON) from the client at `client_key`
  // (http::AddressKey). The 201 response body.
  [[nodiscard]] absl::StatusOr<std::string> Register(std::string_view body,
                                                     std::string_view client_key);

  // The client with this id (dynamic, CIMD or pre-registered). invalid_client when unknown,
  // expired, or a CIMD document that cannot be fetched or used (the message says why);
  // temporarily_unavailable when an uncached CIMD document may not be fetched now (the bounds
  // above). `client_key` (http::AddressKey of the requester) is what the per-address CIMD limit
  // counts; "" (callers with no requester) counts nothing.
  [[nodiscard]] absl::StatusOr<Client> Find(std::string_view client_id,
                                            std::string_view client_key = {});

  // Checks the client's credentials at the token or revocation endpoint: `secret` is the
  // client_secret the request carried (form or Basic), nullopt when none. A public client must
  // send none; a confidential one must send its own. An empty secret counts as none (some
  // libraries send client_secret= for a public client). invalid_client otherwise; the
  // comparison is of SHA-256 hashes in constant time.
  [[nodiscard]] absl::Status AuthenticateClient(const Client& client,
                                                std::optional<std::string_view> secret);

  // Records that the client was used (it then no longer expires as unused).
  void MarkUsed(const Client& client);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace llmbox::hub::oauth
