#include "tests/support/test_pki.h"

#include <catch2/catch.hpp>

namespace llmbox::testing {

common::TlsPems IssueForTest(const common::CertifiedKey& ca, const std::string& uri,
                             const std::string& dns_name) {
  auto key = common::MakePrivateKey();
  REQUIRE(key.ok());
  auto csr = common::MakeCsr(*key, dns_name);
  REQUIRE(csr.ok());
  auto cert = common::SignCsr(ca, *csr, {.uri = uri, .dns = {dns_name}, .ips = {"127.0.0.1"}},
                              absl::Hours(1));
  REQUIRE(cert.ok());
  return {*cert, *key, ca.cert_pem};
}

}  // namespace llmbox::testing
