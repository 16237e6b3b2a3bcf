#include "common/pki.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/absl_compat.h"
#include "common/secrets.h"
#include "common/status.h"

namespace llmbox::common {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Names = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

void FreeExtensions(STACK_OF(X509_EXTENSION) * extensions) {
  sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
}
using Extensions =
    std::unique_ptr<STACK_OF(X509_EXTENSION), Deleter<STACK_OF(X509_EXTENSION), FreeExtensions>>;

// The OpenSSL error queue as text, emptied.
std::string OpenSslError() {
  std::string out;
  unsigned long code;
  while ((code = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[nodiscard]] absl::Status Failed(std::string_view what) {
  return absl::InternalError(absl::StrCat("pki: ", AsAbsl(what), ": ", OpenSslError()));
}

Bio MemoryBio(std::string_view pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string BioText(BIO* bio) {
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  return std::string(mem->data, mem->length);
}

[[nodiscard]] absl::StatusOr<Key> ReadKey(std::string_view pem) {
  Bio bio = MemoryBio(pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError("pki: the private key is not readable PEM");
  }
  return key;
}

[[nodiscard]] absl::StatusOr<Cert> ReadCert(std::string_view pem) {
  Bio bio = MemoryBio(pem);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("pki: the certificate is not readable PEM");
  }
  return cert;
}

struct VerifiedCsr {
  Req req;
  Key key;  // its public key
};

// A PEM CSR whose signature verifies with its own key.
[[nodiscard]] absl::StatusOr<VerifiedCsr> ReadCsr(std::string_view csr_pem) {
  Bio bio = MemoryBio(csr_pem);
  Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError("pki: the CSR is not readable PEM");
  }
  Key key(X509_REQ_get_pubkey(req.get()));
  if (!key || X509_REQ_verify(req.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("pki: the CSR's signature does not verify");
  }
  return VerifiedCsr{std::move(req), std::move(key)};
}

[[nodiscard]] absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return Failed("writing a key");
  }
  return BioText(bio.get());
}

[[nodiscard]] absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return Failed("writing a certificate");
  return BioText(bio.get());
}

[[nodiscard]] absl::Status SetName(X509_NAME* name, std::string_view common_name) {
  const std::string cn(common_name);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0)) {
    return Failed("setting the common name");
  }
  return absl::OkStatus();
}

// Serial: 128 random bits.
[[nodiscard]] absl::Status SetSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return Failed("making a serial number");
  bytes[0] &= 0x7f;  // positive
  std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) {
    return Failed("setting the serial number");
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status SetValidity(X509* cert, absl::Duration validity,
                                       std::optional<absl::Time> start = std::nullopt) {
  // Backdated a minute against clock skew between hosts.
  if (start) {
    time_t from = absl::ToTimeT(*start);
    if (!X509_time_adj_ex(X509_getm_notBefore(cert), 0, -60, &from) ||
        !X509_time_adj_ex(X509_getm_notAfter(cert), 0, absl::ToInt64Seconds(validity), &from)) {
      return Failed("setting the validity");
    }
    return absl::OkStatus();
  }
  if (!X509_gmtime_adj(X509_getm_notBefore(cert), -60) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert), absl::ToInt64Seconds(validity))) {
    return Failed("setting the validity");
  }
  return absl::OkStatus();
}

[[nodiscard]] absl::Status AddExtension(X509* cert, X509* issuer, int nid,
                                        const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Failed(absl::StrCat("making extension ", OBJ_nid2sn(nid)));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return Failed("adding an extension");
  return absl::OkStatus();
}

absl::Time AsnTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

}  // namespace

[[nodiscard]] absl::StatusOr<std::string> MakePrivateKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return Failed("making an EC P-256 key");
  return KeyPem(key.get());
}

[[nodiscard]] absl::StatusOr<CertifiedKey> MakeCa(std::string_view common_name,
                                                  absl::Duration validity) {
  LLMBOX_ASSIGN_OR_RETURN(std::string key_pem, MakePrivateKey());
  LLMBOX_ASSIGN_OR_RETURN(Key key, ReadKey(key_pem));
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  LLMBOX_RETURN_IF_ERROR(SetSerial(cert.get()));
  LLMBOX_RETURN_IF_ERROR(SetValidity(cert.get(), validity));
  LLMBOX_RETURN_IF_ERROR(SetName(X509_get_subject_name(cert.get()), common_name));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  LLMBOX_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  LLMBOX_RETURN_IF_ERROR(
      AddExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  LLMBOX_RETURN_IF_ERROR(AddExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return Failed("signing the CA");
  LLMBOX_ASSIGN_OR_RETURN(std::string cert_pem, CertPem(cert.get()));
  return CertifiedKey{std::move(key_pem), std::move(cert_pem)};
}

[[nodiscard]] absl::StatusOr<std::string> MakeCsr(std::string_view key_pem,
                                                  std::string_view common_name) {
  LLMBOX_ASSIGN_OR_RETURN(Key key, ReadKey(key_pem));
  Req req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  LLMBOX_RETURN_IF_ERROR(SetName(X509_REQ_get_subject_name(req.get()), common_name));
  X509_REQ_set_pubkey(req.get(), key.get());
  if (!X509_REQ_sign(req.get(), key.get(), EVP_sha256())) return Failed("signing the CSR");
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(bio.get(), req.get())) return Failed("writing the CSR");
  return BioText(bio.get());
}

[[nodiscard]] absl::StatusOr<std::string> SignCsr(const CertifiedKey& ca, std::string_view csr_pem,
                                                  const CertIdentity& identity,
                                                  absl::Duration validity,
                                                  std::optional<absl::Time> start) {
  if (identity.uri.empty()) {
    return absl::InvalidArgumentError("pki: a certificate needs a URI identity");
  }
  LLMBOX_ASSIGN_OR_RETURN(Key ca_key, ReadKey(ca.key_pem));
  LLMBOX_ASSIGN_OR_RETURN(Cert ca_cert, ReadCert(ca.cert_pem));
  LLMBOX_ASSIGN_OR_RETURN(VerifiedCsr csr, ReadCsr(csr_pem));
  Req& req = csr.req;
  Key& req_key = csr.key;
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  LLMBOX_RETURN_IF_ERROR(SetSerial(cert.get()));
  LLMBOX_RETURN_IF_ERROR(SetValidity(cert.get(), validity, start));
  X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(req.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  X509_set_pubkey(cert.get(), req_key.get());
  std::string san = "URI:" + identity.uri;
  for (const auto& dns : identity.dns) san += ",DNS:" + dns;
  for (const auto& ip : identity.ips) san += ",IP:" + ip;
  LLMBOX_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_subject_alt_name, san));
  LLMBOX_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  LLMBOX_RETURN_IF_ERROR(AddExtension(cert.get(), ca_cert.get(), NID_key_usage,
                                      "critical,digitalSignature,keyAgreement"));
  LLMBOX_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  LLMBOX_RETURN_IF_ERROR(
      AddExtension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always"));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) return Failed("signing a certificate");
  return CertPem(cert.get());
}

[[nodiscard]] absl::StatusOr<CsrInfo> InspectCsr(std::string_view csr_pem) {
  LLMBOX_ASSIGN_OR_RETURN(VerifiedCsr csr, ReadCsr(csr_pem));
  Req& req = csr.req;
  Key& key = csr.key;
  CsrInfo info;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req.get()), NID_commonName, cn,
                                sizeof(cn)) > 0) {
    info.common_name = cn;
  }
  Extensions extensions(X509_REQ_get_extensions(req.get()));
  const int index =
      extensions ? X509v3_get_ext_by_NID(extensions.get(), NID_subject_alt_name, -1) : -1;
  if (index >= 0) {
    Names names(
        static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(X509v3_get_ext(extensions.get(), index))));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
      if (name->type == GEN_URI) {
        const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
        info.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                               ASN1_STRING_length(uri));
      }
    }
  }
  ERR_clear_error();
  if (EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC) {
    char group[64] = {};
    size_t length = 0;
    EVP_PKEY_get_utf8_string_param(key.get(), "group", group, sizeof(group), &length);
    info.key_type =
        std::string_view(group) == "prime256v1" ? "EC P-256" : absl::StrCat("EC ", group);
  } else {
    info.key_type = absl::StrCat(OBJ_nid2sn(EVP_PKEY_get_base_id(key.get())), " ",
                                 EVP_PKEY_get_bits(key.get()));
  }
  return info;
}

[[nodiscard]] absl::StatusOr<CertInfo> InspectCert(std::string_view cert_pem) {
  LLMBOX_ASSIGN_OR_RETURN(Cert cert, ReadCert(cert_pem));
  CertInfo info;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof(cn)) >
      0) {
    info.common_name = cn;
  }
  Names names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_URI) {
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      info.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                             ASN1_STRING_length(uri));
    }
  }
  info.not_before = AsnTime(X509_get0_notBefore(cert.get()));
  info.not_after = AsnTime(X509_get0_notAfter(cert.get()));
  info.is_ca = X509_check_ca(cert.get()) != 0;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!X509_digest(cert.get(), EVP_sha256(), digest, &len)) return Failed("hashing a certificate");
  info.sha256_fingerprint = HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
  unsigned char* spki = nullptr;
  const int spki_len = i2d_PUBKEY(X509_get0_pubkey(cert.get()), &spki);
  if (spki_len <= 0) return Failed("encoding a certificate's public key");
  const bool hashed =
      EVP_Digest(spki, static_cast<size_t>(spki_len), digest, &len, EVP_sha256(), nullptr) == 1;
  OPENSSL_free(spki);
  if (!hashed) return Failed("hashing a certificate's public key");
  info.public_key_sha256 = HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
  return info;
}

}  // namespace llmbox::common
