// HijackedStream over TLS on loopback, against a small TLS server standing in for the engine's
// upgraded console connection (the real engine is in tests/integration, [docker-tls]). Here:
// both directions at once from two threads, the half-close, Close waking a reader, and the
// host check on the engine's certificate.

#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "common/pki.h"
#include "spoke/docker/hijack.h"
#include "tests/support/console.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::spoke::docker {
namespace {

using namespace std::chrono_literals;
using testing::ReadUntil;
using testing::StreamEnds;

// Accepts one TLS connection (the client must present a certificate from `client_ca_pem`),
// reads the request head, answers "101 UPGRADED" followed by "hello\n", then echoes every
// chunk it reads as "echo:<chunk>"; at the client's close_notify it sends "bye\n" and closes.
class FakeTlsEngine {
 public:
  FakeTlsEngine(const common::TlsPems& server, const std::string& client_ca_pem) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_ != nullptr);
    BIO* cert_bio =
        BIO_new_mem_buf(server.cert_pem.data(), static_cast<int>(server.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
    BIO_free(cert_bio);
    BIO* key_bio = BIO_new_mem_buf(server.key_pem.data(), static_cast<int>(server.key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
    BIO_free(key_bio);
    BIO* ca_bio = BIO_new_mem_buf(client_ca_pem.data(), static_cast<int>(client_ca_pem.size()));
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    BIO_free(ca_bio);
    REQUIRE((cert != nullptr && key != nullptr && ca != nullptr));
    REQUIRE(SSL_CTX_use_certificate(ctx_, cert) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_, key) == 1);
    REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca) == 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(ca);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);

    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listen_fd_, 1) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeTlsEngine() {
    thread_.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }

  int port() const { return port_; }

 private:
  void Serve() {
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const int n = SSL_read(ssl, buf, sizeof(buf));
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      Send(ssl, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello\n");
      for (;;) {
        const int n = SSL_read(ssl, buf, sizeof(buf));
        if (n > 0) {
          Send(ssl, "echo:" + std::string(buf, static_cast<size_t>(n)));
          continue;
        }
        if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN) {
          Send(ssl, "bye\n");
          SSL_shutdown(ssl);
        }
        break;
      }
    }
    SSL_free(ssl);
    ::close(fd);
  }

  static void Send(SSL* ssl, const std::string& data) {
    SSL_write(ssl, data.data(), static_cast<int>(data.size()));
  }

  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A CA, an engine certificate from it (for 127.0.0.1 unless `engine_ips` says otherwise) and a
// client pair from it, written where HijackTarget reads them.
struct Pki {
  explicit Pki(std::vector<std::string> engine_ips = {"127.0.0.1"}) : dir("hijack-tls") {
    auto made = common::MakeCa("hijack test CA", absl::Hours(1));
    REQUIRE(made.ok());
    ca = *made;
    auto key = common::MakePrivateKey();
    REQUIRE(key.ok());
    auto csr = common::MakeCsr(*key, "engine");
    REQUIRE(csr.ok());
    auto cert = common::SignCsr(
        ca, *csr, {.uri = "spiffe://llmbox/engine", .dns = {"engine.example"}, .ips = engine_ips},
        absl::Hours(1));
    REQUIRE(cert.ok());
    engine = {*cert, *key, ca.cert_pem};
    client = testing::IssueForTest(ca, "spiffe://llmbox/spoke/test", "spoke");
  }

  HijackTarget Target(int port) const {
    return {.host = "127.0.0.1",
            .port = port,
            .tls = true,
            .tls_ca_file = dir.Write("ca.pem", ca.cert_pem),
            .tls_cert_file = dir.Write("client-cert.pem", client.cert_pem),
            .tls_key_file = dir.Write("client-key.pem", client.key_pem),
            .name = "https://127.0.0.1:" + std::to_string(port)};
  }

  testing::ScratchDir dir;
  common::CertifiedKey ca;
  common::TlsPems engine;
  common::TlsPems client;
};

TEST_CASE("a TLS console carries stdin while another thread reads, and a half-close ends stdin",
          "[docker]") {
  Pki pki;
  FakeTlsEngine engine(pki.engine, pki.ca.cert_pem);
  auto console = HijackedStream::Open(pki.Target(engine.port()), "/v1.41/containers/c/attach", "",
                                      /*tty=*/true, 10s);
  REQUIRE(console.ok());
  CHECK(ReadUntil(**console, "hello\n") == "hello\n");

  std::string echoed;
  std::thread reader([&] { echoed = ReadUntil(**console, "echo:two"); });
  REQUIRE((*console)->Write("one").ok());
  REQUIRE((*console)->Write("two").ok());
  reader.join();
  CHECK(echoed.find("echo:one") != std::string::npos);
  CHECK(echoed.find("echo:two") != std::string::npos);

  REQUIRE((*console)->CloseStdin().ok());
  CHECK(ReadUntil(**console, "bye\n").find("bye\n") != std::string::npos);
  CHECK(StreamEnds(**console));
}

TEST_CASE("Close from another thread wakes a reader waiting on a TLS console", "[docker]") {
  Pki pki;
  FakeTlsEngine engine(pki.engine, pki.ca.cert_pem);
  auto console = HijackedStream::Open(pki.Target(engine.port()), "/x", "", /*tty=*/true, 10s);
  REQUIRE(console.ok());
  CHECK(ReadUntil(**console, "hello\n") == "hello\n");
  absl::Status read_status;
  // Without the wake-up this read would wait ten minutes (ctest's timeout fails it first).
  std::thread reader([&] { read_status = (*console)->Read(std::chrono::minutes(10)).status(); });
  (*console)->Close();
  reader.join();
  CHECK(absl::IsOutOfRange(read_status));
  CHECK_FALSE((*console)->Write("after close").ok());
}

TEST_CASE("a TLS console refuses an engine certificate that is not for the host, naming it",
          "[docker]") {
  Pki pki(std::vector<std::string>{});  // the engine certificate names only engine.example
  FakeTlsEngine engine(pki.engine, pki.ca.cert_pem);
  auto console = HijackedStream::Open(pki.Target(engine.port()), "/x", "", /*tty=*/true, 10s);
  INFO(console.status());
  CHECK(absl::IsUnavailable(console.status()));
  CHECK(console.status().message().find("TLS handshake with 127.0.0.1 failed") !=
        std::string::npos);
  CHECK(console.status().message().find("the engine's certificate is not for 127.0.0.1") !=
        std::string::npos);
}

}  // namespace
}  // namespace llmbox::spoke::docker
