// Benchmark: a page of list_llmboxes as the hub serves it (BoxTools -> BoxRegistry -> SQLite,
// the JSON and the sealed cursor included; no HTTP), with 100, 10,000 and 100,000 boxes in the
// registry: the first page, a page from the middle (by cursor), a page filtered by status and
// spoke, and a key's own list (a tenth of the boxes). Keyset pages over indexes should cost
// about the same at every size. No rig, no Docker: the boxes are written straight into the
// store's file.
//
// It asserts nothing about time; it fails only when a call fails or a page is short.
//
//   build/tests/bench/llmbox_list_page_bench [repetitions]

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "common/clock.h"
#include "hub/auth/principal.h"
#include "hub/boxes/box_tools.h"
#include "hub/boxes/registry.h"
#include "hub/store/sqlite_store.h"
#include "tests/bench/bench_report.h"
#include "tests/support/caller_context.h"

namespace llmbox {
namespace {

using bench::Percentile;
using bench::Say;
using nlohmann::json;

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "list_page_bench: %s\n", why.c_str());
  std::exit(1);
}

// `count` boxes in one transaction: ids bench-000000.., three phases, three spokes, every
// tenth box key:alice's (the rest the admin's), creation times in a scrambled order with ties.
void Seed(const std::string& path, int count) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("cannot open " + path);
  const std::string sql =
      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < " +
      std::to_string(count) +
      ") INSERT INTO boxes (box_key, box_id, spoke, container_id, image, description, phase, "
      "session_url, last_error, authorize_url, token_hash, created_by, created_at_ms, "
      "expires_at_ms, updated_at_ms, activation_attempts, activation_owner, owner, owner_email) "
      "SELECT printf('bench-%06d', i), printf('bench-%06d', i), "
      "CASE i % 3 WHEN 0 THEN 'local' WHEN 1 THEN 'far' ELSE 'east' END, "
      "printf('c0ffee%06d', i), 'ghcr.io/example/claude:1', 'a bench box', "
      "CASE (i / 3) % 3 WHEN 0 THEN 'pending' WHEN 1 THEN 'ready' ELSE 'error' END, "
      "'https://claude.ai/code/session_' || i, '', '', printf('%064d', i), "
      "CASE i % 10 WHEN 0 THEN 'alice' ELSE 'root' END, "
      "1700000000000 + (i * 7919) % (1 + " +
      std::to_string(count) +
      " / 2), 0, 1700000000000, 0, '', "
      "CASE i % 10 WHEN 0 THEN 'key:alice' ELSE 'key:root' END, '' FROM n";
  char* error = nullptr;
  if (sqlite3_exec(db, ("BEGIN; " + sql + "; COMMIT;").c_str(), nullptr, nullptr, &error) !=
      SQLITE_OK) {
    Die(std::string("seed: ") + (error != nullptr ? error : "?"));
  }
  sqlite3_close(db);
}

}  // namespace
}  // namespace llmbox

int main(int argc, char** argv) {
  using namespace llmbox;
  const int repetitions = argc > 1 ? std::max(10, std::atoi(argv[1])) : 300;
  const auto admin = hub::auth::Principal::ApiKey("root", /*admin=*/true);
  const auto alice = hub::auth::Principal::ApiKey("alice", /*admin=*/false);
  Say("list_llmboxes page of 100 through BoxTools over SQLite, %d calls each (ms)\n", repetitions);
  Say("%-44s %8s %8s %8s\n", "", "boxes", "p50", "p99");
  for (const int count : {100, 10'000, 100'000}) {
    const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                      ("llmbox-list-page-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "hub.db").string();
    hub::store::SqliteStore::Open(path).value().reset();  // the schema
    Seed(path, count);
    auto store = hub::store::SqliteStore::Open(path);
    if (!store.ok()) Die(store.status().ToString());
    hub::boxes::SpokeDirectory spokes;
    hub::boxes::BoxRegistry registry(**store, spokes, common::SystemClock::Get(),
                                     {.public_url = "https://hub.example.com"});
    hub::boxes::BoxTools tools(registry);

    auto call = [&](const hub::auth::Principal& who, const json& arguments) {
      testing::CallerContext context(who);
      auto result = tools.Call("list_llmboxes", arguments, context);
      if (result.is_error) Die("list_llmboxes: " + result.text);
      return result.structured_json;
    };
    // The cursor of the page in the middle: walked to once.
    json walk = {{"limit", std::min(500, count / 2)}};
    for (int walked = 0; walked < count / 2;) {
      const json page = json::parse(call(admin, walk));
      walked += static_cast<int>(page["boxes"].size());
      if (!page.contains("next_cursor")) Die("the list ended before its middle");
      walk["cursor"] = page["next_cursor"];
    }
    struct Case {
      const char* name;
      const hub::auth::Principal& who;
      json arguments;
      std::size_t expected;  // boxes on the page
    };
    const std::size_t full = std::min<std::size_t>(100, count);
    const Case cases[] = {
        {"first page (admin, every box)", admin, {{"limit", 100}}, full},
        {"page from the middle (by cursor)",
         admin,
         {{"limit", 100}, {"cursor", walk["cursor"]}},
         std::min<std::size_t>(100, count - count / 2)},
        {"status ready on spoke far (1/9 of the boxes)",
         admin,
         {{"limit", 100}, {"status", "ready"}, {"spoke", "far"}},
         0},
        {"a key's own boxes (1/10 of the boxes)", alice, {{"limit", 100}}, 0},
    };
    for (const Case& c : cases) {
      std::vector<double> ms;
      ms.reserve(repetitions);
      for (int i = 0; i < repetitions; ++i) {
        const auto begin = std::chrono::steady_clock::now();
        const std::string out = call(c.who, c.arguments);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
                .count());
        if (i == 0) {
          const std::size_t boxes = json::parse(out)["boxes"].size();
          if (boxes == 0 || (c.expected != 0 && boxes != c.expected)) {
            Die(std::string(c.name) + ": " + std::to_string(boxes) + " boxes");
          }
        }
      }
      Say("%-44s %8d %8.3f %8.3f\n", c.name, count, Percentile(ms, 0.5), Percentile(ms, 0.99));
    }
    // For scale: every row, as list_llmboxes read them before it paged (the store alone,
    // without the JSON).
    std::vector<double> ms;
    for (int i = 0; i < std::min(repetitions, 20); ++i) {
      const auto begin = std::chrono::steady_clock::now();
      auto all = (*store)->ListBoxes({});
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
              .count());
      if (!all.ok() || all->size() != static_cast<std::size_t>(count)) Die("ListBoxes");
    }
    Say("%-44s %8d %8.3f %8.3f\n", "(unpaged: store ListBoxes of every box)", count,
        Percentile(ms, 0.5), Percentile(ms, 0.99));
    std::filesystem::remove_all(dir);
  }
  bench::WriteReport();
  return 0;
}
