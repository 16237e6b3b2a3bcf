// Sign-in gating: the ID-token verifier against tokens signed here with OpenSSL (RS256,
// ES256, and forgeries), the sign-in flow of ProviderOidcClient over an in-memory provider,
// the allow-list and the session cookie. Time is a FakeClock.

#include "hub/activation/oidc.h"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/secrets.h"
#include "hub/activation/jwt.h"
#include "hub/activation/session_cookie.h"
#include "tests/fakes/fake_clock.h"

namespace llmbox::hub::activation {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::FakeClock;

constexpr char kIssuer[] = "https://idp.example.com";
constexpr char kClientId[] = "llmbox";
constexpr char kNonce[] = "nonce-1234";

// A signing key made here, and its public JWK.
struct TestKey {
  std::string kid;
  std::string alg;
  std::shared_ptr<EVP_PKEY> pkey;

  Json Jwk() const {
    Json jwk = {{"kid", kid}, {"use", "sig"}, {"alg", alg}};
    if (alg == "RS256") {
      jwk["kty"] = "RSA";
      jwk["n"] = Param(OSSL_PKEY_PARAM_RSA_N, 0);
      jwk["e"] = Param(OSSL_PKEY_PARAM_RSA_E, 0);
    } else {
      jwk["kty"] = "EC";
      jwk["crv"] = "P-256";
      jwk["x"] = Param(OSSL_PKEY_PARAM_EC_PUB_X, 32);
      jwk["y"] = Param(OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    }
    return jwk;
  }

  // base64url of a big-endian parameter, left-padded to `width` bytes when width > 0.
  std::string Param(const char* name, int width) const {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(pkey.get(), name, &bn) == 1);
    const int size = width > 0 ? width : BN_num_bytes(bn);
    std::string bytes(static_cast<size_t>(size), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(bytes.data()), size);
    BN_free(bn);
    return common::Base64UrlEncode(bytes);
  }

  // The public key as PEM: what an attacker uses as an HMAC secret.
  std::string PublicPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    REQUIRE(PEM_write_bio_PUBKEY(bio, pkey.get()) == 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(n));
    BIO_free(bio);
    return pem;
  }

  // A JWS signature over `input` (raw r||s for ES256).
  std::string Sign(const std::string& input) const {
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, pkey.get()) == 1);
    size_t len = 0;
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    REQUIRE(EVP_DigestSign(md, nullptr, &len, data, input.size()) == 1);
    std::string sig(len, '\0');
    REQUIRE(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                           input.size()) == 1);
    sig.resize(len);
    EVP_MD_CTX_free(md);
    if (alg != "ES256") return sig;
    const auto* der = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(sig.size()));
    REQUIRE(ecdsa != nullptr);
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(ecdsa);
    return raw;
  }
};

const TestKey& RsaKey() {
  static const TestKey key{"rs-1", "RS256",
                           std::shared_ptr<EVP_PKEY>(EVP_RSA_gen(2048), EVP_PKEY_free)};
  return key;
}

const TestKey& EcKey() {
  static const TestKey key{"es-1", "ES256",
                           std::shared_ptr<EVP_PKEY>(EVP_EC_gen("P-256"), EVP_PKEY_free)};
  return key;
}

const TestKey& OtherRsaKey() {
  static const TestKey key{"rs-1", "RS256",
                           std::shared_ptr<EVP_PKEY>(EVP_RSA_gen(2048), EVP_PKEY_free)};
  return key;
}

std::string Jwks(const std::vector<const TestKey*>& keys) {
  Json doc = {{"keys", Json::array()}};
  for (const auto* key : keys) doc["keys"].push_back(key->Jwk());
  return doc.dump();
}

int64_t Seconds(common::Clock::WallTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Json Claims(common::Clock& clock, const std::string& nonce = kNonce) {
  const int64_t now = Seconds(clock.Now());
  return {{"iss", kIssuer},
          {"sub", "user-1"},
          {"aud", kClientId},
          {"iat", now},
          {"exp", now + 3600},
          {"nonce", nonce},
          {"email", "Alice@Example.com"},
          {"email_verified", true}};
}

std::string Encode(const Json& json) { return common::Base64UrlEncode(json.dump()); }

std::string SignedToken(const TestKey& key, const Json& claims, Json header = Json()) {
  if (header.is_null()) header = {{"alg", key.alg}, {"kid", key.kid}, {"typ", "JWT"}};
  const std::string input = Encode(header) + "." + Encode(claims);
  return input + "." + common::Base64UrlEncode(key.Sign(input));
}

IdTokenExpectations Expect() { return {kIssuer, kClientId, kNonce}; }

JwkSet Keys() {
  auto keys = JwkSet::Parse(Jwks({&RsaKey(), &EcKey()}));
  REQUIRE(keys.ok());
  return *std::move(keys);
}

// The message of a refused token, checked never to contain the token.
std::string Refusal(const std::string& token, FakeClock& clock,
                    const IdTokenExpectations& expect = Expect()) {
  auto result = VerifyIdToken(token, Keys(), expect, clock);
  REQUIRE_FALSE(result.ok());
  const std::string message(result.status().message());
  INFO(message);
  CHECK(message.rfind("id token: ", 0) == 0);
  CHECK((token.size() < 20 || message.find(token.substr(0, 20)) == std::string::npos));
  return message;
}

TEST_CASE("a valid RS256 id token is accepted", "[oidc]") {
  FakeClock clock;
  auto claims = VerifyIdToken(SignedToken(RsaKey(), Claims(clock)), Keys(), Expect(), clock);
  REQUIRE(claims.ok());
  CHECK(claims->email == "Alice@Example.com");
  CHECK(claims->subject == "user-1");
  CHECK(claims->issuer == kIssuer);
}

TEST_CASE("a valid ES256 id token is accepted", "[oidc]") {
  FakeClock clock;
  Json claims = Claims(clock);
  claims["aud"] = Json::array({kClientId, "another"});
  claims["azp"] = kClientId;
  auto result = VerifyIdToken(SignedToken(EcKey(), claims), Keys(), Expect(), clock);
  REQUIRE(result.ok());
  CHECK(result->email == "Alice@Example.com");
}

TEST_CASE("forged and wrong id tokens are refused, naming what failed", "[oidc]") {
  FakeClock clock;
  const Json claims = Claims(clock);

  SECTION("alg none") {
    const std::string token =
        Encode({{"alg", "none"}, {"kid", "rs-1"}}) + "." + Encode(claims) + ".";
    CHECK_THAT(Refusal(token, clock), Catch::Contains("algorithm \"none\" is not allowed"));
    CHECK_THAT(Refusal(Encode({{"alg", "none"}}) + "." + Encode(claims) + ".x", clock),
               Catch::Contains("is not allowed"));
  }
  SECTION("HS256 signed with the RSA public key as the HMAC secret") {
    const std::string input = Encode({{"alg", "HS256"}, {"kid", "rs-1"}}) + "." + Encode(claims);
    const std::string token =
        input + "." + common::Base64UrlEncode(common::HmacSha256(RsaKey().PublicPem(), input));
    CHECK_THAT(Refusal(token, clock), Catch::Contains("algorithm \"HS256\" is not allowed"));
  }
  SECTION("an unknown kid") {
    const std::string token =
        SignedToken(RsaKey(), claims, {{"alg", "RS256"}, {"kid", "rotated-away"}});
    CHECK_THAT(Refusal(token, clock), Catch::Contains("no signing key with kid \"rotated-away\""));
  }
  SECTION("a kid that names a key of another type") {
    const std::string token = SignedToken(RsaKey(), claims, {{"alg", "RS256"}, {"kid", "es-1"}});
    CHECK_THAT(Refusal(token, clock), Catch::Contains("does not match the key \"es-1\""));
  }
  SECTION("a signature by another key under the same kid") {
    CHECK_THAT(Refusal(SignedToken(OtherRsaKey(), claims), clock),
               Catch::Contains("RS256 signature does not verify with the key \"rs-1\""));
  }
  SECTION("a payload changed after signing") {
    std::string token = SignedToken(EcKey(), claims);
    Json changed = claims;
    changed["email"] = "mallory@example.com";
    const size_t dot1 = token.find('.');
    const size_t dot2 = token.find('.', dot1 + 1);
    token = token.substr(0, dot1 + 1) + Encode(changed) + token.substr(dot2);
    CHECK_THAT(Refusal(token, clock), Catch::Contains("ES256 signature does not verify"));
  }
  SECTION("an ES256 signature of the wrong length") {
    const std::string input = Encode({{"alg", "ES256"}, {"kid", "es-1"}}) + "." + Encode(claims);
    CHECK_THAT(Refusal(input + "." + common::Base64UrlEncode(std::string(70, 'x')), clock),
               Catch::Contains("an ES256 signature is 64 bytes, got 70"));
  }
  SECTION("a wrong audience") {
    Json c = claims;
    c["aud"] = "someone-else";
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("audience [\"someone-else\"] does not include client id "
                               "\"llmbox\""));
  }
  SECTION("several audiences without azp, or azp naming another client") {
    Json c = claims;
    c["aud"] = Json::array({kClientId, "other"});
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("no \"azp\""));
    c["azp"] = "other";
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("authorized party (azp) \"other\""));
  }
  SECTION("a wrong issuer") {
    Json c = claims;
    c["iss"] = "https://evil.example.com";
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("issuer \"https://evil.example.com\" is not the configured "
                               "issuer \"https://idp.example.com\""));
  }
  SECTION("expired beyond the clock skew, and accepted within it") {
    const std::string token = SignedToken(RsaKey(), claims);
    clock.Advance(3600s + 59s);
    CHECK(VerifyIdToken(token, Keys(), Expect(), clock).ok());
    clock.Advance(1s);
    CHECK_THAT(Refusal(token, clock), Catch::Contains("expired"));
  }
  SECTION("issued in the future beyond the clock skew") {
    Json c = claims;
    c["iat"] = Seconds(clock.Now()) + 120;
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("issued in the future"));
  }
  SECTION("no exp, or one out of range") {
    Json c = claims;
    c.erase("exp");
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("\"exp\" is missing or not a number"));
    c["exp"] = 1e300;
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("\"exp\" is out of range"));
  }
  SECTION("a nonce that is not this login's") {
    CHECK_THAT(Refusal(SignedToken(RsaKey(), Claims(clock, "other-nonce")), clock),
               Catch::Contains("nonce does not match"));
    Json c = claims;
    c.erase("nonce");
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("nonce does not match"));
  }
  SECTION("email_verified false, absent, or a string") {
    Json c = claims;
    c["email_verified"] = false;
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock),
               Catch::Contains("has not verified the email \"Alice@Example.com\""));
    c["email_verified"] = "true";
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("email_verified"));
    c.erase("email_verified");
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("email_verified"));
  }
  SECTION("no email") {
    Json c = claims;
    c.erase("email");
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("no \"email\" claim"));
  }
  SECTION("malformed base64url and JSON") {
    const std::string payload = Encode(claims);
    CHECK_THAT(Refusal("a.b", clock), Catch::Contains("not a compact JWS"));
    CHECK_THAT(Refusal("a.b.c.d", clock), Catch::Contains("not a compact JWS"));
    CHECK_THAT(Refusal("e30=." + payload + ".AAAA", clock),
               Catch::Contains("the header is not base64url"));
    CHECK_THAT(Refusal(common::Base64UrlEncode("{\"alg\":") + "." + payload + ".AAAA", clock),
               Catch::Contains("the header is not a JSON object"));
    CHECK_THAT(Refusal(common::Base64UrlEncode("[1]") + "." + payload + ".AAAA", clock),
               Catch::Contains("the header is not a JSON object"));
    const std::string input = Encode({{"alg", "RS256"}, {"kid", "rs-1"}}) + "." +
                              common::Base64UrlEncode("{\"iss\": oops}");
    CHECK_THAT(Refusal(input + "." + common::Base64UrlEncode(RsaKey().Sign(input)), clock),
               Catch::Contains("the payload is not a JSON object"));
    CHECK_THAT(Refusal(Encode({{"alg", "RS256"}, {"kid", "rs-1"}}) + "." + payload + ".*!*", clock),
               Catch::Contains("the signature is not base64url"));
  }
  SECTION("an oversize token") {
    Json c = claims;
    c["padding"] = std::string(kMaxIdTokenBytes, 'p');
    CHECK_THAT(Refusal(SignedToken(RsaKey(), c), clock), Catch::Contains("over the limit"));
  }
  SECTION("an algorithm the provider does not sign with") {
    IdTokenExpectations expect = Expect();
    expect.allowed_algs = {"RS256"};
    CHECK_THAT(Refusal(SignedToken(EcKey(), claims), clock, expect),
               Catch::Contains("algorithm \"ES256\" is not allowed"));
  }
}

TEST_CASE("a JWKS keeps the signing keys it can use and skips the rest", "[oidc]") {
  Json doc = Json::parse(Jwks({&RsaKey(), &EcKey()}));
  doc["keys"].push_back({{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}});
  doc["keys"].push_back(
      {{"kty", "RSA"}, {"kid", "enc"}, {"use", "enc"}, {"n", "AQAB"}, {"e", "AQAB"}});
  doc["keys"].push_back(
      {{"kty", "EC"}, {"kid", "p384"}, {"crv", "P-384"}, {"x", "AA"}, {"y", "AA"}});
  auto keys = JwkSet::Parse(doc.dump());
  REQUIRE(keys.ok());
  CHECK(keys->size() == 2);
  CHECK(keys->Has("rs-1"));
  CHECK(keys->Has("es-1"));
  CHECK_FALSE(keys->Has("hmac"));

  Json bad_point = EcKey().Jwk();
  bad_point["y"] = bad_point["x"];  // not on the curve
  CHECK_THAT(std::string(JwkSet::Parse(Json({{"keys", {bad_point}}}).dump()).status().message()),
             Catch::Contains("not a valid EC public key"));
  CHECK_FALSE(JwkSet::Parse("{\"keys\": 1}").ok());
  CHECK_FALSE(JwkSet::Parse("not json").ok());
  CHECK_THAT(std::string(JwkSet::Parse(std::string(kMaxJwksBytes + 1, ' ')).status().message()),
             Catch::Contains("over the limit"));
}

TEST_CASE("the allow-list admits listed emails and domains, case-insensitively", "[oidc]") {
  EmailAllowlist list({"Alice@Example.com"}, {"Corp.Example"});
  CHECK(list.Allows("alice@example.com"));
  CHECK(list.Allows("ALICE@EXAMPLE.COM"));
  CHECK(list.Allows("anyone@corp.example"));
  CHECK_FALSE(list.Allows("bob@example.com"));
  CHECK_FALSE(list.Allows("anyone@sub.corp.example"));
  CHECK_FALSE(list.Allows("corp.example"));
  CHECK_FALSE(list.Allows("x@corp.example@evil.example"));
  CHECK_FALSE(EmailAllowlist({}, {}).Allows("alice@example.com"));
}

TEST_CASE("a session cookie verifies until it expires and refuses any change", "[oidc]") {
  FakeClock clock;
  const std::string key(32, 'k');
  SessionCookie sessions(key, 3600s, clock);
  const std::string value = sessions.Issue("alice@example.com", "sub-alice");
  auto email = sessions.Verify(value);
  REQUIRE(email.ok());
  CHECK(*email == "alice@example.com");
  auto who = sessions.VerifySession(value);
  REQUIRE(who.ok());
  CHECK(who->email == "alice@example.com");
  CHECK(who->subject == "sub-alice");

  SECTION("tampered email, subject, expiry or signature") {
    const std::string other = common::Base64UrlEncode("mallory@example.com");
    std::string changed = value;
    const size_t dot1 = changed.find('.');
    const size_t dot2 = changed.find('.', dot1 + 1);
    changed.replace(dot1 + 1, dot2 - dot1 - 1, other);
    CHECK_THAT(std::string(sessions.Verify(changed).status().message()),
               Catch::Contains("signature does not verify"));
    std::string subject = value;
    const size_t dot3 = subject.find('.', dot2 + 1);
    subject.replace(dot2 + 1, dot3 - dot2 - 1, common::Base64UrlEncode("sub-mallory"));
    CHECK_THAT(std::string(sessions.VerifySession(subject).status().message()),
               Catch::Contains("signature does not verify"));
    std::string later = value;
    const size_t dot4 = later.find('.', dot3 + 1);
    later.replace(dot3 + 1, dot4 - dot3 - 1, "99999999999");
    CHECK_FALSE(sessions.Verify(later).ok());
    std::string flipped = value;
    flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
    CHECK_FALSE(sessions.Verify(flipped).ok());
    CHECK_FALSE(sessions.Verify("").ok());
    CHECK_FALSE(sessions.Verify("v1.a.b").ok());
    CHECK_FALSE(sessions.Verify(std::string(2000, 'a')).ok());
  }
  SECTION("another key") {
    SessionCookie other(std::string(32, 'o'), 3600s, clock);
    CHECK_FALSE(other.Verify(value).ok());
  }
  SECTION("expiry") {
    clock.Advance(3599s);
    CHECK(sessions.Verify(value).ok());
    clock.Advance(1s);
    auto expired = sessions.Verify(value);
    REQUIRE_FALSE(expired.ok());
    CHECK(expired.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK_THAT(std::string(expired.status().message()), Catch::Contains("expired"));
    CHECK(std::string(expired.status().message()).find(value) == std::string::npos);
  }
  SECTION("cookie headers") {
    CHECK(sessions.SetCookieHeader(value, true) ==
          "llmbox_session=" + value + "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure");
    CHECK(SessionCookie::ClearCookieHeader(false) ==
          "llmbox_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    CHECK(SessionCookie::StateCookieHeader("st", false) ==
          "llmbox_oidc_state=st; Path=/auth/oidc/; Max-Age=600; HttpOnly; SameSite=Lax");
    CHECK(SessionCookie::ClearStateCookieHeader(true) ==
          "llmbox_oidc_state=; Path=/auth/oidc/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
  }
  SECTION("a key derived from the hub's secret") {
    const std::string derived = SessionCookie::DeriveKey("hub secret");
    CHECK(derived.size() == 32);
    CHECK(derived != SessionCookie::DeriveKey("another secret"));
    SessionCookie from_hub(derived, 60s, clock);
    CHECK(from_hub.Verify(from_hub.Issue("a@example.com", "a")).ok());
    CHECK_FALSE(sessions.Verify(from_hub.Issue("a@example.com", "a")).ok());
  }
}

TEST_CASE("a v1 session cookie (no subject) reads as signed out, even with a good signature",
          "[oidc]") {
  FakeClock clock;
  const std::string key(32, 'k');
  SessionCookie sessions(key, 3600s, clock);
  // A v1 value as the hub issued them before the subject was kept, correctly signed.
  const std::string email_b64 = common::Base64UrlEncode("alice@example.com");
  const std::string expiry = "99999999999";
  const std::string v1 =
      "v1." + email_b64 + "." + expiry + "." +
      common::Base64UrlEncode(common::HmacSha256(key, "v1." + email_b64 + "." + expiry));
  auto refused = sessions.VerifySession(v1);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK_FALSE(sessions.Verify(v1).ok());
  // A v2 value with an empty subject is refused too (the principal needs one).
  const std::string no_subject = sessions.Issue("alice@example.com", "");
  CHECK_FALSE(sessions.VerifySession(no_subject).ok());
}

// An in-memory provider: discovery, JWKS and a token endpoint that answers with `id_token`.
class FakeProvider final : public HttpFetcher {
 public:
  absl::StatusOr<HttpResponse> Get(const std::string& url) override {
    if (url == std::string(kIssuer) + "/.well-known/openid-configuration") {
      return HttpResponse{200, discovery.dump()};
    }
    if (url == std::string(kIssuer) + "/jwks") {
      ++jwks_fetches;
      return HttpResponse{200, jwks};
    }
    return HttpResponse{404, ""};
  }
  absl::StatusOr<HttpResponse> PostForm(const std::string& url, const std::string& form,
                                        const std::vector<std::string>& headers) override {
    if (url != std::string(kIssuer) + "/token") return HttpResponse{404, ""};
    last_form = form;
    last_headers = headers;
    return HttpResponse{200, Json({{"id_token", id_token}, {"token_type", "Bearer"}}).dump()};
  }

  Json discovery = {{"issuer", kIssuer},
                    {"authorization_endpoint", std::string(kIssuer) + "/authorize"},
                    {"token_endpoint", std::string(kIssuer) + "/token"},
                    {"jwks_uri", std::string(kIssuer) + "/jwks"},
                    {"id_token_signing_alg_values_supported", {"RS256", "ES256"}},
                    {"code_challenge_methods_supported", {"S256"}}};
  std::string jwks = Jwks({&RsaKey(), &EcKey()});
  std::string id_token;
  int jwks_fetches = 0;
  std::string last_form;
  std::vector<std::string> last_headers;
};

// One query parameter of a URL (values we generate are base64url, so no decoding needed
// beyond what FormEncode leaves alone).
std::string QueryParam(const std::string& url, const std::string& name) {
  const size_t at = url.find("&" + name + "=") != std::string::npos
                        ? url.find("&" + name + "=") + 1
                        : url.find("?" + name + "=") + 1;
  REQUIRE(at != 0);
  const size_t start = at + name.size() + 1;
  return url.substr(start, url.find('&', start) - start);
}

OidcSettings Settings() {
  OidcSettings settings;
  settings.issuer = kIssuer;
  settings.client_id = kClientId;
  settings.client_secret = "s3cret:with&odd chars";
  settings.redirect_uri = "https://hub.example.com/auth/oidc/callback";
  settings.allowed_domains = {"example.com"};
  return settings;
}

std::unique_ptr<ProviderOidcClient> Client(FakeProvider& provider, FakeClock& clock,
                                           OidcSettings settings = Settings()) {
  auto client = ProviderOidcClient::Create(std::move(settings), provider, clock);
  REQUIRE(client.ok());
  return *std::move(client);
}

// Begins a login and has the provider answer its code with a token signed by `key`.
LoginStart Begin(ProviderOidcClient& client, FakeProvider& provider, FakeClock& clock,
                 const TestKey& key, Json claims = Json()) {
  auto start = client.BeginLogin("/auth/tok", "192.0.2.7");
  REQUIRE(start.ok());
  if (claims.is_null()) claims = Claims(clock, QueryParam(start->authorize_url, "nonce"));
  provider.id_token = SignedToken(key, claims);
  return *start;
}

TEST_CASE("the sign-in flow sends PKCE, state and nonce and returns the verified email", "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  auto client = Client(provider, clock);
  const LoginStart start = Begin(*client, provider, clock, RsaKey());
  const std::string& url = start.authorize_url;
  CHECK(url.rfind(std::string(kIssuer) + "/authorize?response_type=code&client_id=llmbox&", 0) ==
        0);
  CHECK(QueryParam(url, "redirect_uri") ==
        "https%3A%2F%2Fhub.example.com%2Fauth%2Foidc%2Fcallback");
  CHECK(QueryParam(url, "scope") == "openid%20email");
  CHECK(QueryParam(url, "state") == start.state);
  CHECK(QueryParam(url, "code_challenge_method") == "S256");
  CHECK(start.state.size() == 43);

  auto who = client->CompleteLogin(start.state, "the-code");
  REQUIRE(who.ok());
  CHECK(who->email == "alice@example.com");
  CHECK(who->subject == "user-1");
  CHECK(who->return_to == "/auth/tok");

  // The verifier sent to the token endpoint hashes to the challenge sent to the browser.
  const std::string verifier = QueryParam("?" + provider.last_form, "code_verifier");
  CHECK(common::Base64UrlEncode(common::Sha256(verifier)) == QueryParam(url, "code_challenge"));
  CHECK(QueryParam("?" + provider.last_form, "code") == "the-code");
  CHECK(provider.last_form.find("client_secret") == std::string::npos);
  REQUIRE(provider.last_headers.size() == 1);
  CHECK(provider.last_headers[0] ==
        "Authorization: Basic " + std::string("bGxtYm94OnMzY3JldCUzQXdpdGglMjZvZGQlMjBjaGFycw=="));

  SECTION("client_secret_post when that is all the provider supports") {
    provider.discovery["token_endpoint_auth_methods_supported"] = {"client_secret_post"};
    auto post_client = Client(provider, clock);
    const LoginStart again = Begin(*post_client, provider, clock, EcKey());
    REQUIRE(post_client->CompleteLogin(again.state, "code-2").ok());
    CHECK(provider.last_headers.empty());
    CHECK(QueryParam("?" + provider.last_form, "client_secret") == "s3cret%3Awith%26odd%20chars");
  }
}

TEST_CASE("a state is single-use, expires, and a client's oldest is dropped beyond its share",
          "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  OidcSettings settings = Settings();
  settings.max_pending_logins = 5;
  settings.max_pending_logins_per_address = 3;
  auto client = Client(provider, clock, settings);

  const LoginStart start = Begin(*client, provider, clock, RsaKey());
  REQUIRE(client->CompleteLogin(start.state, "code").ok());
  auto replay = client->CompleteLogin(start.state, "code");
  REQUIRE_FALSE(replay.ok());
  CHECK(replay.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK_THAT(std::string(replay.status().message()), Catch::Contains("already used or expired"));

  // A failed completion consumes the state too.
  const LoginStart failed = Begin(*client, provider, clock, RsaKey(), Claims(clock, "wrong"));
  CHECK_FALSE(client->CompleteLogin(failed.state, "code").ok());
  CHECK(client->PendingLogins() == 0);

  const LoginStart late = Begin(*client, provider, clock, RsaKey());
  clock.Advance(600s);
  CHECK_FALSE(client->CompleteLogin(late.state, "code").ok());

  std::vector<std::string> states;
  for (int i = 0; i < 4; ++i) states.push_back(Begin(*client, provider, clock, RsaKey()).state);
  CHECK(client->PendingLogins() == 3);
  CHECK_FALSE(client->CompleteLogin(states[0], "code").ok());  // dropped as the oldest

  CHECK_FALSE(client->BeginLogin("https://evil.example.com/", "192.0.2.7").ok());
  CHECK_FALSE(client->BeginLogin("//evil.example.com/", "192.0.2.7").ok());
  CHECK_FALSE(client->BeginLogin("/\\evil.example.com", "192.0.2.7").ok());
  CHECK_FALSE(client->BeginLogin("/a\r\nSet-Cookie: x", "192.0.2.7").ok());
  CHECK_FALSE(client->CompleteLogin(states[1], std::string(5000, 'c')).ok());
}

TEST_CASE("a flood of unauthenticated sign-ins never pushes out a real one", "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  OidcSettings settings = Settings();
  settings.max_pending_logins = 16;
  settings.max_pending_logins_per_address = 4;
  auto client = Client(provider, clock, settings);
  // A real person starts signing in (from 192.0.2.7)...
  const LoginStart real = Begin(*client, provider, clock, RsaKey());

  // ...one address floods: it only ever replaces its own.
  for (int i = 0; i < 1000; ++i) REQUIRE(client->BeginLogin("/auth/tok", "203.0.113.66").ok());
  CHECK(client->PendingLogins() == 5);

  // Many addresses flood: once the table is full, new sign-ins are refused, none dropped.
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto start = client->BeginLogin("/auth/tok", "198.51.100." + std::to_string(i));
    if (!start.ok()) {
      CHECK(start.status().code() == absl::StatusCode::kResourceExhausted);
      CHECK_THAT(std::string(start.status().message()),
                 Catch::Contains("too many sign-ins are in progress"));
      ++refused;
    }
  }
  CHECK(refused == 200 - 11);
  CHECK(client->PendingLogins() == 16);

  auto who = client->CompleteLogin(real.state, "code");
  INFO(who.status().ToString());
  REQUIRE(who.ok());
  CHECK(who->email == "alice@example.com");

  // The flood's sign-ins expire like any other, and the room comes back.
  clock.Advance(600s);
  CHECK(client->PendingLogins() == 0);
  CHECK(client->BeginLogin("/auth/tok", "198.51.100.250").ok());
}

TEST_CASE("a flood of OAuth sign-ins never stops an activation sign-in", "[oidc][fix-tokens]") {
  FakeClock clock;
  FakeProvider provider;
  OidcSettings settings = Settings();
  settings.max_pending_logins = 16;
  settings.max_pending_logins_per_address = 4;
  auto client = Client(provider, clock, settings);
  // A person with an activation link starts signing in from the attacker's own address too
  // (a shared NAT)...
  auto shared = client->BeginLogin("/auth/tok", "203.0.113.66", LoginPool::kActivation);
  REQUIRE(shared.ok());

  // ...and a few addresses fill the OAuth pool with GET /authorize.
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string address = "198.51.100." + std::to_string(i % 10);
    for (const std::string& from : {address, std::string("203.0.113.66")}) {
      auto start = client->BeginLogin("/authorize/continue?request=x", from, LoginPool::kOAuth);
      if (!start.ok()) {
        CHECK(start.status().code() == absl::StatusCode::kResourceExhausted);
        ++refused;
      }
    }
  }
  CHECK(refused > 0);
  CHECK(client->PendingLogins(LoginPool::kOAuth) == 16);
  CHECK(client->PendingLogins(LoginPool::kActivation) == 1);

  // Activation sign-ins still start and finish, and the earlier one was not pushed out.
  const LoginStart real = Begin(*client, provider, clock, RsaKey());
  CHECK(client->PendingLogins(LoginPool::kActivation) == 2);
  auto who = client->CompleteLogin(real.state, "code");
  INFO(who.status().ToString());
  REQUIRE(who.ok());
  CHECK(who->return_to == "/auth/tok");
  CHECK(client->PendingLogins(LoginPool::kActivation) == 1);

  // The other way round too: once the flood expires, a full activation pool leaves OAuth
  // sign-ins room.
  clock.Advance(600s);
  CHECK(client->PendingLogins() == 0);
  for (int i = 0; i < 40; ++i) {
    (void)client->BeginLogin("/auth/tok", "192.0.2." + std::to_string(i), LoginPool::kActivation);
  }
  CHECK(client->PendingLogins(LoginPool::kActivation) == 16);
  CHECK(client->BeginLogin("/authorize/continue?request=y", "192.0.2.1", LoginPool::kOAuth).ok());
}

TEST_CASE("an unknown kid refetches the JWKS at most once per minute", "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  provider.jwks = Jwks({&RsaKey()});
  auto client = Client(provider, clock);
  REQUIRE(client->CompleteLogin(Begin(*client, provider, clock, RsaKey()).state, "c").ok());
  CHECK(provider.jwks_fetches == 1);
  REQUIRE(client->CompleteLogin(Begin(*client, provider, clock, RsaKey()).state, "c").ok());
  CHECK(provider.jwks_fetches == 1);  // cached

  // The provider rotates to a new key: the first token with its kid refetches at once (the
  // last fetch was over a minute ago)...
  clock.Advance(61s);
  provider.jwks = Jwks({&RsaKey(), &EcKey()});
  REQUIRE(client->CompleteLogin(Begin(*client, provider, clock, EcKey()).state, "c").ok());
  CHECK(provider.jwks_fetches == 2);

  // ...but a stream of tokens with unknown kids costs one fetch a minute at most.
  const TestKey stranger{"unknown", "RS256", RsaKey().pkey};
  for (int i = 0; i < 3; ++i) {
    auto refused = client->CompleteLogin(Begin(*client, provider, clock, stranger).state, "c");
    CHECK_THAT(std::string(refused.status().message()), Catch::Contains("no signing key"));
  }
  CHECK(provider.jwks_fetches == 2);
  clock.Advance(60s);
  CHECK_FALSE(client->CompleteLogin(Begin(*client, provider, clock, stranger).state, "c").ok());
  CHECK(provider.jwks_fetches == 3);
}

TEST_CASE("a verified email outside the allow-list is refused", "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  OidcSettings settings = Settings();
  settings.allowed_domains.clear();
  settings.allowed_emails = {"bob@example.com"};
  auto client = Client(provider, clock, settings);
  auto refused = client->CompleteLogin(Begin(*client, provider, clock, RsaKey()).state, "c");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains("\"alice@example.com\" is not allowed to sign in here"));
}

TEST_CASE("discovery must name the configured issuer and use https off loopback", "[oidc]") {
  FakeClock clock;
  FakeProvider provider;
  SECTION("another issuer") {
    provider.discovery["issuer"] = "https://idp.example.com/";
    auto client = Client(provider, clock);
    auto start = client->BeginLogin("/auth/tok", "192.0.2.7");
    REQUIRE_FALSE(start.ok());
    CHECK_THAT(std::string(start.status().message()),
               Catch::Contains("names itself \"https://idp.example.com/\", not the configured "
                               "issuer"));
  }
  SECTION("a plain-http endpoint") {
    provider.discovery["token_endpoint"] = "http://idp.example.com/token";
    auto start = Client(provider, clock)->BeginLogin("/auth/tok", "192.0.2.7");
    REQUIRE_FALSE(start.ok());
    CHECK_THAT(std::string(start.status().message()), Catch::Contains("token_endpoint"));
    CHECK_THAT(std::string(start.status().message()), Catch::Contains("must be https"));
  }
  SECTION("no S256 PKCE or usable algorithm") {
    provider.discovery["code_challenge_methods_supported"] = {"plain"};
    CHECK_FALSE(Client(provider, clock)->BeginLogin("/auth/tok", "192.0.2.7").ok());
    provider.discovery["code_challenge_methods_supported"] = {"S256"};
    provider.discovery["id_token_signing_alg_values_supported"] = {"HS256", "none"};
    CHECK_THAT(
        std::string(Client(provider, clock)->BeginLogin("/", "192.0.2.7").status().message()),
        Catch::Contains("neither RS256 nor ES256"));
  }
  SECTION("an http issuer off loopback is refused up front") {
    OidcSettings settings = Settings();
    settings.issuer = "http://idp.example.com";
    CHECK_FALSE(ProviderOidcClient::Create(settings, provider, clock).ok());
    settings.issuer = "http://127.0.0.1:9000";
    CHECK(ProviderOidcClient::Create(settings, provider, clock).ok());
  }
}

TEST_CASE("BeginLogin accepts a return_to with a query (the authorize page's continue URL)",
          "[oidc][authorize]") {
  FakeClock clock;
  FakeProvider provider;
  auto client = Client(provider, clock);
  const std::string return_to = "/authorize/continue?request=" + std::string(43, 'A');
  auto start = client->BeginLogin(return_to, "192.0.2.7");
  REQUIRE(start.ok());
  provider.id_token =
      SignedToken(RsaKey(), Claims(clock, QueryParam(start->authorize_url, "nonce")));
  auto who = client->CompleteLogin(start->state, "the-code");
  REQUIRE(who.ok());
  CHECK(who->return_to == return_to);
  CHECK(who->subject == "user-1");
}

}  // namespace
}  // namespace llmbox::hub::activation
