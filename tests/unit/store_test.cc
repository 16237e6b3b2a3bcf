#include <spawn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/secrets.h"
#include "hub/store/sqlite_store.h"
#include "tests/support/scratch_dir.h"

namespace llmbox::hub::store {
namespace {

using llmbox::common::Sha256Hex;
using llmbox::testing::ScratchDir;

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

// A box with every field set to something distinct, so a field that is not stored or read
// back shows up as a difference.
BoxRecord FullBox(const std::string& id, std::int64_t created_at_ms = 1000) {
  BoxRecord box;
  box.box_id = id;
  box.spoke = "local";
  box.container_id = "c0ffee-" + id;
  box.image = "ghcr.io/example/claude:1";
  box.description = "a box called " + id;
  box.phase = Phase::kPending;
  box.session_url = "https://claude.ai/code/session_" + id;
  box.last_error = "the last error of " + id;
  box.authorize_url = "https://claude.ai/oauth/authorize?state=" + id;
  box.token_hash = Sha256Hex("token-" + id);
  box.created_by = "alice";
  box.owner = "key:alice";
  box.created_at_ms = created_at_ms;
  box.expires_at_ms = created_at_ms + 600'000;
  box.updated_at_ms = created_at_ms + 5;
  box.activation_attempts = 3;
  return box;
}

void RequireSameBox(const BoxRecord& a, const BoxRecord& b) {
  CHECK(a.box_id == b.box_id);
  CHECK(a.activation_owner == b.activation_owner);
  CHECK(a.spoke == b.spoke);
  CHECK(a.container_id == b.container_id);
  CHECK(a.image == b.image);
  CHECK(a.description == b.description);
  CHECK(a.phase == b.phase);
  CHECK(a.session_url == b.session_url);
  CHECK(a.last_error == b.last_error);
  CHECK(a.authorize_url == b.authorize_url);
  CHECK(a.token_hash == b.token_hash);
  CHECK(a.created_by == b.created_by);
  CHECK(a.owner == b.owner);
  CHECK(a.created_at_ms == b.created_at_ms);
  CHECK(a.expires_at_ms == b.expires_at_ms);
  CHECK(a.updated_at_ms == b.updated_at_ms);
  CHECK(a.activation_attempts == b.activation_attempts);
}

ApiKeyRecord Key(const std::string& name, std::int64_t created_at_ms = 100) {
  return ApiKeyRecord{
      .name = name, .hash = Sha256Hex("key-" + name), .created_at_ms = created_at_ms};
}

std::vector<std::string> Ids(const std::vector<BoxRecord>& boxes) {
  std::vector<std::string> ids;
  for (const BoxRecord& box : boxes) ids.push_back(box.box_id);
  return ids;
}

TEST_CASE("a box survives insert, get, update and delete with every field intact", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());

  const BoxRecord box = FullBox("demo");
  REQUIRE(store->InsertBox(box).ok());
  absl::StatusOr<BoxRecord> got = store->GetBox("demo");
  REQUIRE(got.ok());
  RequireSameBox(*got, box);

  BoxRecord changed = box;
  changed.spoke = "far";
  changed.container_id = "beef";
  changed.image = "other:2";
  changed.description = "changed";
  changed.phase = Phase::kReady;
  changed.session_url = "https://claude.ai/code/session_new";
  changed.last_error = "";
  changed.authorize_url = "";
  changed.token_hash = Sha256Hex("another token");
  changed.created_by = "bob";
  changed.created_at_ms = 7;
  changed.expires_at_ms = 0;
  changed.updated_at_ms = 9'000'000'000'000;
  changed.activation_attempts = 4'000'000'000u;
  REQUIRE(store->UpdateBox(changed).ok());
  got = store->GetBox("demo");
  REQUIRE(got.ok());
  RequireSameBox(*got, changed);

  REQUIRE(store->DeleteBox("demo").ok());
  REQUIRE(store->GetBox("demo").status().code() == absl::StatusCode::kNotFound);
  REQUIRE(store->DeleteBox("demo").code() == absl::StatusCode::kNotFound);
}

TEST_CASE("a destroyed box's token is remembered, survives a reopen, and is pruned in time",
          "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  {
    auto store = OpenOrDie(path);
    REQUIRE(store->InsertBox(FullBox("gone-soon")).ok());
    BoxRecord tokenless = FullBox("no-token");
    tokenless.token_hash.clear();
    REQUIRE(store->InsertBox(tokenless).ok());
    REQUIRE(store->FindDestroyedBox(Sha256Hex("token-gone-soon")).status().code() ==
            absl::StatusCode::kNotFound);

    REQUIRE(store->DestroyBox("GONE-SOON", 5000).ok());
    REQUIRE(store->GetBox("gone-soon").status().code() == absl::StatusCode::kNotFound);
    REQUIRE(store->GetBoxByTokenHash(Sha256Hex("token-gone-soon")).status().code() ==
            absl::StatusCode::kNotFound);
    REQUIRE(store->DestroyBox("no-token", 5000).ok());
    REQUIRE(store->DestroyBox("no-token", 5000).code() == absl::StatusCode::kNotFound);
  }
  auto store = OpenOrDie(path);
  auto destroyed = store->FindDestroyedBox(Sha256Hex("token-gone-soon"));
  REQUIRE(destroyed.ok());
  CHECK(destroyed->box_id == "gone-soon");
  CHECK(destroyed->destroyed_at_ms == 5000);
  CHECK(store->FindDestroyedBox("").status().code() == absl::StatusCode::kNotFound);

  // The id can be used again, and the next destroy prunes tombstones past the retention.
  REQUIRE(store->InsertBox(FullBox("gone-soon")).ok());
  REQUIRE(store->DestroyBox("gone-soon", 5000 + kDestroyedRetentionMs + 1).ok());
  REQUIRE(store->FindDestroyedBox(Sha256Hex("token-gone-soon")).ok());  // the new tombstone
  REQUIRE(store->InsertBox(FullBox("other")).ok());
  REQUIRE(store->DestroyBox("other", 5000 + 3 * kDestroyedRetentionMs).ok());
  CHECK(store->FindDestroyedBox(Sha256Hex("token-gone-soon")).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(store->FindDestroyedBox(Sha256Hex("token-other")).ok());
}

TEST_CASE("ended MCP sessions survive a reopen until they expire", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  {
    auto store = OpenOrDie(path);
    REQUIRE(store->EndMcpSession(Sha256Hex("session-a"), 10'000).ok());
    REQUIRE(store->EndMcpSession(Sha256Hex("session-b"), 20'000).ok());
    REQUIRE(store->EndMcpSession(Sha256Hex("session-a"), 10'000).ok());  // twice is fine
  }
  auto store = OpenOrDie(path);
  auto ended = store->ListEndedMcpSessions(5'000);
  REQUIRE(ended.ok());
  std::vector<std::string> both = {Sha256Hex("session-a"), Sha256Hex("session-b")};
  std::sort(both.begin(), both.end());
  CHECK(*ended == both);
  // Past a's expiry it is dropped for good, b stays.
  auto later = store->ListEndedMcpSessions(10'000);
  REQUIRE(later.ok());
  CHECK(*later == std::vector<std::string>{Sha256Hex("session-b")});
  auto again = store->ListEndedMcpSessions(0);
  REQUIRE(again.ok());
  CHECK(*again == std::vector<std::string>{Sha256Hex("session-b")});
}

TEST_CASE("a box is claimed by its first activation owner only, and an update keeps the owner",
          "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertBox(FullBox("demo")).ok());
  CHECK(store->GetBox("demo")->activation_owner.empty());
  auto first = store->ClaimBox("DEMO", "alice@example.com");
  REQUIRE(first.ok());
  CHECK(*first == "alice@example.com");
  auto second = store->ClaimBox("demo", "bob@example.com");
  REQUIRE(second.ok());
  CHECK(*second == "alice@example.com");
  // A read-modify-write from before the claim cannot undo it.
  BoxRecord stale = FullBox("demo");
  stale.phase = Phase::kReady;
  REQUIRE(store->UpdateBox(stale).ok());
  CHECK(store->GetBox("demo")->activation_owner == "alice@example.com");
  CHECK(store->GetBox("demo")->phase == Phase::kReady);
  CHECK(store->ClaimBox("nobody", "alice@example.com").status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(store->ClaimBox("demo", "").status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a missing box is NotFound with its id in the message", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  absl::Status status = store->GetBox("x").status();
  REQUIRE(status.code() == absl::StatusCode::kNotFound);
  REQUIRE(status.message() == "no box \"x\"");
  REQUIRE(store->UpdateBox(FullBox("x")).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("box ids are unique and looked up case-insensitively", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertBox(FullBox("demo")).ok());

  absl::Status taken = store->InsertBox(FullBox("Demo"));
  REQUIRE(taken.code() == absl::StatusCode::kAlreadyExists);
  REQUIRE(taken.message() == "box id \"Demo\" is taken (by box \"demo\")");

  absl::StatusOr<BoxRecord> got = store->GetBox("DEMO");
  REQUIRE(got.ok());
  REQUIRE(got->box_id == "demo");

  // An update through another spelling keeps the creator's spelling.
  BoxRecord update = FullBox("DeMo");
  update.phase = Phase::kReady;
  REQUIRE(store->UpdateBox(update).ok());
  got = store->GetBox("demo");
  REQUIRE(got.ok());
  REQUIRE(got->box_id == "demo");
  REQUIRE(got->phase == Phase::kReady);

  REQUIRE(store->DeleteBox("DEMO").ok());
  REQUIRE(store->InsertBox(FullBox("Demo")).ok());
}

TEST_CASE("token hashes are unique and find their box", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertBox(FullBox("one")).ok());

  absl::StatusOr<BoxRecord> got = store->GetBoxByTokenHash(Sha256Hex("token-one"));
  REQUIRE(got.ok());
  REQUIRE(got->box_id == "one");
  REQUIRE(store->GetBoxByTokenHash(Sha256Hex("nope")).status().code() ==
          absl::StatusCode::kNotFound);

  BoxRecord reuse = FullBox("two");
  reuse.token_hash = Sha256Hex("token-one");
  absl::Status status = store->InsertBox(reuse);
  REQUIRE(status.code() == absl::StatusCode::kAlreadyExists);
  REQUIRE(status.message().find("\"one\"") != absl::string_view::npos);

  REQUIRE(store->InsertBox(FullBox("two")).ok());
  reuse.token_hash = Sha256Hex("token-one");
  REQUIRE(store->UpdateBox(reuse).code() == absl::StatusCode::kAlreadyExists);

  // Boxes without a token yet do not collide with each other, and "" finds nothing.
  BoxRecord a = FullBox("a");
  BoxRecord b = FullBox("b");
  a.token_hash.clear();
  b.token_hash.clear();
  REQUIRE(store->InsertBox(a).ok());
  REQUIRE(store->InsertBox(b).ok());
  REQUIRE(store->GetBox("a")->token_hash.empty());
  REQUIRE(store->GetBoxByTokenHash("").status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("boxes list by creation time then id, filtered by phase and spoke", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  BoxRecord c = FullBox("c", 300);
  BoxRecord b = FullBox("b", 100);
  BoxRecord a = FullBox("a", 200);
  BoxRecord a2 = FullBox("A2", 200);
  c.phase = Phase::kReady;
  a2.phase = Phase::kReady;
  a2.spoke = "far";
  for (const BoxRecord& box : {c, b, a, a2}) REQUIRE(store->InsertBox(box).ok());

  REQUIRE(Ids(store->ListBoxes({}).value()) == std::vector<std::string>{"b", "a", "A2", "c"});
  REQUIRE(Ids(store->ListBoxes({.phase = Phase::kReady}).value()) ==
          std::vector<std::string>{"A2", "c"});
  REQUIRE(Ids(store->ListBoxes({.spoke = "far"}).value()) == std::vector<std::string>{"A2"});
  REQUIRE(Ids(store->ListBoxes({.phase = Phase::kReady, .spoke = "local"}).value()) ==
          std::vector<std::string>{"c"});
  REQUIRE(store->ListBoxes({.phase = Phase::kGone}).value().empty());
}

TEST_CASE("boxes and keys survive closing and reopening the file", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  {
    auto store = OpenOrDie(path);
    REQUIRE(store->InsertBox(FullBox("kept")).ok());
    REQUIRE(store->InsertApiKey(Key("ci")).ok());
    REQUIRE(store->RevokeApiKey("ci", 500).ok());
  }
  auto store = OpenOrDie(path);
  absl::StatusOr<BoxRecord> got = store->GetBox("kept");
  REQUIRE(got.ok());
  RequireSameBox(*got, FullBox("kept"));
  std::vector<ApiKeyRecord> keys = store->ListApiKeys().value();
  REQUIRE(keys.size() == 1);
  REQUIRE(keys[0].revoked_at_ms == 500);
}

TEST_CASE("the database file is created readable by its owner only", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  auto store = OpenOrDie(path);
  REQUIRE(store->InsertBox(FullBox("x")).ok());
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    INFO(file);
    REQUIRE(::stat(file.c_str(), &st) == 0);
    REQUIRE((st.st_mode & 0777) == 0600);
  }
}

TEST_CASE("a database in a missing folder is refused with the folder named", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "absent" / "hub.db").string();
  absl::Status status = SqliteStore::Open(path).status();
  REQUIRE(status.code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(status.message().find((dir.path() / "absent").string()) != absl::string_view::npos);
}

TEST_CASE("a file that is not a database is refused", "[store]") {
  ScratchDir dir("store");
  const std::string path = dir.Write("hub.db", std::string(8192, 'x'));
  absl::Status status = SqliteStore::Open(path).status();
  INFO(status.ToString());
  REQUIRE_FALSE(status.ok());
  REQUIRE(status.message().find(path) != absl::string_view::npos);
}

TEST_CASE("a database with a newer schema than this code knows is refused", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  OpenOrDie(path).reset();
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &raw) == SQLITE_OK);
  const std::string newer = std::to_string(SqliteStore::SchemaVersion() + 1);
  REQUIRE(sqlite3_exec(raw, ("PRAGMA user_version = " + newer).c_str(), nullptr, nullptr,
                       nullptr) == SQLITE_OK);
  sqlite3_close(raw);

  absl::Status status = SqliteStore::Open(path).status();
  REQUIRE(status.code() == absl::StatusCode::kFailedPrecondition);
  INFO(status.message());
  REQUIRE(status.message().find("hub.db has schema version " + newer +
                                "; this llmbox-hub knows up to " +
                                std::to_string(SqliteStore::SchemaVersion()) +
                                ": upgrade llmbox-hub") != absl::string_view::npos);
}

TEST_CASE("API keys are listed by name with revoked ones, and revoked keys are not found",
          "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertApiKey(Key("zed", 1)).ok());
  REQUIRE(store->InsertApiKey(Key("ci", 2)).ok());
  REQUIRE(store->InsertApiKey(Key("alice", 3)).ok());

  absl::StatusOr<ApiKeyRecord> found = store->FindLiveApiKey(Sha256Hex("key-ci"));
  REQUIRE(found.ok());
  REQUIRE(found->name == "ci");
  REQUIRE(found->created_at_ms == 2);
  REQUIRE_FALSE(found->revoked_at_ms.has_value());
  REQUIRE_FALSE(found->last_used_at_ms.has_value());

  REQUIRE(store->RevokeApiKey("ci", 50).ok());
  REQUIRE(store->RevokeApiKey("ci", 60).ok());  // idempotent; the first time stays
  REQUIRE(store->RevokeApiKey("nobody", 60).code() == absl::StatusCode::kNotFound);
  REQUIRE(store->FindLiveApiKey(Sha256Hex("key-ci")).status().code() ==
          absl::StatusCode::kNotFound);

  std::vector<ApiKeyRecord> keys = store->ListApiKeys().value();
  REQUIRE(keys.size() == 3);
  REQUIRE(keys[0].name == "alice");
  REQUIRE(keys[1].name == "ci");
  REQUIRE(keys[1].revoked_at_ms == 50);
  REQUIRE(keys[1].hash == Sha256Hex("key-ci"));
  REQUIRE(keys[2].name == "zed");
  REQUIRE_FALSE(keys[2].revoked_at_ms.has_value());
}

TEST_CASE("an API key name or hash cannot be reused, even after revocation", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertApiKey(Key("ci")).ok());
  REQUIRE(store->RevokeApiKey("ci", 5).ok());

  ApiKeyRecord same_name = Key("ci");
  same_name.hash = Sha256Hex("fresh");
  absl::Status status = store->InsertApiKey(same_name);
  REQUIRE(status.code() == absl::StatusCode::kAlreadyExists);
  REQUIRE(status.message().find("\"ci\"") != absl::string_view::npos);

  ApiKeyRecord same_hash = Key("other");
  same_hash.hash = Sha256Hex("key-ci");
  REQUIRE(store->InsertApiKey(same_hash).code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("touching an API key records its use at most once an interval", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertApiKey(Key("ci")).ok());
  REQUIRE(store->TouchApiKey("ci", 1000).ok());
  REQUIRE(store->FindLiveApiKey(Sha256Hex("key-ci"))->last_used_at_ms == 1000);
  REQUIRE(store->TouchApiKey("ci", 2000).ok());
  REQUIRE(store->FindLiveApiKey(Sha256Hex("key-ci"))->last_used_at_ms == 1000);
  REQUIRE(store->TouchApiKey("ci", 1000 + SqliteStore::kTouchIntervalMs).ok());
  REQUIRE(store->FindLiveApiKey(Sha256Hex("key-ci"))->last_used_at_ms ==
          1000 + SqliteStore::kTouchIntervalMs);
  REQUIRE(store->TouchApiKey("unknown", 1000).ok());
}

TEST_CASE("a key revoked through a second store on the same file is refused by the first",
          "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  auto hub = OpenOrDie(path);
  REQUIRE(hub->InsertApiKey(Key("ci")).ok());
  REQUIRE(hub->FindLiveApiKey(Sha256Hex("key-ci")).ok());  // the hub's reader is warm

  auto cli = OpenOrDie(path);  // as `llmbox-hub keys revoke` would open it
  REQUIRE(cli->RevokeApiKey("ci", 42).ok());
  cli.reset();

  REQUIRE(hub->FindLiveApiKey(Sha256Hex("key-ci")).status().code() == absl::StatusCode::kNotFound);
}

// Run by the next test in a second process (this binary again), the way the CLI revokes a
// key while the hub serves. Hidden from the default run and from ctest.
TEST_CASE("helper: revoke the key named in LLMBOX_TEST_STORE_KEY", "[.store-child]") {
  const char* path = std::getenv("LLMBOX_TEST_STORE_PATH");
  const char* name = std::getenv("LLMBOX_TEST_STORE_KEY");
  if (path == nullptr || name == nullptr) return;
  auto store = OpenOrDie(path);
  absl::Status status = store->RevokeApiKey(name, 42);
  INFO(status.ToString());
  REQUIRE(status.ok());
}

TEST_CASE("a key revoked by another process is refused on the next lookup", "[store]") {
  ScratchDir dir("store");
  const std::string path = (dir.path() / "hub.db").string();
  auto hub = OpenOrDie(path);
  REQUIRE(hub->InsertApiKey(Key("ci")).ok());
  REQUIRE(hub->FindLiveApiKey(Sha256Hex("key-ci")).ok());

  const std::string path_env = "LLMBOX_TEST_STORE_PATH=" + path;
  std::string key_env = "LLMBOX_TEST_STORE_KEY=ci";
  std::string self = "/proc/self/exe";
  std::string test = "helper: revoke the key named in LLMBOX_TEST_STORE_KEY";
  std::string out_flag = "--out";
  std::string out = "/dev/null";
  char* argv[] = {self.data(), test.data(), out_flag.data(), out.data(), nullptr};
  char* envp[] = {const_cast<char*>(path_env.c_str()), key_env.data(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp) == 0);
  int wstatus = 0;
  REQUIRE(waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  REQUIRE(WEXITSTATUS(wstatus) == 0);

  REQUIRE(hub->FindLiveApiKey(Sha256Hex("key-ci")).status().code() == absl::StatusCode::kNotFound);
  REQUIRE(hub->ListApiKeys().value().at(0).revoked_at_ms == 42);
}

TEST_CASE("eight threads reading and writing at once see no errors", "[store]") {
  ScratchDir dir("store");
  auto store = OpenOrDie((dir.path() / "hub.db").string());
  REQUIRE(store->InsertApiKey(Key("shared")).ok());

  constexpr int kThreads = 8;
  constexpr int kBoxesPerThread = 25;
  std::atomic<int> failures{0};
  std::vector<std::string> first_error(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto check = [&](const absl::Status& status) {
        if (status.ok()) return;
        ++failures;
        if (first_error[t].empty()) first_error[t] = status.ToString();
      };
      for (int i = 0; i < kBoxesPerThread; ++i) {
        const std::string id = "box-" + std::to_string(t) + "-" + std::to_string(i);
        BoxRecord box = FullBox(id, t * 1000 + i);
        check(store->InsertBox(box));
        check(store->GetBox(id).status());
        check(store->GetBoxByTokenHash(box.token_hash).status());
        box.phase = Phase::kReady;
        check(store->UpdateBox(box));
        check(store->ListBoxes({.phase = Phase::kReady}).status());
        check(store->FindLiveApiKey(Sha256Hex("key-shared")).status());
        check(store->TouchApiKey("shared", i * SqliteStore::kTouchIntervalMs));
        if (i % 2 == 0) check(store->DeleteBox(id));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::string errors;
  for (const std::string& error : first_error) errors += error + "\n";
  INFO(errors);
  REQUIRE(failures.load() == 0);
  REQUIRE(store->ListBoxes({}).value().size() == kThreads * (kBoxesPerThread / 2));
}

}  // namespace
}  // namespace llmbox::hub::store
