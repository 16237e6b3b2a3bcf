// hub/activation/jwt.cc
#include "hub/activation/jwt.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "common/secrets.h"
#include "common/status.h"
#include "common/validate.h"

namespace llmbox::hub::activation {

struct JwkSet::Key {
  std::string kid;
  std::string kty;  // "RSA" or "EC" (P-256)
  std::string alg;  // the JWK's own "alg", empty when absent
  std::shared_ptr<EVP_PKEY> pkey;
};

namespace {

using common::QuoteForMessage;
using Json = nlohmann::json;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

constexpr int kMinRsaBits = 2048;
constexpr size_t kP256CoordinateBytes = 32;

// Parses JSON we did not write; never throws.
[[nodiscard]] absl::StatusOr<Json> ParseObject(std::string_view text, const std::string& what) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  }
  return json;
}

// A string member, or "" when absent; an error when present with another type.
[[nodiscard]] absl::StatusOr<std::string> OptionalString(const Json& object, const char* name,
                                                         const std::string& what) {
  const auto it = object.find(name);
  if (it == object.end()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", name, "\" is not a string"));
  }
  return it->get<std::string>();
}

[[nodiscard]] absl::StatusOr<std::string> DecodeMember(const Json& jwk, const char* name,
                                                       const std::string& what) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, OptionalString(jwk, name, what));
  if (text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", name, "\" is missing"));
  }
  auto bytes = common::Base64UrlDecode(text);
  if (!bytes.ok() || bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": \"", name, "\" is not base64url"));
  }
  return *std::move(bytes);
}

// An EVP_PKEY from OSSL parameters (`type` "RSA" or "EC"), checked as a public key.
[[nodiscard]] absl::StatusOr<std::shared_ptr<EVP_PKEY>> KeyFromParams(const char* type,
                                                                      OSSL_PARAM* params,
                                                                      const std::string& what) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a valid ", type, " public key"));
  }
  std::shared_ptr<EVP_PKEY> pkey(raw, EVP_PKEY_free);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a valid ", type, " public key"));
  }
  return pkey;
}

[[nodiscard]] absl::StatusOr<std::shared_ptr<EVP_PKEY>> RsaKey(const Json& jwk,
                                                               const std::string& what) {
  LLMBOX_ASSIGN_OR_RETURN(std::string n, DecodeMember(jwk, "n", what));
  LLMBOX_ASSIGN_OR_RETURN(std::string e, DecodeMember(jwk, "e", what));
  BignumPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()),
                           static_cast<int>(n.size()), nullptr));
  BignumPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()),
                           static_cast<int>(e.size()), nullptr));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return absl::InternalError(absl::StrCat(what, ": OpenSSL could not build RSA parameters"));
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return absl::InternalError(absl::StrCat(what, ": OpenSSL parameters failed"));
  return KeyFromParams("RSA", params.get(), what);
}

[[nodiscard]] absl::StatusOr<std::shared_ptr<EVP_PKEY>> P256Key(const Json& jwk,
                                                                const std::string& what) {
  LLMBOX_ASSIGN_OR_RETURN(std::string x, DecodeMember(jwk, "x", what));
  LLMBOX_ASSIGN_OR_RETURN(std::string y, DecodeMember(jwk, "y", what));
  if (x.size() != kP256CoordinateBytes || y.size() != kP256CoordinateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": P-256 coordinates must be 32 bytes each"));
  }
  const std::string point = "\x04" + x + y;  // uncompressed SEC1 point
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return absl::InternalError(absl::StrCat(what, ": OpenSSL could not build EC parameters"));
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return absl::InternalError(absl::StrCat(what, ": OpenSSL parameters failed"));
  return KeyFromParams("EC", params.get(), what);
}

// The key of one JWKS entry; nullptr (and OK) for a key we do not use.
[[nodiscard]] absl::StatusOr<std::shared_ptr<JwkSet::Key>> ParseJwk(const Json& jwk, size_t index) {
  const std::string what = absl::StrCat("jwks: key ", index);
  if (!jwk.is_object()) return absl::InvalidArgumentError(what + " is not an object");
  LLMBOX_ASSIGN_OR_RETURN(std::string kty, OptionalString(jwk, "kty", what));
  LLMBOX_ASSIGN_OR_RETURN(std::string use, OptionalString(jwk, "use", what));
  LLMBOX_ASSIGN_OR_RETURN(std::string crv, OptionalString(jwk, "crv", what));
  auto key = std::make_shared<JwkSet::Key>();
  LLMBOX_ASSIGN_OR_RETURN(key->kid, OptionalString(jwk, "kid", what));
  LLMBOX_ASSIGN_OR_RETURN(key->alg, OptionalString(jwk, "alg", what));
  if (!use.empty() && use != "sig") return nullptr;
  if (kty == "RSA") {
    LLMBOX_ASSIGN_OR_RETURN(key->pkey, RsaKey(jwk, what));
    if (EVP_PKEY_get_bits(key->pkey.get()) < kMinRsaBits) return nullptr;
  } else if (kty == "EC" && crv == "P-256") {
    LLMBOX_ASSIGN_OR_RETURN(key->pkey, P256Key(jwk, what));
  } else {
    return nullptr;
  }
  key->kty = kty;
  return key;
}

// Which key type an allowed algorithm needs; "" for an algorithm we never accept.
std::string_view KtyFor(std::string_view alg) {
  if (alg == "RS256") return "RSA";
  if (alg == "ES256") return "EC";
  return "";
}

// JWS ES256 signatures are raw r||s; OpenSSL verifies DER.
[[nodiscard]] absl::StatusOr<std::string> EcdsaRawToDer(std::string_view raw) {
  if (raw.size() != 2 * kP256CoordinateBytes) {
    return absl::UnauthenticatedError(
        absl::StrCat("id token: an ES256 signature is 64 bytes, got ", raw.size()));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes, kP256CoordinateBytes, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + kP256CoordinateBytes, kP256CoordinateBytes, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("id token: OpenSSL could not build an ECDSA signature");
  }
  const int length = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (length <= 0) return absl::InternalError("id token: OpenSSL could not encode a signature");
  std::string der(static_cast<size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

bool VerifySha256(EVP_PKEY* pkey, std::string_view signed_part, std::string_view signature) {
  MdCtxPtr md(EVP_MD_CTX_new());
  return md && EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
         EVP_DigestVerify(
             md.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

struct CompactJws {
  std::string_view header_b64;
  std::string_view payload_b64;
  std::string_view signature_b64;
};

[[nodiscard]] absl::StatusOr<CompactJws> Split(std::string_view token) {
  if (token.size() > kMaxIdTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("id token: ", token.size(), " bytes is over the limit of ", kMaxIdTokenBytes));
  }
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        "id token: not a compact JWS (three base64url parts separated by dots)");
  }
  return CompactJws{token.substr(0, first), token.substr(first + 1, second - first - 1),
                    token.substr(second + 1)};
}

[[nodiscard]] absl::StatusOr<std::string> DecodePart(std::string_view part,
                                                     const std::string& name) {
  auto bytes = common::Base64UrlDecode(part);
  if (!bytes.ok() || bytes->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("id token: the ", name, " is not base64url"));
  }
  return *std::move(bytes);
}

[[nodiscard]] absl::StatusOr<JwsHeader> DecodeHeader(std::string_view header_b64) {
  LLMBOX_ASSIGN_OR_RETURN(std::string text, DecodePart(header_b64, "header"));
  LLMBOX_ASSIGN_OR_RETURN(Json header, ParseObject(text, "id token: the header"));
  JwsHeader out;
  LLMBOX_ASSIGN_OR_RETURN(out.alg, OptionalString(header, "alg", "id token: header"));
  LLMBOX_ASSIGN_OR_RETURN(out.kid, OptionalString(header, "kid", "id token: header"));
  if (header.contains("crit")) {
    return absl::UnauthenticatedError(
        "id token: the header has \"crit\" extensions, which this verifier does not support");
  }
  return out;
}

// A NumericDate claim (seconds since the epoch) as wall time.
[[nodiscard]] absl::StatusOr<common::Clock::WallTime> DateClaim(const Json& claims,
                                                                const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) {
    return absl::UnauthenticatedError(
        absl::StrCat("id token: \"", name, "\" is missing or not a number"));
  }
  const double seconds = it->get<double>();
  // Up to the year 2096: nanoseconds since the epoch must fit the clock's int64.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 4e9) {
    return absl::UnauthenticatedError(absl::StrCat("id token: \"", name, "\" is out of range"));
  }
  return common::Clock::WallTime(std::chrono::duration_cast<common::Clock::WallTime::duration>(
      std::chrono::duration<double>(seconds)));
}

[[nodiscard]] absl::Status CheckAudience(const Json& claims, const std::string& client_id) {
  const auto aud = claims.find("aud");
  std::vector<std::string> audiences;
  if (aud != claims.end() && aud->is_string()) {
    audiences.push_back(aud->get<std::string>());
  } else if (aud != claims.end() && aud->is_array()) {
    for (const auto& a : *aud) {
      if (a.is_string()) audiences.push_back(a.get<std::string>());
    }
  }
  if (std::find(audiences.begin(), audiences.end(), client_id) == audiences.end()) {
    std::string shown;
    for (const auto& a : audiences)
      absl::StrAppend(&shown, shown.empty() ? "" : ", ", QuoteForMessage(a));
    return absl::UnauthenticatedError(absl::StrCat(
        "id token: audience [", shown, "] does not include client id ", QuoteForMessage(client_id),
        "; the token was issued to another client (check "
        "activation.oidc.client_id)"));
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string azp, OptionalString(claims, "azp", "id token"));
  if (audiences.size() > 1 && azp.empty()) {
    return absl::UnauthenticatedError(
        "id token: several audiences and no \"azp\" naming the party it was issued to");
  }
  if (!azp.empty() && azp != client_id) {
    return absl::UnauthenticatedError(absl::StrCat("id token: authorized party (azp) ",
                                                   QuoteForMessage(azp), " is not client id ",
                                                   QuoteForMessage(client_id)));
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status CheckTimes(const Json& claims, common::Clock& clock,
                                      IdTokenClaims* out) {
  const common::Clock::WallTime now = clock.Now();
  LLMBOX_ASSIGN_OR_RETURN(out->expires_at, DateClaim(claims, "exp"));
  LLMBOX_ASSIGN_OR_RETURN(out->issued_at, DateClaim(claims, "iat"));
  if (now >= out->expires_at + kClockSkew) {
    return absl::UnauthenticatedError(absl::StrCat(
        "id token: expired ",
        std::chrono::duration_cast<std::chrono::seconds>(now - out->expires_at).count(),
        " s ago (exp is in the past beyond the allowed clock skew of ", kClockSkew.count(),
        " s; check this host's clock if it keeps happening)"));
  }
  if (out->issued_at > now + kClockSkew) {
    return absl::UnauthenticatedError(
        "id token: issued in the future (iat beyond the allowed clock skew; check this host's "
        "clock)");
  }
  if (claims.contains("nbf")) {
    LLMBOX_ASSIGN_OR_RETURN(common::Clock::WallTime not_before, DateClaim(claims, "nbf"));
    if (not_before > now + kClockSkew) {
      return absl::UnauthenticatedError("id token: not valid yet (nbf is in the future)");
    }
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status CheckIdentity(const Json& claims, const IdTokenExpectations& expect,
                                         IdTokenClaims* out) {
  LLMBOX_ASSIGN_OR_RETURN(std::string nonce, OptionalString(claims, "nonce", "id token"));
  if (expect.nonce.empty() || !common::ConstantTimeEquals(nonce, expect.nonce)) {
    return absl::UnauthenticatedError(
        "id token: nonce does not match the one sent with this login (a replayed or foreign "
        "token); start the sign-in again");
  }
  LLMBOX_ASSIGN_OR_RETURN(out->subject, OptionalString(claims, "sub", "id token"));
  if (out->subject.empty()) return absl::UnauthenticatedError("id token: \"sub\" is missing");
  LLMBOX_ASSIGN_OR_RETURN(out->email, OptionalString(claims, "email", "id token"));
  if (out->email.empty()) {
    return absl::UnauthenticatedError(
        "id token: no \"email\" claim; the provider must put email and email_verified in the "
        "ID token for the scope \"openid email\"");
  }
  const auto verified = claims.find("email_verified");
  if (verified == claims.end() || !verified->is_boolean() || !verified->get<bool>()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "id token: the provider has not verified the email ", QuoteForMessage(out->email),
        " (email_verified is not true); verify it at the provider and sign in again"));
  }
  return absl::OkStatus();
}

}  // namespace

JwkSet::JwkSet() = default;
JwkSet::~JwkSet() = default;
JwkSet::JwkSet(const JwkSet&) = default;
JwkSet& JwkSet::operator=(const JwkSet&) = default;
JwkSet::JwkSet(JwkSet&&) noexcept = default;
JwkSet& JwkSet::operator=(JwkSet&&) noexcept = default;

absl::StatusOr<JwkSet> JwkSet::Parse(std::string_view jwks_json) {
  if (jwks_json.size() > kMaxJwksBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwks: ", jwks_json.size(), " bytes is over the limit of ", kMaxJwksBytes));
  }
  LLMBOX_ASSIGN_OR_RETURN(Json doc, ParseObject(jwks_json, "jwks: the document"));
  const auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("jwks: the document has no \"keys\" array");
  }
  if (keys->size() > kMaxJwksKeys) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwks: ", keys->size(), " keys is over the limit of ", kMaxJwksKeys));
  }
  JwkSet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    LLMBOX_ASSIGN_OR_RETURN(std::shared_ptr<Key> key, ParseJwk((*keys)[i], i));
    if (key == nullptr) continue;
    if (!set.keys_.emplace(key->kid, key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("jwks: two keys share the kid ", QuoteForMessage(key->kid)));
    }
  }
  return set;
}

bool JwkSet::Has(std::string_view kid) const { return keys_.find(kid) != keys_.end(); }

const JwkSet::Key* JwkSet::Find(std::string_view kid, std::string_view kty) const {
  if (!kid.empty()) {
    const auto it = keys_.find(kid);
    return it == keys_.end() ? nullptr : it->second.get();
  }
  const Key* only = nullptr;
  for (const auto& [unused, key] : keys_) {
    if (key->kty != kty) continue;
    if (only != nullptr) return nullptr;
    only = key.get();
  }
  return only;
}

[[nodiscard]] absl::StatusOr<JwsHeader> PeekJwsHeader(std::string_view token) {
  LLMBOX_ASSIGN_OR_RETURN(CompactJws jws, Split(token));
  return DecodeHeader(jws.header_b64);
}

[[nodiscard]] absl::StatusOr<IdTokenClaims> VerifyIdToken(std::string_view token,
                                                          const JwkSet& keys,
                                                          const IdTokenExpectations& expect,
                                                          common::Clock& clock) {
  LLMBOX_ASSIGN_OR_RETURN(CompactJws jws, Split(token));
  LLMBOX_ASSIGN_OR_RETURN(JwsHeader header, DecodeHeader(jws.header_b64));
  const std::string_view kty = KtyFor(header.alg);
  const bool allowed = std::find(expect.allowed_algs.begin(), expect.allowed_algs.end(),
                                 header.alg) != expect.allowed_algs.end();
  if (kty.empty() || !allowed) {
    return absl::UnauthenticatedError(
        absl::StrCat("id token: algorithm ", QuoteForMessage(header.alg),
                     " is not allowed (only RS256 and ES256 signatures are accepted)"));
  }
  const JwkSet::Key* key = keys.Find(header.kid, kty);
  if (key == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat("id token: no signing key with kid ",
                                                   QuoteForMessage(header.kid),
                                                   " in the provider's JWKS"));
  }
  if (key->kty != kty || (!key->alg.empty() && key->alg != header.alg)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "id token: algorithm ", header.alg, " does not match the key ", QuoteForMessage(key->kid),
        " (", key->kty, key->alg.empty() ? "" : ", " + key->alg, ")"));
  }
  LLMBOX_ASSIGN_OR_RETURN(std::string signature, DecodePart(jws.signature_b64, "signature"));
  if (header.alg == "ES256") {
    LLMBOX_ASSIGN_OR_RETURN(signature, EcdsaRawToDer(signature));
  }
  const std::string_view signed_part =
      token.substr(0, jws.header_b64.size() + 1 + jws.payload_b64.size());
  if (!VerifySha256(key->pkey.get(), signed_part, signature)) {
    return absl::UnauthenticatedError(absl::StrCat("id token: the ", header.alg,
                                                   " signature does not verify with the key ",
                                                   QuoteForMessage(key->kid)));
  }

  LLMBOX_ASSIGN_OR_RETURN(std::string payload, DecodePart(jws.payload_b64, "payload"));
  LLMBOX_ASSIGN_OR_RETURN(Json claims, ParseObject(payload, "id token: the payload"));
  IdTokenClaims out;
  LLMBOX_ASSIGN_OR_RETURN(out.issuer, OptionalString(claims, "iss", "id token"));
  if (out.issuer != expect.issuer) {
    return absl::UnauthenticatedError(absl::StrCat(
        "id token: issuer ", QuoteForMessage(out.issuer, 200), " is not the configured issuer ",
        QuoteForMessage(expect.issuer, 200), " (check activation.oidc.issuer)"));
  }
  LLMBOX_RETURN_IF_ERROR(CheckAudience(claims, expect.client_id));
  LLMBOX_RETURN_IF_ERROR(CheckTimes(claims, clock, &out));
  LLMBOX_RETURN_IF_ERROR(CheckIdentity(claims, expect, &out));
  return out;
}

}  // namespace llmbox::hub::activation
