// hub/oauth/options.h
//
// What the hub's OAuth 2.1 authorization server is configured with (the `auth.oauth` section of
// the hub's config, docs/hub.md). A plain value; hub/config parses it, hub/server fills in the
// issuer and resource once the public URL is known.
//
// The hub is its own authorization server: issuer = resource = the hub's public URL (an origin,
// no path, no trailing slash), MCP at "/" of that origin. Clients come three ways: registered
// dynamically (RFC 7591, POST /register), named by an https client id metadata document (CIMD),
// or pre-registered here. A person signs in either through the activation page's OpenID Connect
// provider (SignInMode::kOidc) or on a hub page with their llmbox API key (SignInMode::kApiKey).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "hub/auth/principal.h"

namespace llmbox::hub::oauth {

enum class SignInMode {
  kOidc,    // the activation module's OIDC provider (activation.oidc must be configured)
  kApiKey,  // a hub page that takes the person's llmbox API key
};
std::string_view SignInModeName(SignInMode mode);  // "oidc", "api_key"

// A client from the config (auth.oauth.clients): its secret is read from a file; public when
// it has none.
struct PreregisteredClient {
  std::string client_id;      // [A-Za-z0-9._-]{1,128}, not an https URL
  std::string client_secret;  // "" for a public client (token_endpoint_auth_method none)
  std::string name;
  std::vector<std::string> redirect_uris;
};

struct OAuthOptions {
  bool enabled = false;
  // The hub's public URL, no trailing slash ("https://hub.example.com"): the issuer, the
  // canonical resource (RFC 8707) tokens are issued for, and the base of every endpoint.
  std::string issuer;
  SignInMode sign_in = SignInMode::kApiKey;

  std::chrono::seconds access_token_ttl{3600};
  std::chrono::seconds refresh_token_ttl{30 * 24 * 3600};  // each refresh token, from its issue
  // A grant (one consent and its chain of refresh tokens) ends this long after consent at the
  // latest; the person consents again.
  std::chrono::seconds grant_ttl{90 * 24 * 3600};
  std::chrono::seconds code_ttl{60};
  // How long the authorize → sign-in → consent pages may take (the pending request's life).
  std::chrono::seconds authorize_ttl{600};

  // Redirect URIs a client may register or name (exact; an entry "https://host" with no path
  // allows any path on that origin). Loopback redirects (http://127.0.0.1, http://[::1],
  // http://localhost, any port, RFC 8252 §7.3) are allowed when allow_loopback_redirects.
  std::vector<std::string> allowed_redirect_uris = {"https://claude.ai/api/mcp/auth_callback",
                                                    "https://claude.com/api/mcp/auth_callback"};
  bool allow_loopback_redirects = true;

  // Dynamic registration: per client address and window; a client never used expires after
  // unused_client_ttl, a used one a day after its last use once it has no grant left; at most
  // max_clients dynamically registered clients at once. Registrations whose redirect_uris are
  // all on allowed_redirect_uris (claude.ai's, which registers on every connection from a few
  // shared egress addresses) count against their own, larger per-address budget.
  int max_registrations_per_address = 20;
  int max_allowlisted_registrations_per_address = 200;
  std::chrono::seconds registration_window{3600};
  std::chrono::seconds unused_client_ttl{24 * 3600};
  std::size_t max_clients = 100'000;

  // Client ID metadata documents: fetched with these limits (no redirects followed), cached.
  bool client_id_metadata_documents = true;
  std::chrono::milliseconds cimd_timeout{5'000};
  std::size_t cimd_max_bytes = 16 * 1024;
  std::chrono::seconds cimd_cache_ttl{3600};
  // Documents not in the cache: at most this many requests in the whole hub wait on a fetch
  // at once (the rest are refused at once, temporarily_unavailable), and at most
  // cimd_fetches_per_address such lookups per client address and cimd_fetch_window.
  int cimd_max_concurrent_fetches = 4;
  int cimd_fetches_per_address = 10;
  std::chrono::seconds cimd_fetch_window{60};
  // Tests only: lets a CIMD URL name a loopback http(s) host. Off in every shipped config.
  bool cimd_allow_loopback = false;

  std::vector<PreregisteredClient> clients;

  // People signed in through the OIDC provider who get the admin role (auth::Role::kAdmin:
  // every principal's boxes), by verified email, compared case-insensitively. Read at every
  // request, so a change takes effect at the hub's next start. Keys get the role from
  // `apikey create --admin` instead.
  std::vector<std::string> admin_emails;
};

// The roles of a person signed in through the OIDC provider with this verified email.
std::vector<auth::Role> OidcRoles(const OAuthOptions& options, std::string_view email);

// The scope the hub knows: everything the MCP tools do as the signed-in principal.
inline constexpr std::string_view kScope = "llmbox";

}  // namespace llmbox::hub::oauth
