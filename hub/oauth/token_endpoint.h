// hub/oauth/token_endpoint.h
//
// POST /token and POST /revoke (RFC 6749 §3.2, §4.1.3, §6; RFC 7009): form-encoded requests
// (at most 8 KiB of body; a parameter sent twice is invalid_request), client authentication
// by client_secret_post, client_secret_basic or, for public clients, client_id alone (a
// request that uses two methods at once is invalid_request), JSON answers with
// Cache-Control: no-store and Pragma: no-cache, errors as errors.h writes them.
//
//   token:  grant_type=authorization_code&code=..&redirect_uri=..&code_verifier=..&client_id=..
//           [&resource=..]
//           grant_type=refresh_token&refresh_token=..&client_id=..[&scope=..][&resource=..]
//   revoke: token=..[&token_type_hint=access_token|refresh_token]&client_id=..  → 200 always
//           for a token that is unknown or not the client's (RFC 7009 §2.2)
//
// Only POST (405 with Allow otherwise) and Content-Type application/x-www-form-urlencoded
// (415 otherwise: invalid_request). The client is authenticated before its code or token is
// looked at (a failed client authentication spends nothing), and marked used
// (ClientRegistry::MarkUsed) once tokens are issued. Thread-safe (stateless; the registry and
// service are).
#pragma once

#include "hub/http/server.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/tokens.h"

namespace llmbox::hub::oauth {

http::Response HandleTokenRequest(const http::Request& request, ClientRegistry& clients,
                                  TokenService& tokens);
http::Response HandleRevokeRequest(const http::Request& request, ClientRegistry& clients,
                                   TokenService& tokens);

}  // namespace llmbox::hub::oauth
