#include "common/secrets.h"

#include <set>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::common {
namespace {

TEST_CASE("a 32-byte token is 43 base64url characters and decodes back to 32 bytes") {
  absl::StatusOr<std::string> token = RandomToken(32);
  REQUIRE(token.ok());
  REQUIRE(token->size() == 43);
  REQUIRE(token->find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
  absl::StatusOr<std::string> raw = Base64UrlDecode(*token);
  REQUIRE(raw.ok());
  REQUIRE(raw->size() == 32);
}

TEST_CASE("random tokens do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::string> token = RandomToken(16);
    REQUIRE(token.ok());
    REQUIRE(seen.insert(*token).second);
  }
}

TEST_CASE("a token size of zero or above 1024 bytes is refused") {
  REQUIRE(RandomToken(0).status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(RandomToken(1025).status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(RandomToken(1024).ok());
}

TEST_CASE("base64url matches the RFC 4648 test vectors without padding") {
  // RFC 4648 §10, with '=' padding removed.
  REQUIRE(Base64UrlEncode("") == "");
  REQUIRE(Base64UrlEncode("f") == "Zg");
  REQUIRE(Base64UrlEncode("fo") == "Zm8");
  REQUIRE(Base64UrlEncode("foo") == "Zm9v");
  REQUIRE(Base64UrlEncode("foob") == "Zm9vYg");
  REQUIRE(Base64UrlEncode("fooba") == "Zm9vYmE");
  REQUIRE(Base64UrlEncode("foobar") == "Zm9vYmFy");
  // The two characters where base64url differs from base64.
  REQUIRE(Base64UrlEncode(std::string("\xfb\xff", 2)) == "-_8");
  REQUIRE(Base64UrlDecode("-_8").value() == std::string("\xfb\xff", 2));
}

TEST_CASE("base64url decoding refuses padding, foreign characters and impossible lengths") {
  REQUIRE_FALSE(Base64UrlDecode("Zg==").ok());
  REQUIRE_FALSE(Base64UrlDecode("Zm+v").ok());
  REQUIRE_FALSE(Base64UrlDecode("Zm9 v").ok());
  REQUIRE_FALSE(Base64UrlDecode("Zm9vY").ok());
  // "Zh" carries non-zero bits past the last byte: another spelling of "Zg".
  REQUIRE_FALSE(Base64UrlDecode("Zh").ok());
}

TEST_CASE("SHA-256 and HMAC-SHA-256 match published test vectors") {
  REQUIRE(Sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  REQUIRE(Sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  REQUIRE(Sha256("abc").size() == 32);
  // RFC 4231 test case 2.
  REQUIRE(HmacSha256Hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  REQUIRE(HmacSha256("Jefe", "x").size() == 32);
}

TEST_CASE("constant-time comparison agrees with ordinary equality") {
  REQUIRE(ConstantTimeEquals("", ""));
  REQUIRE(ConstantTimeEquals("secret-token", "secret-token"));
  REQUIRE_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  REQUIRE_FALSE(ConstantTimeEquals("secret-token", "secret-toke"));
  REQUIRE_FALSE(ConstantTimeEquals("a", ""));
  REQUIRE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  REQUIRE_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST_CASE("hex encoding is lowercase and two characters per byte") {
  REQUIRE(HexEncode(std::string("\x00\x0f\xab\xff", 4)) == "000fabff");
}

TEST_CASE("a bearer credential is what follows the Bearer scheme in any case") {
  CHECK(BearerCredential("Bearer abc") == "abc");
  CHECK(BearerCredential("bEaReR abc def") == "abc def");
  CHECK(BearerCredential("Bearer  abc") == " abc");  // taken as is: it will not match
  CHECK_FALSE(BearerCredential("Bearer ").has_value());
  CHECK_FALSE(BearerCredential("Bearer").has_value());
  CHECK_FALSE(BearerCredential("Basic abc").has_value());
  CHECK_FALSE(BearerCredential("Bearerabc").has_value());
  CHECK_FALSE(BearerCredential("").has_value());
}

}  // namespace
}  // namespace llmbox::common
