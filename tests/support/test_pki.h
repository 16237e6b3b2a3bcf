// tests/support/test_pki.h
//
// Test credentials from a real CA (common/pki): a key and a certificate with a URI identity,
// usable for 127.0.0.1 and `dns_name`.
//
//   auto ca = common::MakeCa("test", absl::Hours(1));
//   common::TlsPems hub = IssueForTest(*ca, std::string(common::kHubIdentity), "spoke-1");
#pragma once

#include <string>

#include "common/grpc_tls.h"
#include "common/pki.h"

namespace llmbox::testing {

// Fails the current test when OpenSSL fails.
common::TlsPems IssueForTest(const common::CertifiedKey& ca, const std::string& uri,
                             const std::string& dns_name);

}  // namespace llmbox::testing
