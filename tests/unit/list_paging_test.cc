// list_llmboxes pages: keyset pages over the store's indexes, with an opaque cursor sealed by
// the hub and bound to the list it continues (principal and filter). Over a real SQLite store,
// through the tool as a chatbot calls it.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/secrets.h"
#include "hub/auth/principal.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/list_cursor.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_spoke_client.h"
#include "tests/support/caller_context.h"
#include "tests/support/query_plan.h"
#include "tests/support/scratch_dir.h"
#include "tests/unit/registry_fixture.h"

namespace llmbox::hub::boxes {
namespace {

using auth::Principal;
using nlohmann::json;
using store::BoxRecord;
using store::Phase;
using testing::CallerContext;

const Principal kAlice = testing::kAliceKey;
const Principal kBob = testing::kBobKey;
const Principal kAdmin = testing::kAdminKey;

constexpr Phase kPhases[] = {Phase::kPending, Phase::kReady, Phase::kError};
const std::string kSpokes[] = {"local", "far", "east"};

struct Fixture : testing::RegistryFixture {
  Fixture() : RegistryFixture("list-paging") { tools = std::make_unique<BoxTools>(*registry); }

  // A box written straight to the store (the list reads only the store). Creation times
  // repeat (every 40 boxes), so the box id breaks ties; ids are mixed case, since the order
  // is by the lowercased id.
  BoxRecord Insert(int i, const Principal& owner, std::int64_t created_at_ms) {
    BoxRecord box;
    box.box_id = (i % 3 == 0 ? "Box-" : "box-") + std::to_string(1000 + i);
    box.spoke = kSpokes[i % 3];
    box.container_id = "c0ffee" + std::to_string(i);
    box.image = "img";
    box.phase = kPhases[(i / 3) % 3];
    box.token_hash = common::Sha256Hex("token-" + std::to_string(i));
    box.created_by = owner.id();
    box.owner = owner.id();
    box.created_at_ms = created_at_ms;
    box.updated_at_ms = created_at_ms;
    REQUIRE(db->InsertBox(box).ok());
    all.push_back(box);
    return box;
  }

  // Boxes 0..n-1, alternately alice's and bob's when `two_owners`, created in a scrambled
  // order with repeated times.
  void InsertMany(int n, bool two_owners = false) {
    for (int i = 0; i < n; ++i) {
      Insert(i, two_owners && i % 2 == 1 ? kBob : kAlice, 1000 + (i * 7919) % 40);
    }
  }

  // The ids `matches` selects among the inserted boxes, in list order.
  template <typename Pred>
  std::vector<std::string> Expected(Pred matches) const {
    std::vector<BoxRecord> boxes;
    for (const BoxRecord& box : all) {
      if (matches(box)) boxes.push_back(box);
    }
    std::sort(boxes.begin(), boxes.end(), [](const BoxRecord& a, const BoxRecord& b) {
      return std::pair(a.created_at_ms, absl::AsciiStrToLower(a.box_id)) <
             std::pair(b.created_at_ms, absl::AsciiStrToLower(b.box_id));
    });
    std::vector<std::string> ids;
    for (const BoxRecord& box : boxes) ids.push_back(box.box_id);
    return ids;
  }

  // One list_llmboxes call; fails the test on a tool error.
  json Page(const Principal& who, json arguments) {
    CallerContext context(who);
    auto result = tools->Call("list_llmboxes", arguments, context);
    INFO(result.text);
    REQUIRE(!result.is_error);
    return json::parse(result.structured_json);
  }

  // The tool error of one list_llmboxes call (empty when it succeeded).
  std::string Error(const Principal& who, json arguments) {
    CallerContext context(who);
    auto result = tools->Call("list_llmboxes", arguments, context);
    return result.is_error ? result.text : "";
  }

  // Every page of a list, following next_cursor; the ids in the order seen and the page sizes.
  std::pair<std::vector<std::string>, std::vector<std::size_t>> All(const Principal& who,
                                                                    json arguments) {
    std::vector<std::string> ids;
    std::vector<std::size_t> sizes;
    for (int pages = 0; pages < 1000; ++pages) {
      json page = Page(who, arguments);
      sizes.push_back(page["boxes"].size());
      for (const json& box : page["boxes"]) ids.push_back(box["box_id"]);
      if (!page.contains("next_cursor")) return {ids, sizes};
      arguments["cursor"] = page["next_cursor"];
    }
    FAIL("the list never ended");
    return {};
  }

  std::unique_ptr<BoxTools> tools;
  std::vector<BoxRecord> all;
};

TEST_CASE(
    "pages of 100 over 250 boxes return every box exactly once in order with next_cursor "
    "until the last",
    "[list-paging]") {
  Fixture f;
  f.InsertMany(250);
  json page = f.Page(kAlice, {{"limit", 100}});
  CHECK(page["boxes"].size() == 100);
  CHECK(page["next_cursor"].is_string());
  auto [ids, sizes] = f.All(kAlice, {{"limit", 100}});
  CHECK(sizes == std::vector<std::size_t>{100, 100, 50});
  CHECK(ids == f.Expected([](const BoxRecord&) { return true; }));
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 250);
  // Without a limit, pages of 100 too.
  CHECK(f.All(kAlice, json::object()).second == std::vector<std::size_t>{100, 100, 50});
}

TEST_CASE("a list that fits in one page has no next_cursor, and neither has an exact last page",
          "[list-paging]") {
  Fixture f;
  f.InsertMany(20);
  CHECK(!f.Page(kAlice, json::object()).contains("next_cursor"));
  CHECK(f.All(kAlice, {{"limit", 10}}).second == std::vector<std::size_t>{10, 10});
  CHECK(f.Page(kBob, json::object())["boxes"].empty());
}

TEST_CASE("a limit outside 1..500 is a tool error naming the range", "[list-paging]") {
  Fixture f;
  f.InsertMany(3);
  for (const json& limit :
       {json(0), json(501), json(-1), json(1.5), json("10"), json(std::uint64_t{1} << 63)}) {
    INFO(limit.dump());
    CHECK(f.Error(kAlice, {{"limit", limit}}).find("limit must be an integer 1..500") == 0);
  }
  CHECK(f.Error(kAlice, {{"limit", 501}}) == "limit must be an integer 1..500, got 501");
  // A string is not echoed back (it could be as long as the request).
  CHECK(f.Error(kAlice, {{"limit", std::string(10'000, 'x')}}) ==
        "limit must be an integer 1..500");
  CHECK(f.Page(kAlice, {{"limit", 500}})["boxes"].size() == 3);
  json one = f.Page(kAlice, {{"limit", 1}});
  CHECK(one["boxes"].size() == 1);
  CHECK(one.contains("next_cursor"));
  // The schema a client sees says the same.
  for (const mcp::Tool& tool : f.tools->Tools()) {
    if (tool.name != "list_llmboxes") continue;
    CHECK(tool.input_schema["properties"]["limit"]["minimum"] == 1);
    CHECK(tool.input_schema["properties"]["limit"]["maximum"] == 500);
    CHECK(tool.output_schema["properties"].contains("next_cursor"));
  }
}

TEST_CASE(
    "status and spoke filters combine with paging and return only what they match, and an "
    "unknown status is an error",
    "[list-paging]") {
  Fixture f;
  f.InsertMany(250);
  auto [ready, ready_sizes] = f.All(kAlice, {{"limit", 7}, {"status", "ready"}});
  CHECK(ready == f.Expected([](const BoxRecord& b) { return b.phase == Phase::kReady; }));
  CHECK(ready_sizes.front() == 7);
  auto [far, far_sizes] = f.All(kAlice, {{"limit", 9}, {"spoke", "far"}});
  CHECK(far == f.Expected([](const BoxRecord& b) { return b.spoke == "far"; }));
  auto [both, both_sizes] = f.All(kAlice, {{"limit", 5}, {"status", "error"}, {"spoke", "east"}});
  CHECK(both == f.Expected([](const BoxRecord& b) {
    return b.phase == Phase::kError && b.spoke == "east";
  }));
  CHECK(both.size() > 5);  // more than one page
  CHECK(f.All(kAlice, {{"status", "gone"}}).first.empty());
  CHECK(f.Error(kAlice, {{"status", "sleeping"}}).find("status must be one of") == 0);
}

TEST_CASE(
    "a key that is no admin sees only its own boxes across pages and cannot name another "
    "owner",
    "[list-paging]") {
  Fixture f;
  f.InsertMany(250, /*two_owners=*/true);
  auto [alices, sizes] = f.All(kAlice, {{"limit", 30}});
  CHECK(alices == f.Expected([](const BoxRecord& b) { return b.owner == "key:alice"; }));
  CHECK(sizes.size() == 5);  // 125 boxes
  auto [bobs, bob_sizes] = f.All(kBob, {{"limit", 30}, {"status", "ready"}});
  CHECK(bobs == f.Expected([](const BoxRecord& b) {
    return b.owner == "key:bob" && b.phase == Phase::kReady;
  }));
  CHECK(f.Error(kAlice, {{"owner", "key:bob"}})
            .find("only an admin key may list another "
                  "owner's boxes") == 0);
  CHECK(!f.Error(kAlice, {{"owner", "anonymous"}}).empty());
  // Naming herself is no error: the same list.
  CHECK(f.All(kAlice, {{"limit", 30}, {"owner", "key:alice"}}).first == alices);
  // No box of bob's shows alice an owner field either.
  CHECK(!f.Page(kAlice, json::object())["boxes"][0].contains("owner"));
}

TEST_CASE("an admin lists every box across pages and can filter by owner", "[list-paging]") {
  Fixture f;
  f.InsertMany(250, /*two_owners=*/true);
  auto [every, sizes] = f.All(kAdmin, {{"limit", 100}});
  CHECK(every == f.Expected([](const BoxRecord&) { return true; }));
  auto [bobs, bob_sizes] = f.All(kAdmin, {{"limit", 40}, {"owner", "key:bob"}});
  CHECK(bobs == f.Expected([](const BoxRecord& b) { return b.owner == "key:bob"; }));
  CHECK(bob_sizes == std::vector<std::size_t>{40, 40, 40, 5});
  auto [bobs_far, far_sizes] =
      f.All(kAdmin, {{"limit", 4}, {"owner", "key:bob"}, {"spoke", "far"}, {"status", "pending"}});
  CHECK(bobs_far == f.Expected([](const BoxRecord& b) {
    return b.owner == "key:bob" && b.spoke == "far" && b.phase == Phase::kPending;
  }));
  json page = f.Page(kAdmin, {{"owner", "key:bob"}, {"limit", 1}});
  CHECK(page["boxes"][0]["owner"] == "key:bob");
  CHECK(f.Page(kAdmin, {{"owner", "key:nobody"}})["boxes"].empty());
}

TEST_CASE("a changed, cut or made-up cursor is refused as not valid for this list",
          "[list-paging]") {
  Fixture f;
  f.InsertMany(30);
  const std::string cursor = f.Page(kAlice, {{"limit", 10}})["next_cursor"];
  std::vector<std::string> bad;
  for (std::size_t i = 0; i < cursor.size(); ++i) {
    // The top bit of each character's six (the low ones of the last may be padding).
    static const std::string kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string changed = cursor;
    changed[i] = kAlphabet[kAlphabet.find(changed[i]) ^ 32];
    bad.push_back(changed);
  }
  bad.push_back(cursor.substr(0, cursor.size() - 1));
  bad.push_back(cursor.substr(1));
  bad.push_back(cursor + "A");
  bad.push_back("");
  bad.push_back("not a cursor!");
  bad.push_back(std::string(100'000, 'A'));
  bad.push_back(common::Base64UrlEncode(std::string(41, '\x01')));
  // A cursor sealed by another hub's key for the same list.
  ListCursors other(std::string(32, 'k'));
  bad.push_back(other.Seal("key:alice", {}, {.created_at_ms = 0, .box_key = ""}));
  for (const std::string& cursor_sent : bad) {
    INFO(cursor_sent.substr(0, 80));
    const std::string error = f.Error(kAlice, {{"limit", 10}, {"cursor", cursor_sent}});
    CHECK(error == kInvalidCursor);
  }
  CHECK(!f.Page(kAlice, {{"limit", 10}, {"cursor", cursor}})["boxes"].empty());
}

TEST_CASE("a cursor reused with another filter or by another principal is refused",
          "[list-paging]") {
  Fixture f;
  f.InsertMany(250, /*two_owners=*/true);
  const json first = f.Page(kAlice, {{"limit", 5}, {"status", "pending"}});
  const std::string cursor = first["next_cursor"];
  const json elsewhere[] = {
      {{"cursor", cursor}},
      {{"cursor", cursor}, {"status", "ready"}},
      {{"cursor", cursor}, {"status", "pending"}, {"spoke", "far"}},
      {{"cursor", cursor}, {"status", "pending"}, {"owner", "key:alice"}},
  };
  for (const json& arguments : elsewhere) {
    INFO(arguments.dump());
    CHECK(f.Error(kAlice, arguments) == kInvalidCursor);
  }
  CHECK(f.Error(kBob, {{"cursor", cursor}, {"status", "pending"}}) == kInvalidCursor);
  CHECK(f.Error(kAdmin, {{"cursor", cursor}, {"status", "pending"}}) == kInvalidCursor);
  CHECK(f.Error(Principal::Anonymous(), {{"cursor", cursor}, {"status", "pending"}}) ==
        kInvalidCursor);
  // A limit of its own is fine: the cursor says where, not how many.
  CHECK(f.Page(kAlice, {{"cursor", cursor}, {"status", "pending"}, {"limit", 9}})["boxes"].size() ==
        9);
  // An admin's cursor for one owner does not continue another owner's list.
  const std::string admins = f.Page(kAdmin, {{"limit", 5}, {"owner", "key:alice"}})["next_cursor"];
  CHECK(f.Error(kAdmin, {{"cursor", admins}, {"owner", "key:bob"}}) == kInvalidCursor);
  CHECK(f.Error(kAdmin, {{"cursor", admins}}) == kInvalidCursor);
}

TEST_CASE(
    "boxes created or destroyed between pages do not make a page repeat or skip a box that "
    "was there before",
    "[list-paging]") {
  Fixture f;
  f.InsertMany(250);
  const std::vector<std::string> before = f.Expected([](const BoxRecord&) { return true; });
  std::vector<std::string> seen;
  json arguments = {{"limit", 100}};
  int page_number = 0;
  while (true) {
    json page = f.Page(kAlice, arguments);
    for (const json& box : page["boxes"]) seen.push_back(box["box_id"]);
    ++page_number;
    // Between pages: new boxes (at the time of the box the page ended on, and later), and the
    // page's last box destroyed.
    const std::int64_t last_time = f.db->GetBox(seen.back()).value().created_at_ms;
    for (int i = 0; i < 20; ++i) {
      f.Insert(1000 * page_number + i, kAlice, last_time + (i % 2 == 0 ? 0 : 100 + i));
    }
    if (!page.contains("next_cursor")) break;
    REQUIRE(f.db->DeleteBox(seen.back()).ok());
    arguments["cursor"] = page["next_cursor"];
  }
  // Every box that was there before shows up once and in order; no box shows up twice.
  std::vector<std::string> old_ones;
  const std::set<std::string> old_set(before.begin(), before.end());
  for (const std::string& id : seen) {
    if (old_set.contains(id)) old_ones.push_back(id);
  }
  CHECK(old_ones == before);
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
}

TEST_CASE("every paged list query reads an index in list order and never scans and sorts",
          "[list-paging]") {
  Fixture f;
  f.InsertMany(250, /*two_owners=*/true);
  // The index each filter should read (with an owner, the owner's index or a filter's both read
  // in order; either is fine).
  const std::map<int, std::set<std::string>> expected_index = {
      {0, {"boxes_by_created_at"}},
      {1, {"boxes_by_phase"}},
      {2, {"boxes_by_spoke"}},
      {3, {"boxes_by_spoke_phase"}},
      {4, {"boxes_by_owner"}},
      {5, {"boxes_by_owner", "boxes_by_phase"}},
      {6, {"boxes_by_owner", "boxes_by_spoke"}},
      {7, {"boxes_by_owner", "boxes_by_spoke_phase"}},
  };
  for (const auto& [bits, indexes] : expected_index) {
    store::BoxFilter filter;
    if (bits & 1) filter.phase = Phase::kReady;
    if (bits & 2) filter.spoke = "far";
    if (bits & 4) filter.owner = "key:alice";
    for (const bool after : {false, true}) {
      const std::string sql = store::SqliteStore::BoxPageQuery(filter, after);
      auto explained = testing::QueryPlan(f.path(), sql);
      REQUIRE(explained.ok());
      const std::string& plan = *explained;
      INFO(sql);
      INFO(plan);
      CHECK(plan.find("TEMP B-TREE") == std::string::npos);
      CHECK(plan.find("USING INDEX") != std::string::npos);
      bool named = false;
      for (const std::string& index : indexes) {
        named = named || plan.find("INDEX " + index + " ") != std::string::npos ||
                plan.find("INDEX " + index + "\n") != std::string::npos;
      }
      CHECK(named);
      // From a cursor on, the index is searched from that place, not read from its start.
      if (after) CHECK(plan.find("SEARCH") != std::string::npos);
    }
  }
}

TEST_CASE("the store refuses a page of no boxes or of more than it allows", "[list-paging]") {
  Fixture f;
  f.InsertMany(3);
  CHECK(absl::IsInvalidArgument(f.db->ListBoxesPage({}, std::nullopt, 0).status()));
  CHECK(absl::IsInvalidArgument(
      f.db->ListBoxesPage({}, std::nullopt, store::kMaxBoxPage + 1).status()));
  auto page = f.db->ListBoxesPage({}, std::nullopt, 2);
  REQUIRE(page.ok());
  CHECK(page->boxes.size() == 2);
  REQUIRE(page->next.has_value());
  CHECK(page->next->box_key == absl::AsciiStrToLower(page->boxes.back().box_id));
  auto rest = f.db->ListBoxesPage({}, page->next, 2);
  REQUIRE(rest.ok());
  CHECK(rest->boxes.size() == 1);
  CHECK(!rest->next.has_value());
}

}  // namespace
}  // namespace llmbox::hub::boxes
