// Boxes a spoke removes on its own reach the hub's audit log once each: the spoke's removal
// journal (bounds, sequence, persistence across a restart), the reaper writing to it, the
// spoke's ListRemovals through the hub's gRPC client, and the hub's RemovalAudit (records
// written once, its cursor kept in the store, a lying spoke's answers bounded or refused).
#include "hub/boxes/removal_audit.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "hub/audit/audit_log.h"
#include "hub/boxes/registry.h"
#include "hub/cluster/grpc_spoke_client.h"
#include "hub/store/sqlite_store.h"
#include "spoke/node/spoke_node.h"
#include "spoke/reaper/removal_journal.h"
#include "tests/fakes/fake_box_egress.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_docker_engine.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/json_lines.h"
#include "tests/support/scratch_dir.h"

namespace llmbox {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using spoke::reaper::RemovalJournal;

std::vector<std::uint64_t> Seqs(const spoke::reaper::RemovalPage& page) {
  std::vector<std::uint64_t> out;
  for (const auto& entry : page.entries) out.push_back(entry.seq);
  return out;
}

TEST_CASE("a removal journal numbers its entries in order and answers those after a sequence",
          "[removals]") {
  testing::FakeClock clock;
  RemovalJournal journal({}, clock);
  REQUIRE(journal.Add("b1", spoke::reaper::kReasonExpired, absl::OkStatus()).ok());
  clock.Advance(5s);
  REQUIRE(journal.Add("b2", spoke::reaper::kReasonContainerGone, absl::OkStatus()).ok());
  REQUIRE(
      journal.Add("b3", spoke::reaper::kReasonExpired, absl::UnavailableError("engine down")).ok());

  const auto page = journal.After(journal.id(), 1, 100);
  CHECK(page.journal_id == journal.id());
  CHECK(Seqs(page) == std::vector<std::uint64_t>{2, 3});
  CHECK(page.first_seq == 1);
  CHECK(page.last_seq == 3);
  CHECK(page.entries[0].box_id == "b2");
  CHECK(page.entries[0].reason == "container_gone");
  CHECK(page.entries[0].at_ms == common::ToUnixMillis(clock.Now()));
  CHECK(page.entries[1].code == absl::StatusCode::kUnavailable);
  CHECK(page.entries[1].error == "engine down");
  // Another journal's sequence numbers mean nothing here: everything, from the start.
  CHECK(Seqs(journal.After("another-journal", 2, 100)) == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(journal.After(journal.id(), 3, 100).entries.empty());
}

TEST_CASE("a removal journal keeps its newest entries up to its bound and pages at 100",
          "[removals]") {
  testing::FakeClock clock;
  RemovalJournal small({.max_entries = 5}, clock);
  for (int i = 1; i <= 8; ++i) {
    REQUIRE(small.Add("b" + std::to_string(i), "expired", absl::OkStatus()).ok());
  }
  const auto page = small.After(small.id(), 0, 100);
  CHECK(Seqs(page) == std::vector<std::uint64_t>{4, 5, 6, 7, 8});
  CHECK(page.first_seq == 4);  // the caller learns that 1..3 were dropped
  CHECK(page.last_seq == 8);

  RemovalJournal big({}, clock);
  for (int i = 1; i <= 250; ++i) {
    REQUIRE(big.Add("b" + std::to_string(i), "expired", absl::OkStatus()).ok());
  }
  CHECK(big.After(big.id(), 0, 1000).entries.size() == RemovalJournal::kMaxPage);
  CHECK(big.After(big.id(), 200, 1000).entries.size() == 50);
  // Texts are cut: an entry never holds more than kMaxTextBytes of any field.
  REQUIRE(
      big.Add(std::string(5000, 'x'), "expired", absl::InternalError(std::string(9000, 'e'))).ok());
  const auto last = big.After(big.id(), 250, 10).entries.at(0);
  CHECK(last.box_id.size() == RemovalJournal::kMaxTextBytes);
  CHECK(last.error.size() == RemovalJournal::kMaxTextBytes);
}

TEST_CASE("a removal journal survives a restart with its id and its sequence", "[removals]") {
  testing::ScratchDir dir("removal-journal");
  testing::FakeClock clock;
  const std::string path = (dir.path() / "state" / "removals.json").string();
  std::string id;
  {
    RemovalJournal journal({.path = path}, clock);
    REQUIRE(journal.Load().ok());  // no file yet: a new journal
    REQUIRE(journal.Add("b1", "expired", absl::OkStatus()).ok());
    REQUIRE(journal.Add("b2", "expired", absl::NotFoundError("gone")).ok());
    id = journal.id();
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  RemovalJournal again({.path = path}, clock);
  REQUIRE(again.Load().ok());
  CHECK(again.id() == id);
  const auto page = again.After(id, 0, 100);
  REQUIRE(Seqs(page) == std::vector<std::uint64_t>{1, 2});
  CHECK(page.entries[1].code == absl::StatusCode::kNotFound);
  CHECK(page.entries[1].error == "gone");
  REQUIRE(again.Add("b3", "expired", absl::OkStatus()).ok());
  CHECK(Seqs(again.After(id, 2, 100)) == std::vector<std::uint64_t>{3});
}

TEST_CASE("a removal journal file that is not one starts a new journal under another id",
          "[removals]") {
  testing::ScratchDir dir("removal-journal-bad");
  testing::FakeClock clock;
  const std::string path = dir.Write("removals.json", R"({"journal":"j1","last_seq":7,
    "removals":[{"seq":5,"box_id":"b","reason":"expired","at_ms":1,"code":0,"error":""},
                {"seq":5,"box_id":"c","reason":"expired","at_ms":1,"code":0,"error":""}]})");
  RemovalJournal journal({.path = path}, clock);
  const absl::Status loaded = journal.Load();
  CHECK(absl::IsDataLoss(loaded));
  CHECK(loaded.message().find(path) != absl::string_view::npos);
  CHECK(journal.id() != "j1");
  CHECK(journal.After(journal.id(), 0, 100).entries.empty());
  REQUIRE(journal.Add("b9", "expired", absl::OkStatus()).ok());
  CHECK(Seqs(journal.After(journal.id(), 0, 100)) == std::vector<std::uint64_t>{1});

  dir.Write("garbage.json", "{not json");
  RemovalJournal garbage({.path = (dir.path() / "garbage.json").string()}, clock);
  CHECK(absl::IsDataLoss(garbage.Load()));
}

// The hub's side: a real store and audit log in a scratch directory, a fake spoke.
struct HubSide {
  HubSide() : dir("removal-audit"), log({.path = AuditPath()}, clock) {
    REQUIRE(log.Open().ok());
    auto opened = hub::store::SqliteStore::Open((dir.path() / "hub.db").string());
    REQUIRE(opened.ok());
    db = *std::move(opened);
    removals =
        std::make_unique<hub::boxes::RemovalAudit>(*db, log, hub::boxes::RemovalAuditOptions{});
  }
  std::string AuditPath() const { return (dir.path() / "audit.log").string(); }
  std::vector<json> Records() const { return testing::ReadJsonLines(AuditPath()); }
  void Add(std::uint64_t seq, const std::string& box_id, const std::string& reason = "expired",
           int code = 0, const std::string& error = "") {
    std::lock_guard lock(spoke->mu);
    spoke->removals.removals.push_back(
        {.seq = seq,
         .box_id = box_id,
         .reason = reason,
         .at = std::chrono::sys_time<std::chrono::milliseconds>(1'764'486'000'000ms),
         .code = code,
         .error = error});
    spoke->removals.last_seq = seq;
    if (spoke->removals.first_seq == 0) spoke->removals.first_seq = seq;
  }

  testing::ScratchDir dir;
  testing::FakeClock clock;
  hub::audit::AuditLog log;
  std::unique_ptr<hub::store::SqliteStore> db;
  std::unique_ptr<hub::boxes::RemovalAudit> removals;
  std::shared_ptr<testing::FakeSpokeClient> spoke = [] {
    auto fake = std::make_shared<testing::FakeSpokeClient>();
    fake->removals.journal_id = "journal-1";
    return fake;
  }();
};

TEST_CASE("removals a spoke made on its own are recorded once each and the cursor moves past them",
          "[removals]") {
  HubSide hub;
  hub.Add(1, "b1");
  hub.Add(2, "b2", "container_gone", 14, "engine down");
  REQUIRE(hub.removals->Collect("west", *hub.spoke).ok());
  auto records = hub.Records();
  REQUIRE(records.size() == 2);
  CHECK(records[0]["event"] == "box.reap");
  CHECK(records[0]["principal"] == "spoke:west");
  CHECK(records[0]["box_id"] == "b1");
  CHECK(records[0]["spoke"] == "west");
  CHECK(records[0]["outcome"] == "ok");
  CHECK(records[0]["reason"] == "expired");
  CHECK(records[0]["removed_at"] == "2025-11-30T07:00:00Z");
  CHECK(records[0]["seq"] == "1");
  CHECK_FALSE(records[0].contains("error"));
  CHECK(records[1]["reason"] == "container_gone");
  CHECK(records[1]["outcome"] == "unavailable");
  CHECK(records[1]["error"] == "engine down");
  auto cursor = hub.db->GetRemovalCursor("west");
  REQUIRE(cursor.ok());
  CHECK(cursor->journal_id == "journal-1");
  CHECK(cursor->seq == 2);

  // Nothing new: nothing written; then only the new one.
  REQUIRE(hub.removals->Collect("west", *hub.spoke).ok());
  CHECK(hub.Records().size() == 2);
  hub.Add(3, "b3");
  REQUIRE(hub.removals->Collect("west", *hub.spoke).ok());
  records = hub.Records();
  REQUIRE(records.size() == 3);
  CHECK(records[2]["box_id"] == "b3");
  {
    std::lock_guard lock(hub.spoke->mu);
    REQUIRE(hub.spoke->removals_asked.size() == 3);
    CHECK(hub.spoke->removals_asked[0] == std::pair<std::string, std::uint64_t>{"", 0});
    CHECK(hub.spoke->removals_asked[2] == std::pair<std::string, std::uint64_t>{"journal-1", 2});
  }

  // A restarted hub (another RemovalAudit on the same store) records none of them again.
  hub::boxes::RemovalAudit restarted(*hub.db, hub.log, {});
  REQUIRE(restarted.Collect("west", *hub.spoke).ok());
  CHECK(hub.Records().size() == 3);
}

TEST_CASE("a spoke's new removal journal is recorded from its start", "[removals]") {
  HubSide hub;
  hub.Add(1, "b1");
  hub.Add(2, "b2");
  REQUIRE(hub.removals->Collect("west", *hub.spoke).ok());
  {
    // The spoke lost its state directory: another journal, counting from 1 again.
    std::lock_guard lock(hub.spoke->mu);
    hub.spoke->removals = {.journal_id = "journal-2"};
  }
  hub.Add(1, "b9");
  REQUIRE(hub.removals->Collect("west", *hub.spoke).ok());
  const auto records = hub.Records();
  REQUIRE(records.size() == 3);
  CHECK(records[2]["box_id"] == "b9");
  CHECK(hub.db->GetRemovalCursor("west")->journal_id == "journal-2");
  CHECK(hub.db->GetRemovalCursor("west")->seq == 1);
}

TEST_CASE("a spoke that keeps no removal journal is no error and leaves no record", "[removals]") {
  HubSide hub;
  hub.spoke->removals_status = absl::UnimplementedError("unknown method ListRemovals");
  CHECK(hub.removals->Collect("old", *hub.spoke).ok());
  hub.spoke->removals_status = absl::UnavailableError("connection refused");
  CHECK(absl::IsUnavailable(hub.removals->Collect("old", *hub.spoke)));
  CHECK(hub.Records().empty());
  CHECK(absl::IsNotFound(hub.db->GetRemovalCursor("old").status()));
}

TEST_CASE("a lying spoke's removals are bounded per answer and its garbage is not recorded",
          "[removals]") {
  HubSide hub;
  SECTION("an answer of thousands of entries, the same every time, records 100 once") {
    for (std::uint64_t seq = 1; seq <= 5000; ++seq) hub.Add(seq, "flood-" + std::to_string(seq));
    hub.spoke->removals_verbatim = true;  // whatever the hub asks
    // The second answer starts again at 1, below the cursor: refused.
    CHECK(absl::IsInvalidArgument(hub.removals->Collect("liar", *hub.spoke)));
    CHECK(hub.Records().size() == hub::boxes::RemovalAudit::kMaxPerAnswer);
    CHECK(hub.db->GetRemovalCursor("liar")->seq == 100);
    CHECK(absl::IsInvalidArgument(hub.removals->Collect("liar", *hub.spoke)));
    CHECK(hub.Records().size() == hub::boxes::RemovalAudit::kMaxPerAnswer);
  }
  SECTION("an honest flood is read at most max_answers answers per collection") {
    for (std::uint64_t seq = 1; seq <= 1500; ++seq) hub.Add(seq, "b" + std::to_string(seq));
    REQUIRE(hub.removals->Collect("busy", *hub.spoke).ok());
    CHECK(hub.Records().size() == 1000);
    REQUIRE(hub.removals->Collect("busy", *hub.spoke).ok());
    CHECK(hub.Records().size() == 1500);
  }
  SECTION("bad ids, oversize texts, unknown reasons and codes are refused or cut") {
    hub.Add(1, "../../etc/passwd");
    hub.Add(2, std::string(100'000, 'a'));
    hub.Add(3, "ok-box", "DROP TABLE boxes; --", 999, std::string(100'000, 'e'));
    hub.Add(4, "next-box", std::string(100, 'r'));
    REQUIRE(hub.removals->Collect("liar", *hub.spoke).ok());
    const auto records = hub.Records();
    REQUIRE(records.size() == 2);
    CHECK(records[0]["box_id"] == "ok-box");
    CHECK(records[0]["reason"] == "unknown");
    CHECK(records[0]["outcome"] == "unknown");
    CHECK(records[0]["error"].get<std::string>().size() <= hub::audit::kMaxFieldBytes);
    CHECK(records[1]["reason"] == "unknown");
    CHECK(hub.db->GetRemovalCursor("liar")->seq == 4);  // past the refused ones too
  }
  SECTION("sequence numbers that go back refuse the rest of the answer") {
    hub.Add(5, "b5");
    hub.Add(3, "b3");
    hub.Add(9, "b9");
    hub.spoke->removals_verbatim = true;
    CHECK(absl::IsInvalidArgument(hub.removals->Collect("liar", *hub.spoke)));
    REQUIRE(hub.Records().size() == 1);
    CHECK(hub.Records()[0]["box_id"] == "b5");
    CHECK(hub.db->GetRemovalCursor("liar")->seq == 5);
  }
  SECTION("a journal id that is not one refuses the whole answer") {
    hub.Add(1, "b1");
    hub.spoke->removals.journal_id = "not an id/" + std::string(100, 'x');
    CHECK(absl::IsInvalidArgument(hub.removals->Collect("liar", *hub.spoke)));
    CHECK(hub.Records().empty());
    CHECK(absl::IsNotFound(hub.db->GetRemovalCursor("liar").status()));
  }
}

TEST_CASE("a sequence number past what the store can hold is refused", "[removals]") {
  HubSide hub;
  hub.Add(std::uint64_t{1} << 63, "huge");
  CHECK(absl::IsInvalidArgument(hub.removals->Collect("liar", *hub.spoke)));
  CHECK(hub.Records().empty());
}

TEST_CASE("removals are not passed over while the audit log cannot be written", "[removals]") {
  HubSide hub;
  // The audit log's folder is gone: nothing can be written.
  const std::string path = (hub.dir.path() / "missing" / "audit.log").string();
  hub::audit::AuditLog broken({.path = path}, hub.clock);
  hub::boxes::RemovalAudit removals(*hub.db, broken, {});
  hub.Add(1, "b1");
  hub.Add(2, "b2");
  CHECK(absl::IsFailedPrecondition(removals.Collect("west", *hub.spoke)));
  // The journal is known now, but the cursor stays before its first entry.
  CHECK(hub.db->GetRemovalCursor("west")->seq == 0);
  // Writable again: both arrive, once.
  std::filesystem::create_directories(hub.dir.path() / "missing");
  REQUIRE(removals.Collect("west", *hub.spoke).ok());
  REQUIRE(removals.Collect("west", *hub.spoke).ok());
  const auto records = testing::ReadJsonLines(path);
  REQUIRE(records.size() == 2);
  CHECK(records[0]["box_id"] == "b1");
  CHECK(records[1]["box_id"] == "b2");
  CHECK(hub.db->GetRemovalCursor("west")->seq == 2);
}

TEST_CASE("a reconcile of a spoke records the boxes it removed on its own", "[removals]") {
  HubSide hub;
  hub::boxes::SpokeDirectory spokes;
  spokes.Add("west", hub.spoke, false);
  hub::boxes::BoxRegistry registry(
      *hub.db, spokes, hub.clock,
      {.public_url = "https://hub.example.com", .removal_audit = hub.removals.get()});
  hub.Add(1, "b1");
  (void)registry.ReconcileSpoke("west");
  REQUIRE(hub.Records().size() == 1);
  CHECK(hub.Records()[0]["spoke"] == "west");
  (void)registry.Reconcile();
  CHECK(hub.Records().size() == 1);
}

TEST_CASE(
    "a box the in-process spoke reaps reaches the hub through ListRemovals, also after a "
    "restart of the spoke",
    "[removals]") {
  testing::ScratchDir dir("removals-node");
  testing::FakeClock clock;
  testing::FakeDockerEngine engine{clock};
  testing::FakeBoxEgress egress;
  engine.AddImage("llmbox-box:dev");
  spoke::config::SpokeConfig config;
  config.name = "local";
  config.state_dir = (dir.path() / "state").string();
  config.docker.unix_socket = (dir.path() / "docker.sock").string();
  config.boxes.default_image = "llmbox-box:dev";
  config.reaper.interval = 30s;
  config.reaper.auth_ttl = 15min;
  auto start = [&] {
    auto started =
        spoke::node::SpokeNode::Start(config,
                                      {.transport = spoke::node::SpokeTransport::kInProcess,
                                       .engine = &engine,
                                       .egress = &egress},
                                      clock);
    REQUIRE(started.ok());
    return *std::move(started);
  };
  auto node = start();
  auto client = hub::cluster::MakeGrpcSpokeClient(node->InProcessChannel());
  REQUIRE(client->CreateBox({.box_id = "reaped-1"}, 30s).ok());

  // Past auth_ttl: the reaper's next pass removes the never-activated box.
  REQUIRE(clock.WaitForWaiters(1));
  clock.Advance(16min);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  absl::StatusOr<hub::cluster::SpokeRemovals> listed;
  while (std::chrono::steady_clock::now() < deadline) {
    listed = client->ListRemovals("", 0, 5s);
    REQUIRE(listed.ok());
    if (!listed->removals.empty()) break;
    std::this_thread::yield();
  }
  REQUIRE(listed->removals.size() == 1);
  CHECK(listed->removals[0].box_id == "reaped-1");
  CHECK(listed->removals[0].reason == "expired");
  CHECK(listed->removals[0].seq == 1);
  CHECK(listed->removals[0].code == 0);
  const std::string journal = listed->journal_id;

  client.reset();
  node.reset();
  node = start();
  client = hub::cluster::MakeGrpcSpokeClient(node->InProcessChannel());
  HubSide hub;
  REQUIRE(hub.removals->Collect("local", *client).ok());
  const auto records = hub.Records();
  REQUIRE(records.size() == 1);
  CHECK(records[0]["box_id"] == "reaped-1");
  CHECK(records[0]["principal"] == "spoke:local");
  CHECK(hub.db->GetRemovalCursor("local")->journal_id == journal);
  client.reset();
}

}  // namespace
}  // namespace llmbox
