// common/pki.h
//
// The cluster's small PKI on OpenSSL 3: EC P-256 keys, a self-signed cluster CA, CSRs, and
// certificates whose identity is one URI SAN (spiffe://llmbox/hub, spiffe://llmbox/spoke/<name>).
// The hub signs spoke CSRs at enrollment; tests make their own CAs with it.
//
//   LLMBOX_ASSIGN_OR_RETURN(CertifiedKey ca, MakeCa("llmbox cluster CA", absl::Hours(24 * 3650)));
//   LLMBOX_ASSIGN_OR_RETURN(std::string key, MakePrivateKey());
//   LLMBOX_ASSIGN_OR_RETURN(std::string csr, MakeCsr(key, "spoke-1"));
//   LLMBOX_ASSIGN_OR_RETURN(std::string cert,
//       SignCsr(ca, csr, {.uri = "spiffe://llmbox/spoke/spoke-1", .dns = {"spoke-1"}},
//               absl::Hours(24 * 30)));
//
// Everything is PEM text. Keys are secrets: never log them. Thread-safe; no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace llmbox::common {

struct CertifiedKey {
  std::string key_pem;   // PKCS#8 private key
  std::string cert_pem;  // its certificate
};

struct CertIdentity {
  std::string uri;               // the one URI SAN (the identity that is authorized)
  std::vector<std::string> dns;  // DNS SANs (what clients dial)
  std::vector<std::string> ips;  // IP SANs
};

struct CertInfo {
  std::string common_name;
  std::vector<std::string> uris;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  std::string sha256_fingerprint;  // hex of the DER
  // Hex SHA-256 of the DER SubjectPublicKeyInfo: the same for every certificate of one key
  // (what spokes pin the hub by, so the hub can renew its certificate without telling them).
  std::string public_key_sha256;
};

// A new EC P-256 private key.
[[nodiscard]] absl::StatusOr<std::string> MakePrivateKey();

// A self-signed CA certificate (and its key) valid from now for `validity`.
[[nodiscard]] absl::StatusOr<CertifiedKey> MakeCa(std::string_view common_name,
                                                  absl::Duration validity);

// A certificate signing request for `key_pem` with the given common name.
[[nodiscard]] absl::StatusOr<std::string> MakeCsr(std::string_view key_pem,
                                                  std::string_view common_name);

// Signs `csr_pem` with `ca`: the CSR's key and common name, the identity given here (never
// the CSR's own extensions), usable for TLS server and client auth, valid for `validity` from
// `start` (default: now; backdated a minute against clock skew).
// InvalidArgument for an unreadable CSR or a bad signature on it.
[[nodiscard]] absl::StatusOr<std::string> SignCsr(const CertifiedKey& ca, std::string_view csr_pem,
                                                  const CertIdentity& identity,
                                                  absl::Duration validity,
                                                  std::optional<absl::Time> start = std::nullopt);

struct CsrInfo {
  std::string common_name;
  std::vector<std::string> uris;  // URI SANs the CSR asks for (in its extension request)
  std::string key_type;           // "EC P-256", "EC secp384r1", "RSA 2048", ...
};

// Reads a PEM CSR and checks its signature. InvalidArgument for an unreadable CSR or a bad
// signature.
[[nodiscard]] absl::StatusOr<CsrInfo> InspectCsr(std::string_view csr_pem);

// Reads a PEM certificate.
[[nodiscard]] absl::StatusOr<CertInfo> InspectCert(std::string_view cert_pem);

}  // namespace llmbox::common
