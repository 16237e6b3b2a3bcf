#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/pki.h"
#include "common/secrets.h"
#include "hub/http/server.h"
#include "hub/oauth/clients.h"
#include "hub/oauth/errors.h"
#include "hub/oauth/public_address.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_cimd_fetcher.h"
#include "tests/fakes/fake_clock.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/test_pki.h"

namespace llmbox::hub::oauth {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::FakeCimdFetcher;
using testing::FakeClock;
using testing::ScratchDir;

constexpr char kClaude[] = "https://claude.ai/api/mcp/auth_callback";
constexpr char kAppDoc[] = "https://app.example/oauth/client.json";
constexpr char kAddressA[] = "192.0.2.10";
constexpr char kAddressB[] = "192.0.2.20";

std::string Message(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

std::unique_ptr<store::SqliteStore> OpenStore(const ScratchDir& dir) {
  auto store = store::SqliteStore::Open((dir.path() / "hub.db").string());
  REQUIRE(store.ok());
  return *std::move(store);
}

// A registry over a real SqliteStore in a scratch folder, a fake clock and a fake fetcher.
struct Rig {
  explicit Rig(OAuthOptions options_in = {})
      : dir("oauth-clients"), store(OpenStore(dir)), options(std::move(options_in)) {
    options.issuer = "https://hub.example.com";
    registry = std::make_unique<ClientRegistry>(*store, fetcher, clock, options);
  }

  absl::StatusOr<json> Register(const json& request, const std::string& from = kAddressA) {
    absl::StatusOr<std::string> body = registry->Register(request.dump(), from);
    if (!body.ok()) return body.status();
    return json::parse(*body);
  }
  // Register() that fails the test unless it succeeds; the 201 body.
  json MustRegister(const json& request) {
    absl::StatusOr<json> reply = Register(request);
    REQUIRE(reply.ok());
    return *reply;
  }
  // The client a 201 body names, found through the registry.
  Client MustFind(const json& reply) {
    absl::StatusOr<Client> client = registry->Find(reply["client_id"].get<std::string>());
    REQUIRE(client.ok());
    return *client;
  }

  ScratchDir dir;
  std::unique_ptr<store::SqliteStore> store;
  FakeClock clock;
  FakeCimdFetcher fetcher;
  OAuthOptions options;
  std::unique_ptr<ClientRegistry> registry;
};

json PublicRegistration() {
  return {{"client_name", "Claude"},
          {"redirect_uris", {kClaude}},
          {"grant_types", {"authorization_code", "refresh_token"}},
          {"response_types", {"code"}},
          {"token_endpoint_auth_method", "none"}};
}

// A native app's registration (Claude Code, the SDK): a loopback redirect.
json LoopbackRegistration() {
  json request = PublicRegistration();
  request["redirect_uris"] = {"http://127.0.0.1/callback"};
  return request;
}

json ConfidentialRegistration(const char* auth_method) {
  json request = PublicRegistration();
  request["token_endpoint_auth_method"] = auth_method;
  return request;
}

json AppDocument() {
  return {{"client_id", kAppDoc},
          {"client_name", "App"},
          {"redirect_uris", {"http://127.0.0.1/callback"}},
          {"token_endpoint_auth_method", "none"}};
}

// ---- the store ----

TEST_CASE("the store keeps an OAuth client, its redirect URIs, its use and its count",
          "[oauth][clients]") {
  ScratchDir dir("oauth-store");
  auto store = OpenStore(dir);
  store::OAuthClientRecord record{.client_id = "lbc_one",
                                  .secret_hash = common::Sha256Hex("s"),
                                  .name = "One \"quoted\"",
                                  .redirect_uris = {kClaude, "http://127.0.0.1/cb"},
                                  .auth_method = "client_secret_post",
                                  .registered_from = kAddressA,
                                  .created_at_ms = 1000,
                                  .expires_at_ms = 5000};
  REQUIRE(store->InsertOAuthClient(record).ok());
  CHECK(absl::IsAlreadyExists(store->InsertOAuthClient(record)));
  CHECK(*store->CountOAuthClients() == 1);

  absl::StatusOr<store::OAuthClientRecord> got = store->GetOAuthClient("lbc_one");
  REQUIRE(got.ok());
  CHECK(got->secret_hash == record.secret_hash);
  CHECK(got->name == record.name);
  CHECK(got->redirect_uris == record.redirect_uris);
  CHECK(got->auth_method == "client_secret_post");
  CHECK(got->registered_from == kAddressA);
  CHECK(got->created_at_ms == 1000);
  CHECK(got->last_used_at_ms == 0);
  CHECK(got->expires_at_ms == 5000);

  REQUIRE(store->TouchOAuthClient("lbc_one", 2000).ok());
  got = store->GetOAuthClient("lbc_one");
  CHECK(got->last_used_at_ms == 2000);
  CHECK(got->expires_at_ms == 0);

  CHECK(absl::IsNotFound(store->GetOAuthClient("lbc_none").status()));
  CHECK(absl::IsNotFound(store->TouchOAuthClient("lbc_none", 1)));
  record.auth_method = "private_key_jwt";  // the schema's CHECK refuses what the code never writes
  record.client_id = "lbc_two";
  CHECK(absl::IsInvalidArgument(store->InsertOAuthClient(record)));
}

// ---- registration ----

TEST_CASE("a public registration answers with integer times and a random lbc_ client id",
          "[oauth][clients]") {
  Rig rig;
  absl::StatusOr<json> reply = rig.Register(PublicRegistration());
  REQUIRE(reply.ok());
  const std::string id = (*reply)["client_id"];
  CHECK(id.rfind("lbc_", 0) == 0);
  CHECK(id.size() == 4 + 22);
  CHECK((*reply)["client_id_issued_at"].is_number_integer());
  CHECK((*reply)["client_id_issued_at"].get<std::int64_t>() ==
        common::ToUnixMillis(rig.clock.Now()) / 1000);
  CHECK_FALSE(reply->contains("client_secret"));
  CHECK_FALSE(reply->contains("client_secret_expires_at"));
  CHECK((*reply)["token_endpoint_auth_method"] == "none");
  CHECK((*reply)["redirect_uris"] == json::array({kClaude}));
  CHECK((*reply)["client_name"] == "Claude");
  CHECK((*reply)["grant_types"] == json::array({"authorization_code", "refresh_token"}));
  CHECK((*reply)["response_types"] == json::array({"code"}));

  absl::StatusOr<Client> client = rig.registry->Find(id);
  REQUIRE(client.ok());
  CHECK(client->kind == ClientKind::kDynamic);
  CHECK(client->name == "Claude");
  CHECK(client->secret_hash.empty());
  CHECK(rig.registry->AuthenticateClient(*client, std::nullopt).ok());

  absl::StatusOr<json> second = rig.Register(PublicRegistration());
  REQUIRE(second.ok());
  CHECK((*second)["client_id"] != id);
}

TEST_CASE("a confidential registration gets a secret of which only the SHA-256 is stored",
          "[oauth][clients]") {
  Rig rig;
  const json reply = rig.MustRegister(ConfidentialRegistration("client_secret_post"));
  const std::string secret = reply["client_secret"];
  CHECK(secret.size() == 43);
  CHECK(reply["client_secret_expires_at"].is_number_integer());
  CHECK(reply["client_secret_expires_at"] == 0);
  CHECK(reply["client_id_issued_at"].is_number_integer());

  absl::StatusOr<store::OAuthClientRecord> stored =
      rig.store->GetOAuthClient(reply["client_id"].get<std::string>());
  REQUIRE(stored.ok());
  CHECK(stored->secret_hash == common::Sha256Hex(secret));
  CHECK(stored->registered_from == kAddressA);

  const Client client = rig.MustFind(reply);
  CHECK(client.auth_method == "client_secret_post");
  CHECK(rig.registry->AuthenticateClient(client, secret).ok());
}

TEST_CASE("a registration without token_endpoint_auth_method is client_secret_basic",
          "[oauth][clients]") {
  Rig rig;
  json request = PublicRegistration();
  request.erase("token_endpoint_auth_method");
  absl::StatusOr<json> reply = rig.Register(request);
  REQUIRE(reply.ok());
  CHECK((*reply)["token_endpoint_auth_method"] == "client_secret_basic");
  CHECK(reply->contains("client_secret"));
}

TEST_CASE("a public client that sends a secret is refused with invalid_client",
          "[oauth][clients]") {
  Rig rig;
  const Client client = rig.MustFind(rig.MustRegister(PublicRegistration()));
  absl::Status status = rig.registry->AuthenticateClient(client, "made-up-secret");
  CHECK(OAuthErrorCode(status) == kInvalidClient);
  CHECK(absl::IsUnauthenticated(status));
  CHECK_THAT(Message(status), !Catch::Contains("made-up-secret"));
}

TEST_CASE("a confidential client with a wrong or missing secret is refused with invalid_client",
          "[oauth][clients]") {
  Rig rig;
  const json reply = rig.MustRegister(ConfidentialRegistration("client_secret_basic"));
  const std::string secret = reply["client_secret"];
  const Client client = rig.MustFind(reply);
  const std::string longer = secret + "x";
  const std::string shorter = secret.substr(1);
  for (const std::optional<std::string_view> wrong :
       {std::optional<std::string_view>(longer), std::optional<std::string_view>(shorter),
        std::optional<std::string_view>(""), std::optional<std::string_view>(std::nullopt)}) {
    absl::Status status = rig.registry->AuthenticateClient(client, wrong);
    CHECK(OAuthErrorCode(status) == kInvalidClient);
    CHECK_THAT(Message(status), !Catch::Contains(secret.substr(0, 10)));
  }
  CHECK(rig.registry->AuthenticateClient(client, secret).ok());
}

TEST_CASE("registrations naming a redirect the hub does not allow are refused and store nothing",
          "[oauth][clients]") {
  Rig rig;
  for (const char* uri :
       {"https://evil.example/cb", "http://127.0.0.1@evil.example/",
        "https://claude.ai/api/mcp/auth_callback#x", "https://claude.ai/api/mcp/auth_callbac",
        "https://claude.ai/api/mcp/auth_callback/../../evil"}) {
    INFO(uri);
    json request = PublicRegistration();
    request["redirect_uris"] = {kClaude, uri};
    absl::StatusOr<json> reply = rig.Register(request);
    CHECK(OAuthErrorCode(reply.status()) == kInvalidRedirectUri);
  }
  json request = PublicRegistration();
  request.erase("redirect_uris");
  CHECK(OAuthErrorCode(rig.Register(request).status()) == kInvalidRedirectUri);
  request["redirect_uris"] = json::array();
  CHECK(OAuthErrorCode(rig.Register(request).status()) == kInvalidRedirectUri);
  request["redirect_uris"] = kClaude;  // a string, not an array
  CHECK(OAuthErrorCode(rig.Register(request).status()) == kInvalidRedirectUri);
  request["redirect_uris"] = {7};
  CHECK(OAuthErrorCode(rig.Register(request).status()) == kInvalidRedirectUri);
  CHECK(*rig.store->CountOAuthClients() == 0);
}

TEST_CASE("oversized, deeply nested or non-object registration JSON is refused",
          "[oauth][clients]") {
  OAuthOptions options;
  options.max_registrations_per_address = 1000;
  Rig rig(options);
  json big = PublicRegistration();
  big["client_uri"] = std::string(16 * 1024, 'a');
  absl::StatusOr<std::string> reply = rig.registry->Register(big.dump(), kAddressA);
  CHECK(OAuthErrorCode(reply.status()) == kInvalidClientMetadata);
  CHECK_THAT(Message(reply.status()), Catch::Contains("16384 bytes"));

  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  reply = rig.registry->Register(std::string_view(deep).substr(0, 16'000), kAddressA);
  CHECK(OAuthErrorCode(reply.status()) == kInvalidClientMetadata);
  CHECK_THAT(Message(reply.status()), Catch::Contains("deeper"));
  json nested = PublicRegistration();
  nested["x"] = {{"a", {{"b", {{"c", {{"d", {{"e", {{"f", {{"g", {{"h", 1}}}}}}}}}}}}}}}};
  reply = rig.registry->Register(nested.dump(), kAddressA);
  CHECK(OAuthErrorCode(reply.status()) == kInvalidClientMetadata);

  for (const char* junk : {"", "[]", "\"x\"", "{", "{\"redirect_uris\": [1,}", "null"}) {
    INFO(junk);
    CHECK(OAuthErrorCode(rig.registry->Register(junk, kAddressA).status()) ==
          kInvalidClientMetadata);
  }
  CHECK(*rig.store->CountOAuthClients() == 0);
}

TEST_CASE("unsupported grant types, response types, auth methods and bad names are refused",
          "[oauth][clients]") {
  OAuthOptions options;
  options.max_registrations_per_address = 1000;
  Rig rig(options);
  auto refused = [&](const char* field, json value) {
    json request = PublicRegistration();
    request[field] = std::move(value);
    absl::StatusOr<json> reply = rig.Register(request);
    return OAuthErrorCode(reply.status()) == kInvalidClientMetadata;
  };
  CHECK(refused("grant_types", {"implicit"}));
  CHECK(refused("grant_types", {"authorization_code", "client_credentials"}));
  CHECK(refused("grant_types", {"refresh_token"}));
  CHECK(refused("grant_types", json::array()));
  CHECK(refused("response_types", {"token"}));
  CHECK(refused("response_types", "code"));
  CHECK(refused("token_endpoint_auth_method", "private_key_jwt"));
  CHECK(refused("token_endpoint_auth_method", 1));
  CHECK(refused("client_name", std::string(201, 'n')));
  CHECK(refused("client_name", "Claude\nInjected: header"));
  CHECK(refused("client_name", "Claude\xc2\x85"));  // U+0085, a C1 control
  CHECK(refused("client_name",
                "Claude \xe2\x80\xae"
                "edoc"));  // U+202E right-to-left override
  CHECK(refused("client_name", 42));
  CHECK(*rig.store->CountOAuthClients() == 0);

  json named = PublicRegistration();
  named["client_name"] = std::string(200, 'n');
  CHECK(rig.Register(named).ok());
  named["client_name"] = "Clåude ✓";
  CHECK(rig.Register(named).ok());
}

TEST_CASE("a registration flood from one address is refused while another address registers",
          "[oauth][clients]") {
  OAuthOptions options;
  options.max_registrations_per_address = 3;
  options.registration_window = 3600s;
  Rig rig(options);
  for (int i = 0; i < 3; ++i) REQUIRE(rig.Register(LoopbackRegistration(), kAddressA).ok());
  absl::StatusOr<json> flood = rig.Register(LoopbackRegistration(), kAddressA);
  CHECK(OAuthErrorCode(flood.status()) == kTemporarilyUnavailable);
  CHECK(absl::IsUnavailable(flood.status()));
  CHECK_THAT(Message(flood.status()), Catch::Contains("try again in"));
  CHECK(rig.Register(LoopbackRegistration(), kAddressB).ok());
  CHECK(*rig.store->CountOAuthClients() == 4);

  rig.clock.Advance(3601s);
  CHECK(rig.Register(LoopbackRegistration(), kAddressA).ok());
}

TEST_CASE("junk registrations count against the flooding address too", "[oauth][clients]") {
  OAuthOptions options;
  options.max_registrations_per_address = 2;
  Rig rig(options);
  CHECK_FALSE(rig.registry->Register("junk", kAddressA).ok());
  CHECK_FALSE(rig.registry->Register("junk", kAddressA).ok());
  CHECK(OAuthErrorCode(rig.Register(LoopbackRegistration(), kAddressA).status()) ==
        kTemporarilyUnavailable);
}

TEST_CASE("no registration passes the max_clients cap, and a refusal costs no rate budget",
          "[oauth][clients]") {
  OAuthOptions options;
  options.max_clients = 2;
  options.max_registrations_per_address = 3;
  options.max_allowlisted_registrations_per_address = 3;
  Rig rig(options);
  REQUIRE(rig.Register(PublicRegistration(), kAddressA).ok());
  REQUIRE(rig.Register(PublicRegistration(), kAddressB).ok());
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<json> full = rig.Register(PublicRegistration(), kAddressA);
    CHECK(OAuthErrorCode(full.status()) == kTemporarilyUnavailable);
    CHECK_THAT(Message(full.status()), Catch::Contains("as many registered clients"));
  }
  CHECK(*rig.store->CountOAuthClients() == 2);
}

TEST_CASE("a registered client never used expires after unused_client_ttl, a used one stays",
          "[oauth][clients]") {
  OAuthOptions options;
  options.unused_client_ttl = 24h;
  Rig rig(options);
  const std::string unused = (*rig.Register(PublicRegistration()))["client_id"];
  const std::string used = (*rig.Register(PublicRegistration()))["client_id"];
  absl::StatusOr<store::OAuthClientRecord> record = rig.store->GetOAuthClient(unused);
  REQUIRE(record.ok());
  CHECK(record->expires_at_ms == common::ToUnixMillis(rig.clock.Now() + 24h));

  absl::StatusOr<Client> client = rig.registry->Find(used);
  REQUIRE(client.ok());
  rig.clock.Advance(1h);
  rig.registry->MarkUsed(*client);
  record = rig.store->GetOAuthClient(used);
  CHECK(record->expires_at_ms == 0);
  CHECK(record->last_used_at_ms == common::ToUnixMillis(rig.clock.Now()));

  rig.clock.Advance(23h - 1s);
  CHECK(rig.registry->Find(unused).ok());
  rig.clock.Advance(1s);
  absl::StatusOr<Client> expired = rig.registry->Find(unused);
  CHECK(OAuthErrorCode(expired.status()) == kInvalidClient);
  CHECK_THAT(Message(expired.status()), Catch::Contains("expired unused"));
  rig.clock.Advance(24h * 365);
  CHECK(rig.registry->Find(used).ok());
}

TEST_CASE("an unknown or absurd client id is invalid_client", "[oauth][clients]") {
  Rig rig;
  for (const std::string& id : {std::string(""), std::string("lbc_nobody"), std::string(5000, 'x'),
                                std::string("nobody\n")}) {
    CHECK(OAuthErrorCode(rig.registry->Find(id).status()) == kInvalidClient);
  }
}

TEST_CASE("pre-registered clients come from the options and authenticate with their secret",
          "[oauth][clients]") {
  OAuthOptions options;
  options.clients = {{.client_id = "inspector",
                      .name = "Inspector",
                      .redirect_uris = {"http://localhost:6274/oauth/callback"}},
                     {.client_id = "backend",
                      .client_secret = "configured-secret",
                      .name = "Backend",
                      .redirect_uris = {kClaude}}};
  Rig rig(options);
  absl::StatusOr<Client> inspector = rig.registry->Find("inspector");
  REQUIRE(inspector.ok());
  CHECK(inspector->kind == ClientKind::kPreregistered);
  CHECK(inspector->auth_method == "none");
  CHECK(rig.registry->AuthenticateClient(*inspector, std::nullopt).ok());
  CHECK_FALSE(rig.registry->AuthenticateClient(*inspector, "configured-secret").ok());

  absl::StatusOr<Client> backend = rig.registry->Find("backend");
  REQUIRE(backend.ok());
  CHECK(backend->secret_hash == common::Sha256Hex("configured-secret"));
  CHECK(rig.registry->AuthenticateClient(*backend, "configured-secret").ok());
  CHECK(OAuthErrorCode(rig.registry->AuthenticateClient(*backend, "wrong")) == kInvalidClient);
  CHECK(OAuthErrorCode(rig.registry->AuthenticateClient(*backend, std::nullopt)) == kInvalidClient);
  rig.registry->MarkUsed(*backend);  // nothing to record for a configured client
}

// ---- client ID metadata documents ----

TEST_CASE("a client metadata document is fetched, checked, named and cached for cimd_cache_ttl",
          "[oauth][clients]") {
  OAuthOptions options;
  options.cimd_cache_ttl = 3600s;
  Rig rig(options);
  rig.fetcher.Serve(kAppDoc, AppDocument().dump());
  absl::StatusOr<Client> client = rig.registry->Find(kAppDoc);
  REQUIRE(client.ok());
  CHECK(client->kind == ClientKind::kMetadataDocument);
  CHECK(client->client_id == kAppDoc);
  CHECK(client->name == "App");
  CHECK(client->redirect_uris == std::vector<std::string>{"http://127.0.0.1/callback"});
  CHECK(client->secret_hash.empty());
  CHECK(rig.registry->AuthenticateClient(*client, std::nullopt).ok());
  CHECK_FALSE(rig.registry->AuthenticateClient(*client, "a-secret").ok());

  CHECK(rig.registry->Find(kAppDoc).ok());
  CHECK(rig.fetcher.Fetches(kAppDoc) == 1);
  rig.clock.Advance(3601s);
  CHECK(rig.registry->Find(kAppDoc).ok());
  CHECK(rig.fetcher.Fetches(kAppDoc) == 2);
  CHECK(*rig.store->CountOAuthClients() == 0);  // nothing of a document goes to the store
}

TEST_CASE("a client metadata document whose client_id is not its URL is refused",
          "[oauth][clients]") {
  Rig rig;
  for (const char* claimed :
       {"https://app.example/oauth/client.json/", "https://APP.example/oauth/client.json",
        "https://other.example/oauth/client.json", ""}) {
    INFO(claimed);
    json doc = AppDocument();
    doc["client_id"] = claimed;
    const std::string url = std::string(kAppDoc) + "?v=" + claimed;
    rig.fetcher.Serve(url, doc.dump());
    absl::StatusOr<Client> client = rig.registry->Find(url);
    CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
    CHECK_THAT(Message(client.status()), Catch::Contains("another client_id"));
  }
  json doc = AppDocument();
  doc.erase("client_id");
  rig.fetcher.Serve(kAppDoc, doc.dump());
  CHECK(OAuthErrorCode(rig.registry->Find(kAppDoc).status()) == kInvalidClient);
}

TEST_CASE("a client metadata document naming a redirect the hub does not allow is refused",
          "[oauth][clients]") {
  Rig rig;
  json doc = AppDocument();
  doc["redirect_uris"] = {"http://127.0.0.1/callback", "https://evil.example/steal"};
  rig.fetcher.Serve(kAppDoc, doc.dump());
  absl::StatusOr<Client> client = rig.registry->Find(kAppDoc);
  CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
  CHECK_THAT(Message(client.status()), Catch::Contains("https://evil.example"));
}

TEST_CASE("an oversized, deep or non-object client metadata document is refused",
          "[oauth][clients]") {
  OAuthOptions options;
  options.cimd_max_bytes = 4096;
  Rig rig(options);
  json doc = AppDocument();
  doc["padding"] = std::string(5000, 'p');
  rig.fetcher.Serve(kAppDoc, doc.dump());
  absl::StatusOr<Client> client = rig.registry->Find(kAppDoc);
  CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
  CHECK_THAT(Message(client.status()), Catch::Contains("larger than 4096 bytes"));

  const std::string deep_url = std::string(kAppDoc) + "?deep";
  rig.fetcher.Serve(deep_url, std::string(2000, '[') + std::string(2000, ']'));
  CHECK_THAT(Message(rig.registry->Find(deep_url).status()), Catch::Contains("deeper"));
  const std::string list_url = std::string(kAppDoc) + "?list";
  rig.fetcher.Serve(list_url, "[]");
  CHECK_THAT(Message(rig.registry->Find(list_url).status()), Catch::Contains("not a JSON object"));
}

TEST_CASE("a client metadata document asking for a secret-based auth method is refused",
          "[oauth][clients]") {
  Rig rig;
  json doc = AppDocument();
  doc["token_endpoint_auth_method"] = "client_secret_post";
  rig.fetcher.Serve(kAppDoc, doc.dump());
  CHECK(OAuthErrorCode(rig.registry->Find(kAppDoc).status()) == kInvalidClient);

  const std::string secret_url = std::string(kAppDoc) + "?secret";
  doc = AppDocument();
  doc["client_id"] = secret_url;
  doc["client_secret"] = "published";
  rig.fetcher.Serve(secret_url, doc.dump());
  CHECK(OAuthErrorCode(rig.registry->Find(secret_url).status()) == kInvalidClient);
}

TEST_CASE("a client hears no private address when its document's host resolves to one",
          "[oauth][clients]") {
  Rig rig;
  rig.fetcher.Fail(kAppDoc, absl::PermissionDeniedError("app.example is at 10.1.2.3 (private)"));
  absl::StatusOr<Client> client = rig.registry->Find(kAppDoc);
  CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
  CHECK_THAT(Message(client.status()), Catch::Contains("could not be fetched"));
  CHECK_THAT(Message(client.status()), !Catch::Contains("10.1.2.3"));
}

TEST_CASE("every failed document fetch reads the same to the client, so names cannot be probed",
          "[oauth][clients][fix-clients]") {
  // An attacker names https://<guess>.internal/x: a name that resolves to a private address
  // must read exactly like one that does not resolve, one that does not answer, and so on.
  Rig rig;
  const std::vector<absl::Status> causes = {
      absl::PermissionDeniedError("db.internal is at 10.0.0.5 (private)"),
      absl::UnavailableError("could not resolve host nope.internal"),
      absl::DeadlineExceededError("did not answer within 5000 ms"),
      absl::ResourceExhaustedError("larger than 16384 bytes"),
      absl::FailedPreconditionError("answered with a redirect (HTTP 302)"),
      absl::InvalidArgumentError("the client id is not a usable URL: something"),
      absl::UnavailableError("the document answered HTTP 404, not 200")};
  std::set<std::string> heard;
  for (std::size_t i = 0; i < causes.size(); ++i) {
    const std::string url = "https://host" + std::to_string(i) + ".example/client.json";
    rig.fetcher.Fail(url, causes[i]);
    absl::StatusOr<Client> client = rig.registry->Find(url);
    CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
    std::string message = Message(client.status());
    const std::size_t at = message.find(url);
    REQUIRE(at != std::string::npos);
    heard.insert(message.erase(at, url.size()));
  }
  CHECK(heard.size() == 1);
  CHECK_THAT(*heard.begin(), !Catch::Contains("10.0.0.5") && !Catch::Contains("private") &&
                                 !Catch::Contains("resolve"));
}

TEST_CASE("a client metadata document that fails is not fetched again for a minute",
          "[oauth][clients]") {
  Rig rig;
  rig.fetcher.Fail(kAppDoc, absl::DeadlineExceededError("did not answer within 5000 ms"));
  absl::StatusOr<Client> client = rig.registry->Find(kAppDoc);
  CHECK(OAuthErrorCode(client.status()) == kInvalidClient);
  CHECK_THAT(Message(client.status()),
             Catch::Contains("cannot be used") && Catch::Contains("could not be fetched"));
  CHECK_FALSE(rig.registry->Find(kAppDoc).ok());
  CHECK(rig.fetcher.Fetches(kAppDoc) == 1);

  rig.fetcher.Serve(kAppDoc, AppDocument().dump());
  rig.clock.Advance(59s);
  CHECK_FALSE(rig.registry->Find(kAppDoc).ok());
  rig.clock.Advance(1s);
  CHECK(rig.registry->Find(kAppDoc).ok());
  CHECK(rig.fetcher.Fetches(kAppDoc) == 2);
}

TEST_CASE("client id URLs that are not https, have no path or carry tricks are never fetched",
          "[oauth][clients]") {
  Rig rig;
  for (const char* url :
       {"http://app.example/client.json", "https://app.example", "https://app.example/",
        "https://app.example/client.json#x", "https://user@app.example/client.json",
        "https://app.example/a/../client.json", "https://app.example/a/.",
        "https://app.example/ client.json"}) {
    INFO(url);
    CHECK(OAuthErrorCode(rig.registry->Find(url).status()) == kInvalidClient);
  }
  CHECK(rig.fetcher.TotalFetches() == 0);
}

TEST_CASE("with client metadata documents off, an https client id is unknown and not fetched",
          "[oauth][clients]") {
  OAuthOptions options;
  options.client_id_metadata_documents = false;
  Rig rig(options);
  rig.fetcher.Serve(kAppDoc, AppDocument().dump());
  CHECK(OAuthErrorCode(rig.registry->Find(kAppDoc).status()) == kInvalidClient);
  CHECK(rig.fetcher.TotalFetches() == 0);
}

TEST_CASE("the client metadata document cache holds at most 1000 documents", "[oauth][clients]") {
  Rig rig;
  auto url = [](int i) { return "https://app.example/c/" + std::to_string(i); };
  for (int i = 0; i <= 1000; ++i) {
    json doc = AppDocument();
    doc["client_id"] = url(i);
    rig.fetcher.Serve(url(i), doc.dump());
    rig.clock.Advance(1ms);  // so the oldest entry is also the soonest to expire
    REQUIRE(rig.registry->Find(url(i)).ok());
  }
  CHECK(rig.registry->Find(url(1000)).ok());
  CHECK(rig.fetcher.Fetches(url(1000)) == 1);
  CHECK(rig.registry->Find(url(0)).ok());  // evicted to make room for 1000, fetched again
  CHECK(rig.fetcher.Fetches(url(0)) == 2);
}

TEST_CASE("client ids that are not usable URLs do not evict cached documents", "[oauth][clients]") {
  Rig rig;
  auto url = [](int i) { return "https://app.example/c/" + std::to_string(i); };
  for (int i = 0; i < 1000; ++i) {  // a full cache; url(0) is the soonest to expire
    json doc = AppDocument();
    doc["client_id"] = url(i);
    rig.fetcher.Serve(url(i), doc.dump());
    rig.clock.Advance(1ms);
    REQUIRE(rig.registry->Find(url(i)).ok());
  }
  for (int i = 0; i < 100; ++i) {
    CHECK_FALSE(rig.registry->Find("http://app.example/junk/" + std::to_string(i)).ok());
  }
  CHECK(rig.registry->Find(url(0)).ok());
  CHECK(rig.fetcher.Fetches(url(0)) == 1);
  CHECK(rig.fetcher.TotalFetches() == 1000);
}

// ---- the real fetcher and its address checks ----

TEST_CASE("the hub's address classifier refuses every non-public address", "[oauth][clients]") {
  auto reason = [](const char* text, bool allow_loopback = false) {
    std::optional<IpAddress> address = IpAddress::Parse(text);
    REQUIRE(address.has_value());
    return NonPublicAddressReason(*address, allow_loopback);
  };
  for (const char* refused : {"127.0.0.1",
                              "127.255.0.9",
                              "10.1.2.3",
                              "172.16.0.1",
                              "172.31.255.255",
                              "192.168.1.1",
                              "169.254.169.254",
                              "100.64.0.1",
                              "100.127.255.255",
                              "0.0.0.0",
                              "224.0.0.1",
                              "255.255.255.255",
                              "240.0.0.1",
                              "192.0.2.1",
                              "198.18.0.1",
                              "::",
                              "::1",
                              "fe80::1",
                              "fc00::1",
                              "fd12:3456::1",
                              "ff02::1",
                              "::ffff:127.0.0.1",
                              "::ffff:8.8.8.8",
                              "::127.0.0.1",
                              "64:ff9b::a9fe:a9fe",
                              "2001:db8::1",
                              "2001::1",
                              "2002:a9fe:a9fe::1",
                              "fec0::1"}) {
    INFO(refused);
    CHECK(reason(refused).has_value());
  }
  for (const char* public_address : {"8.8.8.8", "1.1.1.1", "160.79.104.10", "172.32.0.1",
                                     "100.128.0.1", "2606:4700::1111", "2002:0808:0808::1"}) {
    INFO(public_address);
    CHECK_FALSE(reason(public_address).has_value());
  }
  CHECK(reason("169.254.169.254") == "link-local");
  CHECK_FALSE(reason("127.0.0.1", true).has_value());
  CHECK_FALSE(reason("::1", true).has_value());
  CHECK(reason("10.0.0.1", true).has_value());
  CHECK(reason("169.254.169.254", true).has_value());
}

TEST_CASE("the real fetcher refuses private, loopback and metadata addresses before connecting",
          "[oauth][clients]") {
  // Every URL here is refused by the address check, before any socket exists: no packet
  // leaves for 169.254.169.254 or anywhere else.
  std::unique_ptr<CimdFetcher> fetcher = MakeCurlCimdFetcher(1000ms, 16 * 1024, false);
  for (const char* url :
       {"https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/client.json",
        "https://127.0.0.1/client.json", "https://[::1]/client.json",
        "https://[fe80::1]/client.json", "https://[::ffff:169.254.169.254]/client.json",
        "https://[fd00::1]/client.json", "https://0.0.0.0/client.json",
        "https://100.100.100.200/client.json"}) {
    INFO(url);
    absl::StatusOr<std::string> body = fetcher->Fetch(url);
    CHECK(absl::IsPermissionDenied(body.status()));
    CHECK_THAT(Message(body.status()), Catch::Contains("public addresses only"));
  }
  absl::StatusOr<std::string> plain = fetcher->Fetch("http://93.184.216.34/client.json");
  CHECK(absl::IsInvalidArgument(plain.status()));
}

TEST_CASE("the real fetcher refuses a name that resolves to loopback unless allow_loopback",
          "[oauth][clients]") {
  std::unique_ptr<CimdFetcher> fetcher = MakeCurlCimdFetcher(1000ms, 16 * 1024, false);
  absl::StatusOr<std::string> body = fetcher->Fetch("https://localhost/client.json");
  CHECK(absl::IsPermissionDenied(body.status()));
  CHECK_THAT(Message(body.status()), Catch::Contains("loopback"));
}

// A loopback HTTP(S) server for the real fetcher: /doc serves `doc`, /redirect answers 302
// to /doc, /big serves more than the fetcher's cap.
struct DocumentServer {
  DocumentServer(const std::string& tls_cert = "", const std::string& tls_key = "") {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 2;
    options.tls_cert_file = tls_cert;
    options.tls_key_file = tls_key;
    server = std::make_unique<http::HttpServer>(
        options, [this](http::Request request, std::shared_ptr<http::Responder> out) {
          if (request.path == "/redirect") {
            out->Respond({.status = 302, .headers = {{"Location", "/doc"}}});
          } else if (request.path == "/big") {
            out->Respond({.body = std::string(64 * 1024, 'x')});
          } else if (request.path == "/slow") {
            release.wait();  // answers only once the test has seen the fetch give up
            out->Respond({.body = doc});
          } else if (request.path == "/missing") {
            out->Respond({.status = 404, .body = "no"});
          } else {
            out->Respond({.headers = {{"Content-Type", "application/json"}}, .body = doc});
          }
        });
    REQUIRE(server->Start().ok());
  }
  ~DocumentServer() {
    Release();
    server->Stop(0ms);
  }
  void Release() {
    std::call_once(released, [this] { release_promise.set_value(); });
  }
  std::string Url(std::string_view scheme, std::string_view path) const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(server->BoundPort()) +
           std::string(path);
  }

  std::string doc;  // set before the first request
  std::promise<void> release_promise;
  std::shared_future<void> release = release_promise.get_future().share();
  std::once_flag released;
  std::unique_ptr<http::HttpServer> server;
};

TEST_CASE(
    "the real fetcher fetches from loopback with allow_loopback, follows no redirect and "
    "caps the body",
    "[oauth][clients]") {
  DocumentServer server;
  server.doc = R"({"hello": "world"})";
  std::unique_ptr<CimdFetcher> fetcher = MakeCurlCimdFetcher(5000ms, 16 * 1024, true);
  absl::StatusOr<std::string> body = fetcher->Fetch(server.Url("http", "/doc"));
  REQUIRE(body.ok());
  CHECK(*body == server.doc);

  absl::StatusOr<std::string> redirect = fetcher->Fetch(server.Url("http", "/redirect"));
  CHECK(absl::IsFailedPrecondition(redirect.status()));
  CHECK_THAT(Message(redirect.status()), Catch::Contains("redirect"));
  absl::StatusOr<std::string> big = fetcher->Fetch(server.Url("http", "/big"));
  CHECK(absl::IsResourceExhausted(big.status()));
  // A server that never answers: the fetch gives up at its total timeout (a real wait of
  // 200 ms; the server is held until then, not slept in).
  std::unique_ptr<CimdFetcher> impatient = MakeCurlCimdFetcher(200ms, 16 * 1024, true);
  absl::StatusOr<std::string> slow = impatient->Fetch(server.Url("http", "/slow"));
  server.Release();
  CHECK(absl::IsDeadlineExceeded(slow.status()));
  CHECK_THAT(Message(slow.status()), Catch::Contains("auth.oauth.cimd_timeout"));
  absl::StatusOr<std::string> missing = fetcher->Fetch(server.Url("http", "/missing"));
  CHECK(absl::IsUnavailable(missing.status()));
  CHECK_THAT(Message(missing.status()), Catch::Contains("404"));

  // The same server is out of reach once loopback is not allowed.
  std::unique_ptr<CimdFetcher> strict = MakeCurlCimdFetcher(5000ms, 16 * 1024, false);
  CHECK(absl::IsInvalidArgument(strict->Fetch(server.Url("http", "/doc")).status()));
  CHECK(absl::IsPermissionDenied(strict->Fetch(server.Url("https", "/doc")).status()));
}

TEST_CASE("the real fetcher fetches over TLS from loopback, verifying the certificate",
          "[oauth][clients]") {
  auto ca = common::MakeCa("cimd test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  const common::TlsPems pems = testing::IssueForTest(*ca, "spiffe://llmbox/cimd", "localhost");
  ScratchDir dir("oauth-cimd-tls");
  DocumentServer server(dir.Write("cert.pem", pems.cert_pem), dir.Write("key.pem", pems.key_pem));
  server.doc = R"({"tls": true})";
  std::unique_ptr<CimdFetcher> trusting =
      MakeCurlCimdFetcher(5000ms, 16 * 1024, true, dir.Write("ca.pem", pems.ca_pem));
  absl::StatusOr<std::string> body = trusting->Fetch(server.Url("https", "/doc"));
  INFO(Message(body.status()));
  REQUIRE(body.ok());
  CHECK(*body == server.doc);

  // Without the test CA the system's store does not know the certificate.
  std::unique_ptr<CimdFetcher> system = MakeCurlCimdFetcher(5000ms, 16 * 1024, true);
  CHECK_FALSE(system->Fetch(server.Url("https", "/doc")).ok());
}

TEST_CASE("a registry with the real fetcher accepts a loopback document in test mode",
          "[oauth][clients]") {
  DocumentServer server;
  const std::string url = server.Url("http", "/client.json");
  server.doc = json{{"client_id", url},
                    {"client_name", "Loopback app"},
                    {"redirect_uris", {"http://127.0.0.1/callback"}}}
                   .dump();
  ScratchDir dir("oauth-cimd-real");
  auto store = OpenStore(dir);
  FakeClock clock;
  OAuthOptions options;
  options.cimd_allow_loopback = true;
  std::unique_ptr<CimdFetcher> fetcher =
      MakeCurlCimdFetcher(options.cimd_timeout, options.cimd_max_bytes, true);
  ClientRegistry registry(*store, *fetcher, clock, options);
  absl::StatusOr<Client> client = registry.Find(url);
  INFO(Message(client.status()));
  REQUIRE(client.ok());
  CHECK(client->name == "Loopback app");
  CHECK(client->kind == ClientKind::kMetadataDocument);

  // The same URL is not a client id for a hub outside test mode.
  OAuthOptions shipped;
  ClientRegistry strict(*store, *fetcher, clock, shipped);
  CHECK(OAuthErrorCode(strict.Find(url).status()) == kInvalidClient);
}

// ---- review fixes: registration budgets, pruning of used clients, loopback redirects, names ----

TEST_CASE("registrations for the operator's redirect URIs have their own, larger budget",
          "[oauth][clients][fix-clients]") {
  // claude.ai registers on every connection, from egress addresses all its users share: one
  // user clicking "connect" many times must not lock out everyone else, nor a native app's
  // flood of loopback registrations spend claude.ai's budget.
  CHECK(OAuthOptions{}.max_allowlisted_registrations_per_address ==
        10 * OAuthOptions{}.max_registrations_per_address);
  OAuthOptions options;
  options.max_registrations_per_address = 2;
  options.max_allowlisted_registrations_per_address = 5;
  Rig rig(options);
  for (int i = 0; i < 2; ++i) REQUIRE(rig.Register(LoopbackRegistration(), kAddressA).ok());
  CHECK(OAuthErrorCode(rig.Register(LoopbackRegistration(), kAddressA).status()) ==
        kTemporarilyUnavailable);
  // A mix of a listed and a loopback redirect is a loopback registration.
  json mixed = PublicRegistration();
  mixed["redirect_uris"] = {kClaude, "http://127.0.0.1/callback"};
  CHECK(OAuthErrorCode(rig.Register(mixed, kAddressA).status()) == kTemporarilyUnavailable);
  for (int i = 0; i < 5; ++i) {
    INFO(i);
    CHECK(rig.Register(PublicRegistration(), kAddressA).ok());
  }
  absl::StatusOr<json> sixth = rig.Register(PublicRegistration(), kAddressA);
  CHECK(OAuthErrorCode(sixth.status()) == kTemporarilyUnavailable);
  CHECK_THAT(Message(sixth.status()), Catch::Contains("try again in"));
  CHECK(*rig.store->CountOAuthClients() == 7);
  CHECK(rig.Register(LoopbackRegistration(), kAddressB).ok());
  CHECK(rig.Register(PublicRegistration(), kAddressB).ok());
}

TEST_CASE(
    "a used client with no grant left is pruned a day after its last use, one with a live "
    "grant stays",
    "[oauth][clients][fix-clients]") {
  // Without this, max_clients successful connections would stop registration for good.
  Rig rig;
  const std::string ended = rig.MustRegister(PublicRegistration())["client_id"];
  const std::string granted = rig.MustRegister(PublicRegistration())["client_id"];
  const std::string idle = rig.MustRegister(PublicRegistration())["client_id"];
  const std::int64_t now = common::ToUnixMillis(rig.clock.Now());
  auto grant = [&](const std::string& id, const std::string& client) {
    store::OAuthGrantRecord record{.grant_id = id,
                                   .client_id = client,
                                   .client_name = "Claude",
                                   .principal_id = "key:alice",
                                   .principal_kind = "api_key",
                                   .display_name = "alice",
                                   .scope = "llmbox",
                                   .resource = "https://hub.example.com",
                                   .created_at_ms = now,
                                   .expires_at_ms = now + 90LL * 24 * 3600 * 1000};
    store::OAuthCodeRecord code{.hash = common::Sha256Hex("code-" + id),
                                .grant_id = id,
                                .redirect_uri = kClaude,
                                .code_challenge = std::string(43, 'c'),
                                .expires_at_ms = now + 60'000};
    REQUIRE(rig.store->InsertOAuthGrant(record, code).ok());
  };
  for (const std::string& id : {ended, granted, idle}) {
    rig.registry->MarkUsed(rig.MustFind(json{{"client_id", id}}));
  }
  grant("g-ended", ended);
  grant("g-live", granted);
  // The first grant ends (revoked); a day later it is pruned, and a day after the last use
  // so is its client. `idle` never got a grant at all.
  REQUIRE(rig.store->RevokeOAuthGrants({.grant_id = "g-ended"}, now, "test").ok());
  rig.clock.Advance(24h - 1s);
  REQUIRE(rig.store->PruneOAuth(common::ToUnixMillis(rig.clock.Now())).ok());
  CHECK(rig.registry->Find(ended).ok());
  CHECK(rig.registry->Find(idle).ok());
  rig.clock.Advance(1s);
  REQUIRE(rig.store->PruneOAuth(common::ToUnixMillis(rig.clock.Now())).ok());
  CHECK(OAuthErrorCode(rig.registry->Find(ended).status()) == kInvalidClient);
  CHECK(OAuthErrorCode(rig.registry->Find(idle).status()) == kInvalidClient);
  CHECK(rig.registry->Find(granted).ok());
  CHECK(*rig.store->CountOAuthClients() == 1);
  rig.clock.Advance(24h * 30);
  REQUIRE(rig.store->PruneOAuth(common::ToUnixMillis(rig.clock.Now())).ok());
  CHECK(rig.registry->Find(granted).ok());
}

TEST_CASE(
    "a loopback redirect URI without a path or with a query is refused at registration and "
    "in a metadata document",
    "[oauth][clients][fix-clients]") {
  // Anyone may register a loopback redirect: with any path and query it would be an open
  // redirector to whatever listens on the person's machine.
  OAuthOptions options;
  options.max_registrations_per_address = 1000;
  Rig rig(options);
  for (const char* uri : {"http://127.0.0.1", "http://127.0.0.1/", "http://localhost:8080",
                          "http://[::1]:9/", "http://127.0.0.1/callback?next=/admin",
                          "http://localhost/?x", "http://127.0.0.1:5000?q"}) {
    INFO(uri);
    json request = PublicRegistration();
    request["redirect_uris"] = {uri};
    absl::StatusOr<json> reply = rig.Register(request);
    CHECK(OAuthErrorCode(reply.status()) == kInvalidRedirectUri);
    CHECK_THAT(Message(reply.status()), Catch::Contains("path"));

    const std::string url = std::string(kAppDoc) + "?u=" + uri;
    json doc = AppDocument();
    doc["client_id"] = url;
    doc["redirect_uris"] = {uri};
    rig.fetcher.Serve(url, doc.dump());
    CHECK(OAuthErrorCode(rig.registry->Find(url).status()) == kInvalidClient);
  }
  CHECK(*rig.store->CountOAuthClients() == 0);
  for (const char* uri :
       {"http://127.0.0.1/callback", "http://localhost:33418/oauth/callback", "http://[::1]/cb"}) {
    INFO(uri);
    json request = PublicRegistration();
    request["redirect_uris"] = {uri};
    CHECK(rig.Register(request).ok());
  }
}

TEST_CASE("a client_name with a Unicode format character or line separator is refused",
          "[oauth][clients][fix-clients]") {
  OAuthOptions options;
  options.max_registrations_per_address = 1000;
  Rig rig(options);
  auto named = [&](const std::string& name) {
    json request = PublicRegistration();
    request["client_name"] = name;
    return rig.Register(request);
  };
  for (const char* hidden : {
           "\xc2\xad",          // U+00AD soft hyphen
           "\xd8\x9c",          // U+061C Arabic letter mark
           "\xe2\x80\x8b",      // U+200B zero width space
           "\xe2\x80\x8d",      // U+200D zero width joiner
           "\xe2\x80\x8e",      // U+200E left-to-right mark
           "\xe2\x80\xa8",      // U+2028 line separator (Zl)
           "\xe2\x80\xa9",      // U+2029 paragraph separator (Zp)
           "\xe2\x80\xaa",      // U+202A left-to-right embedding
           "\xe2\x81\xa0",      // U+2060 word joiner
           "\xe2\x81\xa4",      // U+2064 invisible plus
           "\xe2\x81\xa6",      // U+2066 left-to-right isolate
           "\xef\xbb\xbf",      // U+FEFF byte order mark
           "\xef\xbf\xb9",      // U+FFF9 interlinear annotation anchor
           "\xf3\xa0\x80\x81",  // U+E0001 language tag
           "\xf3\xa0\x81\x81",  // U+E0041 tag latin capital A
       }) {
    absl::StatusOr<json> reply = named(std::string("Cla") + hidden + "ude");
    CHECK(OAuthErrorCode(reply.status()) == kInvalidClientMetadata);
  }
  CHECK(*rig.store->CountOAuthClients() == 0);
  // Neighbours of the refused ranges are ordinary text.
  for (const char* fine : {"\xe2\x80\x90",  // U+2010 hyphen
                           "\xe2\x80\x8a",  // U+200A hair space (Zs)
                           "\xc2\xa0",      // U+00A0 no-break space
                           "\xf0\x9f\x98\x80", "\xe4\xb8\xad"}) {
    CHECK(named(std::string("Cla") + fine + "ude").ok());
  }
}

// ---- review fixes: uncached metadata documents cannot hold every HTTP worker ----

// A fetcher whose fetches block until the test releases them (except for URLs made Fast);
// serves each URL a valid document naming itself.
class BlockingFetcher final : public CimdFetcher {
 public:
  absl::StatusOr<std::string> Fetch(const std::string& url) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    ++fetches_[url];
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_ || fast_.contains(url); });
    json doc = AppDocument();
    doc["client_id"] = url;
    return doc.dump();
  }
  // Whether `count` fetches have started (false after 10 s of real time: a broken test fails
  // rather than hangs).
  bool WaitEntered(int count) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, 10s, [&] { return entered_ >= count; });
  }
  void Fast(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    fast_.insert(url);
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    changed_.notify_all();
  }
  int Entered() {
    std::lock_guard<std::mutex> lock(mu_);
    return entered_;
  }
  int Fetches(const std::string& url) {
    std::lock_guard<std::mutex> lock(mu_);
    return fetches_[url];
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int entered_ = 0;
  bool released_ = false;
  std::set<std::string> fast_;
  std::map<std::string, int> fetches_;
};

// A registry over a blocking fetcher; releases the fetcher and joins its threads on the way
// out, whatever the test did (so the results its threads write must be declared before it).
struct BlockingRig {
  explicit BlockingRig(OAuthOptions options_in = {})
      : dir("oauth-cimd-bound"), store(OpenStore(dir)), options(std::move(options_in)) {
    options.issuer = "https://hub.example.com";
    registry = std::make_unique<ClientRegistry>(*store, fetcher, clock, options);
  }
  ~BlockingRig() {
    fetcher.Release();
    for (std::thread& thread : threads) {
      if (thread.joinable()) thread.join();
    }
  }
  // Find(url, key) on a thread of its own; its result lands in *result.
  void FindAsync(const std::string& url, const std::string& key, absl::StatusOr<Client>* result) {
    threads.emplace_back([this, url, key, result] { *result = registry->Find(url, key); });
  }
  void Join() {
    fetcher.Release();
    for (std::thread& thread : threads) thread.join();
    threads.clear();
  }

  ScratchDir dir;
  std::unique_ptr<store::SqliteStore> store;
  FakeClock clock;
  BlockingFetcher fetcher;
  OAuthOptions options;
  std::unique_ptr<ClientRegistry> registry;
  std::vector<std::thread> threads;
};

std::string DocUrl(int i) { return "https://app" + std::to_string(i) + ".example/client.json"; }

TEST_CASE("beyond cimd_max_concurrent_fetches, uncached documents are refused at once",
          "[oauth][clients][fix-clients]") {
  // The attack: many /authorize requests, each naming a new slow URL, would each hold an HTTP
  // worker for cimd_timeout until none is left for anyone.
  CHECK(OAuthOptions{}.cimd_max_concurrent_fetches == 4);
  std::vector<absl::StatusOr<Client>> results(4, absl::UnknownError("not run"));
  BlockingRig rig;
  for (int i = 0; i < 4; ++i) {
    rig.FindAsync(DocUrl(i), "192.0.2." + std::to_string(i), &results[i]);
  }
  REQUIRE(rig.fetcher.WaitEntered(4));
  // The fifth, from yet another address, is refused without waiting and without a fetch, even
  // though its document would answer at once.
  rig.fetcher.Fast(DocUrl(4));
  absl::StatusOr<Client> fifth = rig.registry->Find(DocUrl(4), "198.51.100.1");
  CHECK(OAuthErrorCode(fifth.status()) == kTemporarilyUnavailable);
  CHECK(absl::IsUnavailable(fifth.status()));
  CHECK(rig.fetcher.Entered() == 4);
  // Clients that need no fetch are not held up.
  CHECK(OAuthErrorCode(rig.registry->Find("lbc_nobody", "198.51.100.1").status()) ==
        kInvalidClient);
  rig.Join();
  for (const auto& result : results) CHECK(result.ok());
  // Once they are done (and cached), there is room again.
  CHECK(rig.registry->Find(DocUrl(0), "198.51.100.1").ok());
  CHECK(rig.registry->Find(DocUrl(4), "198.51.100.1").ok());
  CHECK(rig.fetcher.Fetches(DocUrl(0)) == 1);
}

TEST_CASE("requests naming a document that is being fetched share its one fetch",
          "[oauth][clients][fix-clients]") {
  absl::StatusOr<Client> first = absl::UnknownError("not run");
  absl::StatusOr<Client> second = absl::UnknownError("not run");
  BlockingRig rig;
  rig.FindAsync(DocUrl(0), "192.0.2.1", &first);
  REQUIRE(rig.fetcher.WaitEntered(1));
  rig.FindAsync(DocUrl(0), "192.0.2.2", &second);
  REQUIRE(rig.clock.WaitForWaiters(1));  // the second waits for the first's fetch
  rig.Join();
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  CHECK(second->client_id == DocUrl(0));
  CHECK(rig.fetcher.Fetches(DocUrl(0)) == 1);
}

TEST_CASE("waiters count against the bound, and stop waiting after the fetch's timeout",
          "[oauth][clients][fix-clients]") {
  // Waiting for someone else's slow fetch holds a worker too: many requests for one slow URL
  // must not get around the bound.
  OAuthOptions options;
  options.cimd_timeout = 5000ms;
  std::vector<absl::StatusOr<Client>> results(4, absl::UnknownError("not run"));
  BlockingRig rig(options);
  rig.FindAsync(DocUrl(0), "192.0.2.1", &results[0]);
  REQUIRE(rig.fetcher.WaitEntered(1));
  for (int i = 1; i < 4; ++i) {
    rig.FindAsync(DocUrl(0), "192.0.2." + std::to_string(i + 1), &results[i]);
    REQUIRE(rig.clock.WaitForWaiters(i));
  }
  CHECK(OAuthErrorCode(rig.registry->Find(DocUrl(0), "198.51.100.1").status()) ==
        kTemporarilyUnavailable);
  CHECK(rig.fetcher.Entered() == 1);
  // The fetch hangs past its timeout: the waiters give up (the fetch itself is the fetcher's
  // to end).
  rig.clock.Advance(5000ms + 1s);
  for (int i = 1; i < 4; ++i) rig.threads[i].join();
  for (int i = 1; i < 4; ++i) {
    INFO(i);
    CHECK(OAuthErrorCode(results[i].status()) == kTemporarilyUnavailable);
  }
  rig.threads.resize(1);
  rig.Join();
  CHECK(results[0].ok());
}

TEST_CASE("uncached document lookups are limited per client address",
          "[oauth][clients][fix-clients]") {
  OAuthOptions options;
  options.cimd_fetches_per_address = 3;
  options.cimd_fetch_window = 60s;
  Rig rig(options);
  for (int i = 0; i < 4; ++i) {
    json doc = AppDocument();
    doc["client_id"] = DocUrl(i);
    rig.fetcher.Serve(DocUrl(i), doc.dump());
  }
  rig.fetcher.Fail(DocUrl(9), absl::UnavailableError("no answer"));
  CHECK(rig.registry->Find(DocUrl(0), kAddressA).ok());
  CHECK(rig.registry->Find(DocUrl(1), kAddressA).ok());
  CHECK_FALSE(rig.registry->Find(DocUrl(9), kAddressA).ok());  // a failed fetch counts too
  absl::StatusOr<Client> fourth = rig.registry->Find(DocUrl(2), kAddressA);
  CHECK(OAuthErrorCode(fourth.status()) == kTemporarilyUnavailable);
  CHECK_THAT(Message(fourth.status()), Catch::Contains("try again in"));
  CHECK(rig.fetcher.Fetches(DocUrl(2)) == 0);
  // Cached documents cost nothing; other addresses have their own budget.
  CHECK(rig.registry->Find(DocUrl(0), kAddressA).ok());
  CHECK(rig.registry->Find(DocUrl(2), kAddressB).ok());
  rig.clock.Advance(60s);
  CHECK(rig.registry->Find(DocUrl(3), kAddressA).ok());
}

}  // namespace
}  // namespace llmbox::hub::oauth
