#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/pki.h"
#include "hub/http/server.h"
#include "tests/support/log_capture.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::hub::http {
namespace {

using namespace std::chrono_literals;

// Every wait in these tests is bounded by this; passing tests never come near it.
constexpr auto kPatience = 10s;

// Connects to 127.0.0.1:port; -1 when the connection is refused.
int Dial(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

// A deliberately dumb HTTP/1.1 client over a plain socket, so tests control every byte.
class Client {
 public:
  explicit Client(int port) : fd_(Dial(port)) { REQUIRE(fd_ >= 0); }
  ~Client() { Close(); }

  void Send(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Status line and headers.
  ClientResponse ReadHead() {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) REQUIRE(Fill());
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    ClientResponse response;
    REQUIRE(head.rfind("HTTP/1.1 ", 0) == 0);
    response.status = std::stoi(head.substr(9, 3));
    std::size_t line = head.find("\r\n");
    while (line != std::string::npos) {
      const std::size_t next = head.find("\r\n", line + 2);
      const std::string field = head.substr(line + 2, next - line - 2);
      const std::size_t colon = field.find(':');
      REQUIRE(colon != std::string::npos);
      std::string name = field.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      response.headers[name] = field.substr(field.find_first_not_of(' ', colon + 1));
      line = next;
    }
    return response;
  }

  // One chunk of a chunked body; "" for the last one.
  std::string ReadChunk() {
    const std::string size_line = ReadLine();
    const std::size_t size = std::stoul(size_line, nullptr, 16);
    if (size == 0) {
      REQUIRE(ReadLine().empty());
      return "";
    }
    while (buffer_.size() < size + 2) REQUIRE(Fill());
    std::string chunk = buffer_.substr(0, size);
    REQUIRE(buffer_.substr(size, 2) == "\r\n");
    buffer_.erase(0, size + 2);
    return chunk;
  }

  ClientResponse ReadResponse() {
    ClientResponse response = ReadHead();
    if (response.headers.count("content-length")) {
      const std::size_t size = std::stoul(response.headers["content-length"]);
      while (buffer_.size() < size) REQUIRE(Fill());
      response.body = buffer_.substr(0, size);
      buffer_.erase(0, size);
    } else if (response.headers["transfer-encoding"] == "chunked") {
      for (std::string chunk = ReadChunk(); !chunk.empty(); chunk = ReadChunk()) {
        response.body += chunk;
      }
    } else {
      while (Fill()) {
      }
      response.body = std::move(buffer_);
      buffer_.clear();
    }
    return response;
  }

  // True when the server closed the connection (EOF or reset) with nothing more to read.
  bool ReadsEof() { return buffer_.empty() && !Fill(); }

 private:
  std::string ReadLine() {
    std::size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) REQUIRE(Fill());
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }

  // Reads more; false on EOF or reset. Fails the test after kPatience without bytes.
  bool Fill() {
    pollfd waiting{.fd = fd_, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&waiting, 1, static_cast<int>(kPatience / 1ms));
    REQUIRE(ready == 1);
    char chunk[4096];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
};

ServerOptions TestOptions() {
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.io_threads = 2;
  options.worker_threads = 4;
  return options;
}

std::unique_ptr<HttpServer> StartServer(ServerOptions options, Handler handler) {
  auto server = std::make_unique<HttpServer>(std::move(options), std::move(handler));
  const absl::Status started = server->Start();
  INFO(started.ToString());
  REQUIRE(started.ok());
  REQUIRE(server->BoundPort() > 0);
  return server;
}

Handler Answer(int status, std::string body) {
  return [status, body](Request, std::shared_ptr<Responder> out) {
    out->Respond({.status = status, .headers = {{"Content-Type", "text/plain"}}, .body = body});
  };
}

// Waits up to kPatience for `future`; fails the test instead of hanging.
template <typename T>
T Await(std::future<T>& future) {
  REQUIRE(future.wait_for(kPatience) == std::future_status::ready);
  return future.get();
}

TEST_CASE("Request::Header finds a header whatever the case of the name", "[http]") {
  Request request;
  request.headers = {{"content-type", "text/plain"}, {"x-a", "1"}, {"x-a", "2"}};
  CHECK(request.Header("Content-Type") == "text/plain");
  CHECK(request.Header("X-A") == "1");
  CHECK_FALSE(request.Header("accept").has_value());
}

TEST_CASE("a GET and a POST reach the handler with method, path, query, headers and body",
          "[http]") {
  std::mutex mu;
  std::vector<Request> seen;
  auto server = StartServer(TestOptions(), [&](Request request, std::shared_ptr<Responder> out) {
    const std::string echo = request.method + " " + request.path + " " + request.query + " " +
                             std::string(request.Header("X-Test").value_or("-")) + " " +
                             request.body;
    {
      std::lock_guard lock(mu);
      seen.push_back(std::move(request));
    }
    CHECK(out->Respond({.status = 201, .headers = {{"X-Reply", "yes"}}, .body = echo}));
  });
  Client client(server->BoundPort());

  client.Send("GET /items/7?a=1&b=x%20y HTTP/1.1\r\nHost: t\r\nX-Test: hello\r\n\r\n");
  ClientResponse get = client.ReadResponse();
  CHECK(get.status == 201);
  CHECK(get.body == "GET /items/7 a=1&b=x%20y hello ");
  CHECK(get.headers["x-reply"] == "yes");
  CHECK(get.headers["server"] == "llmbox");

  client.Send(
      "POST /submit HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Content-Length: 9\r\n\r\n{\"k\":\"v\"}");
  ClientResponse post = client.ReadResponse();
  CHECK(post.status == 201);
  CHECK(post.body == "POST /submit  - {\"k\":\"v\"}");

  std::lock_guard lock(mu);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].target == "/items/7?a=1&b=x%20y");
  CHECK(seen[0].remote_address == "127.0.0.1");
  CHECK_FALSE(seen[0].tls);
  CHECK(seen[1].headers ==
        Headers{{"host", "t"}, {"content-type", "application/json"}, {"content-length", "9"}});
}

TEST_CASE("two requests on one keep-alive connection are both answered", "[http]") {
  std::atomic<int> calls{0};
  auto server = StartServer(TestOptions(), [&](Request request, std::shared_ptr<Responder> out) {
    out->Respond({.body = request.path + " " + std::to_string(++calls)});
  });
  Client client(server->BoundPort());
  client.Send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
  ClientResponse first = client.ReadResponse();
  CHECK(first.body == "/one 1");
  CHECK(first.headers.count("connection") == 0);
  client.Send("GET /two HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadResponse().body == "/two 2");
}

TEST_CASE("pipelined requests are answered in order", "[http]") {
  auto server = StartServer(TestOptions(), [](Request request, std::shared_ptr<Responder> out) {
    out->Respond({.body = request.path});
  });
  Client client(server->BoundPort());
  client.Send(
      "GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n"
      "xGET /c HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadResponse().body == "/a");
  CHECK(client.ReadResponse().body == "/b");
  CHECK(client.ReadResponse().body == "/c");
}

TEST_CASE("a client that expects 100-continue gets it before sending the body", "[http]") {
  auto server = StartServer(TestOptions(), [](Request request, std::shared_ptr<Responder> out) {
    out->Respond({.body = "got " + request.body});
  });
  Client client(server->BoundPort());
  client.Send("POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  CHECK(client.ReadHead().status == 100);
  client.Send("hello");
  CHECK(client.ReadResponse().body == "got hello");
}

TEST_CASE("a HEAD request gets the headers with Content-Length and no body", "[http]") {
  auto server = StartServer(TestOptions(), Answer(200, "twelve bytes"));
  Client client(server->BoundPort());
  client.Send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
  ClientResponse head = client.ReadHead();
  CHECK(head.headers["content-length"] == "12");
  // Had a body followed, it would be read here as the next response's status line.
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadResponse().body == "twelve bytes");
}

TEST_CASE("an HTTP/1.0 request is answered and then the connection closes", "[http]") {
  auto server = StartServer(TestOptions(), Answer(200, "old"));
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.0\r\n\r\n");
  ClientResponse response = client.ReadResponse();
  CHECK(response.body == "old");
  CHECK(response.headers["connection"] == "close");
  CHECK(client.ReadsEof());
}

TEST_CASE("a body over max_body_bytes gets 413 and never reaches the handler", "[http]") {
  ServerOptions options = TestOptions();
  options.max_body_bytes = 16;
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](Request, std::shared_ptr<Responder> out) {
    ++calls;
    out->Respond({});
  });

  SECTION("declared by Content-Length") {
    Client client(server->BoundPort());
    client.Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n");
    ClientResponse response = client.ReadResponse();
    CHECK(response.status == 413);
    CHECK(response.headers["connection"] == "close");
    CHECK(response.body == "request body too large\n");
    CHECK(client.ReadsEof());
    CHECK(calls == 0);
  }
  SECTION("sent in chunks") {
    Client client(server->BoundPort());
    client.Send(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n0123456789abcdef\r\n1\r\nX\r\n0\r\n\r\n");
    CHECK(client.ReadResponse().status == 413);
    CHECK(client.ReadsEof());
    CHECK(calls == 0);
  }
  SECTION("at the limit is fine") {
    Client client(server->BoundPort());
    client.Send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
    CHECK(client.ReadResponse().status == 200);
    CHECK(calls == 1);
  }
}

TEST_CASE("headers over max_header_bytes get 431 from the custom error_response", "[http]") {
  ServerOptions options = TestOptions();
  options.max_header_bytes = 512;
  options.error_response = [](int status, std::string_view reason) {
    return Response{.status = status,
                    .headers = {{"Content-Type", "application/json"}},
                    .body = "{\"error\":\"" + std::string(reason) + "\"}"};
  };
  std::atomic<int> calls{0};
  auto server = StartServer(options, [&](Request, std::shared_ptr<Responder> out) {
    ++calls;
    out->Respond({});
  });
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
  ClientResponse response = client.ReadResponse();
  CHECK(response.status == 431);
  CHECK(response.headers["content-type"] == "application/json");
  CHECK(response.headers["connection"] == "close");
  CHECK(response.body == "{\"error\":\"request header fields too large\"}");
  CHECK(client.ReadsEof());
  CHECK(calls == 0);
}

TEST_CASE("a malformed request gets 400 and the connection closes", "[http]") {
  auto server = StartServer(TestOptions(), Answer(200, "never"));
  Client client(server->BoundPort());
  client.Send("THIS IS NOT HTTP\r\n\r\n");
  ClientResponse response = client.ReadResponse();
  CHECK(response.status == 400);
  CHECK(response.headers["connection"] == "close");
  CHECK(client.ReadsEof());
}

TEST_CASE("a streamed response delivers each chunk before the handler writes the next", "[http]") {
  std::promise<void> first_arrived;
  std::future<void> first_arrived_future = first_arrived.get_future();
  std::promise<bool> handler_result;
  auto server = StartServer(TestOptions(), [&](Request request, std::shared_ptr<Responder> out) {
    if (request.path == "/after") {
      out->Respond({.body = "still alive"});
      return;
    }
    bool ok = out->StartStream(200, {{"Content-Type", "text/event-stream"}});
    ok = ok && out->Write("data: one\n\n");
    // The second event is written only once the client holds the first.
    ok = ok && first_arrived_future.wait_for(kPatience) == std::future_status::ready;
    ok = ok && out->Write("data: two\n\n");
    out->Finish();
    handler_result.set_value(ok);
  });
  Client client(server->BoundPort());
  client.Send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
  ClientResponse head = client.ReadHead();
  CHECK(head.status == 200);
  CHECK(head.headers["transfer-encoding"] == "chunked");
  CHECK(head.headers["content-type"] == "text/event-stream");
  CHECK(client.ReadChunk() == "data: one\n\n");
  first_arrived.set_value();
  CHECK(client.ReadChunk() == "data: two\n\n");
  CHECK(client.ReadChunk().empty());
  std::future<bool> result = handler_result.get_future();
  CHECK(Await(result));

  // The finished stream leaves the connection usable.
  client.Send("GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadResponse().body == "still alive");
}

TEST_CASE("a handler may answer later from another thread", "[http]") {
  std::promise<std::shared_ptr<Responder>> parked;
  auto server = StartServer(TestOptions(), [&](Request, std::shared_ptr<Responder> out) {
    parked.set_value(std::move(out));
  });
  Client client(server->BoundPort());
  client.Send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
  std::future<std::shared_ptr<Responder>> parked_future = parked.get_future();
  std::shared_ptr<Responder> responder = Await(parked_future);
  std::thread later([responder = std::move(responder)] {
    CHECK(responder->Respond({.status = 202, .body = "done later"}));
  });
  ClientResponse response = client.ReadResponse();
  later.join();
  CHECK(response.status == 202);
  CHECK(response.body == "done later");
}

TEST_CASE("a handler that drops its Responder without answering produces a 500", "[http]") {
  auto server = StartServer(TestOptions(), [](Request, std::shared_ptr<Responder>) {});
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  ClientResponse response = client.ReadResponse();
  CHECK(response.status == 500);
  CHECK(response.headers["connection"] == "close");
  CHECK(client.ReadsEof());
}

TEST_CASE("ClientGone turns true when the client hangs up during a stream", "[http]") {
  std::promise<void> streaming;
  struct Outcome {
    bool gone = false;
    bool write_after = true;
  };
  std::promise<Outcome> outcome;
  auto server = StartServer(TestOptions(), [&](Request, std::shared_ptr<Responder> out) {
    out->StartStream(200, {{"Content-Type", "text/event-stream"}});
    out->Write("data: hello\n\n");
    streaming.set_value();
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!out->ClientGone() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    Outcome result;
    result.gone = out->ClientGone();
    result.write_after = out->Write("data: anyone?\n\n");
    out->Finish();
    outcome.set_value(result);
  });
  Client client(server->BoundPort());
  client.Send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadHead().status == 200);
  CHECK(client.ReadChunk() == "data: hello\n\n");
  std::future<void> streaming_future = streaming.get_future();
  Await(streaming_future);
  client.Close();
  std::future<Outcome> outcome_future = outcome.get_future();
  const Outcome result = Await(outcome_future);
  CHECK(result.gone);
  CHECK_FALSE(result.write_after);
}

TEST_CASE("connections beyond max_connections get 503", "[http]") {
  ServerOptions options = TestOptions();
  options.max_connections = 1;
  auto server = StartServer(options, Answer(200, "ok"));
  {
    Client first(server->BoundPort());
    first.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    CHECK(first.ReadResponse().status == 200);  // `first` now holds the only slot

    Client second(server->BoundPort());
    second.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    ClientResponse response = second.ReadResponse();
    CHECK(response.status == 503);
    CHECK(response.headers["connection"] == "close");
    CHECK(second.ReadsEof());
  }
  // Once `first` is gone its slot frees up; the server learns that asynchronously.
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  int status = 0;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    Client again(server->BoundPort());
    again.Send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    status = again.ReadResponse().status;
  }
  CHECK(status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after idle_timeout", "[http]") {
  ServerOptions options = TestOptions();
  options.idle_timeout = 200ms;
  auto server = StartServer(options, Answer(200, "ok"));
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  CHECK(client.ReadResponse().status == 200);
  CHECK(client.ReadsEof());
}

TEST_CASE("a request that does not arrive within header_timeout is dropped silently", "[http]") {
  ServerOptions options = TestOptions();
  options.header_timeout = 200ms;
  auto server = StartServer(options, Answer(200, "ok"));
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n");
  CHECK(client.ReadsEof());
}

TEST_CASE("Stop lets an in-flight request finish within the grace period", "[http]") {
  std::promise<void> arrived;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto server = StartServer(TestOptions(), [&](Request, std::shared_ptr<Responder> out) {
    arrived.set_value();
    released.wait_for(kPatience);
    out->Respond({.body = "finished"});
  });
  const int port = server->BoundPort();
  Client client(port);
  client.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
  std::future<void> arrived_future = arrived.get_future();
  Await(arrived_future);

  const auto stop_began = std::chrono::steady_clock::now();
  std::thread stopper([&] { server->Stop(kPatience); });
  // Stop has begun once nobody accepts connections any more.
  const auto deadline = stop_began + kPatience;
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    const int fd = Dial(port);
    refused = fd < 0;
    if (fd >= 0) ::close(fd);
  }
  CHECK(refused);
  release.set_value();
  ClientResponse response = client.ReadResponse();
  CHECK(response.status == 200);
  CHECK(response.body == "finished");
  CHECK(response.headers["connection"] == "close");
  client.Close();
  stopper.join();
  CHECK(std::chrono::steady_clock::now() - stop_began < kPatience);
  server->Stop(0ms);  // idempotent
}

size_t CollectBody(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

TEST_CASE("a request over the server's own TLS arrives with tls set", "[http]") {
  auto ca = common::MakeCa("http test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  const common::TlsPems pems = testing::IssueForTest(*ca, "spiffe://llmbox/hub", "localhost");
  testing::ScratchDir dir("http-tls");
  ServerOptions options = TestOptions();
  options.tls_cert_file = dir.Write("cert.pem", pems.cert_pem);
  options.tls_key_file = dir.Write("key.pem", pems.key_pem);
  const std::string ca_file = dir.Write("ca.pem", pems.ca_pem);
  std::promise<Request> seen;
  auto server = StartServer(options, [&](Request request, std::shared_ptr<Responder> out) {
    out->Respond({.body = "secure " + request.body});
    seen.set_value(std::move(request));
  });

  CURL* curl = curl_easy_init();
  REQUIRE(curl != nullptr);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->BoundPort()) + "/tls?x=1";
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "hi");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(kPatience / 1ms));
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  INFO(curl_easy_strerror(code));
  REQUIRE(code == CURLE_OK);
  CHECK(status == 200);
  CHECK(body == "secure hi");
  std::future<Request> seen_future = seen.get_future();
  const Request request = Await(seen_future);
  CHECK(request.tls);
  CHECK(request.path == "/tls");
  CHECK(request.query == "x=1");
}

TEST_CASE("a server bound to localhost answers on 127.0.0.1", "[http]") {
  ServerOptions options = TestOptions();
  options.address = "localhost";
  auto server = StartServer(options, Answer(200, "local"));
  Client client(server->BoundPort());
  client.Send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK(client.ReadResponse().body == "local");
}

TEST_CASE("Start fails with InvalidArgument naming an unreadable TLS file", "[http]") {
  testing::ScratchDir dir("http-tls-bad");
  ServerOptions options = TestOptions();
  options.tls_cert_file = (dir.path() / "missing-cert.pem").string();
  options.tls_key_file = dir.Write("key.pem", "not a key");
  HttpServer missing(options, Answer(200, "ok"));
  absl::Status status = missing.Start();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("missing-cert.pem"));

  auto ca = common::MakeCa("http test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  options.tls_cert_file = dir.Write("cert.pem", ca->cert_pem);
  HttpServer bad_key(options, Answer(200, "ok"));
  status = bad_key.Start();
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(status.message()), Catch::Contains("key.pem"));
}

TEST_CASE("Start fails with Unavailable naming address and port when the port is taken", "[http]") {
  auto first = StartServer(TestOptions(), Answer(200, "ok"));
  ServerOptions options = TestOptions();
  options.port = first->BoundPort();
  HttpServer second(options, Answer(200, "ok"));
  const absl::Status status = second.Start();
  CHECK(status.code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(std::string(status.message()),
             Catch::Contains("127.0.0.1:" + std::to_string(first->BoundPort())));

  options.address = "not-an-address";
  HttpServer third(options, Answer(200, "ok"));
  CHECK(third.Start().code() == absl::StatusCode::kInvalidArgument);
}

// ---- Client addresses behind proxies, and what the server logs about a request ----

TEST_CASE("the server believes X-Forwarded-For only from a trusted peer", "[http][proxy]") {
  for (const bool trust_loopback : {false, true}) {
    INFO("trusted_proxies: " << (trust_loopback ? "[127.0.0.1/32]" : "[]"));
    ServerOptions options = TestOptions();
    if (trust_loopback) {
      auto trusted = TrustedProxies::Parse({"127.0.0.1/32"});
      REQUIRE(trusted.ok());
      options.trusted_proxies = *trusted;
    }
    auto server = StartServer(options, [](Request request, std::shared_ptr<Responder> out) {
      out->Respond({.status = 200, .body = request.remote_address + " " + request.client_address});
    });
    Client client(server->BoundPort());
    client.Send("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
    CHECK(client.ReadResponse().body ==
          (trust_loopback ? "127.0.0.1 203.0.113.9" : "127.0.0.1 127.0.0.1"));
  }
}

TEST_CASE("a failing handler's log line names the path as loggable_path makes it, and the client",
          "[http][proxy]") {
  const std::string secret = "SeCrEtToKeN-0123456789abcdefghijklmnopqrstu";
  ServerOptions options = TestOptions();
  options.loggable_path = [](std::string_view path) {
    return path.starts_with("/auth/") ? std::string("/auth/[token]") : std::string(path);
  };
  auto trusted = TrustedProxies::Parse({"127.0.0.1/32"});
  REQUIRE(trusted.ok());
  options.trusted_proxies = *trusted;
  testing::LogCapture logs;
  {
    auto server = StartServer(options, [](Request request, std::shared_ptr<Responder>) {
      if (request.method == "POST") throw std::runtime_error("boom");
      // GET: drops the Responder without answering.
    });
    Client client(server->BoundPort());
    client.Send("GET /auth/" + secret +
                " HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
    CHECK(client.ReadResponse().status == 500);
    Client again(server->BoundPort());
    again.Send("POST /auth/" + secret + "/status HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    CHECK(again.ReadResponse().status == 500);
    server->Stop(1s);
  }
  const std::string text = logs.Text();
  INFO(text);
  CHECK(text.find(secret) == std::string::npos);
  CHECK(text.find("handler for GET /auth/[token] from 203.0.113.9 dropped its Responder") !=
        std::string::npos);
  CHECK(text.find("handler for POST /auth/[token] from 127.0.0.1 threw: boom") !=
        std::string::npos);
}

}  // namespace
}  // namespace llmbox::hub::http
