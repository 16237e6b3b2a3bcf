#include "common/pki.h"

#include <string>

#include <catch2/catch.hpp>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace llmbox::common {
namespace {

// Verifies `leaf_pem` against `ca_pem` with OpenSSL's own chain verification.
bool Verifies(const std::string& leaf_pem, const std::string& ca_pem) {
  auto read = [](const std::string& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    return cert;
  };
  X509* leaf = read(leaf_pem);
  X509* ca = read(ca_pem);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca);
  return ok;
}

TEST_CASE("a CA signs a CSR into a certificate whose identity is the given URI", "[pki]") {
  auto ca = MakeCa("llmbox test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  auto ca_info = InspectCert(ca->cert_pem);
  REQUIRE(ca_info.ok());
  CHECK(ca_info->is_ca);
  CHECK(ca_info->common_name == "llmbox test CA");

  auto key = MakePrivateKey();
  REQUIRE(key.ok());
  auto csr = MakeCsr(*key, "spoke-1");
  REQUIRE(csr.ok());
  auto cert = SignCsr(
      *ca, *csr, {.uri = "spiffe://llmbox/spoke/spoke-1", .dns = {"spoke-1"}, .ips = {"127.0.0.1"}},
      absl::Hours(2));
  REQUIRE(cert.ok());
  auto info = InspectCert(*cert);
  REQUIRE(info.ok());
  CHECK(info->common_name == "spoke-1");
  CHECK(info->uris == std::vector<std::string>{"spiffe://llmbox/spoke/spoke-1"});
  CHECK_FALSE(info->is_ca);
  CHECK(info->sha256_fingerprint.size() == 64);
  CHECK(info->not_after > absl::Now() + absl::Minutes(119));
  CHECK(info->not_after < absl::Now() + absl::Minutes(121));
  CHECK(Verifies(*cert, ca->cert_pem));

  auto other = MakeCa("another CA", absl::Hours(1));
  REQUIRE(other.ok());
  CHECK_FALSE(Verifies(*cert, other->cert_pem));
}

TEST_CASE("an unreadable or tampered CSR is refused", "[pki]") {
  auto ca = MakeCa("llmbox test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  auto garbage = SignCsr(*ca, "not a csr", {.uri = "spiffe://llmbox/x"}, absl::Hours(1));
  CHECK(absl::IsInvalidArgument(garbage.status()));
  CHECK(garbage.status().message() == "pki: the CSR is not readable PEM");

  auto key = MakePrivateKey();
  REQUIRE(key.ok());
  auto csr = MakeCsr(*key, "spoke-1");
  REQUIRE(csr.ok());
  CHECK(absl::IsInvalidArgument(SignCsr(*ca, *csr, {}, absl::Hours(1)).status()));
  // Flip one character inside the base64 body: either unreadable or a bad signature.
  std::string tampered = *csr;
  const size_t at = tampered.size() / 2;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  CHECK_FALSE(SignCsr(*ca, tampered, {.uri = "spiffe://llmbox/x"}, absl::Hours(1)).ok());
}

}  // namespace
}  // namespace llmbox::common
