// The configuration as the docs show it: every fenced ```yaml block in README.md and docs/*.md
// passes the check-config of the binary its top-level keys belong to, and the configuration
// reference (docs/configuration.md) has an entry for every key the loaders know, and none
// they do not. The keys are enumerated from the loaders themselves (common::ConfigKeyRecorder),
// so a key added to a loader without its entry fails here.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/config.h"
#include "hub/config/hub_config.h"
#include "hub/local/local_spoke.h"
#include "spoke/config/spoke_config.h"
#include "tests/support/scratch_dir.h"

namespace llmbox {
namespace {

namespace fs = std::filesystem;

std::string ReadDoc(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<fs::path> DocFiles() {
  const fs::path root(LLMBOX_SOURCE_DIR);
  std::vector<fs::path> files = {root / "README.md"};
  for (const auto& entry : fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct YamlBlock {
  std::string file;
  int line = 0;      // of the opening fence, 1-based
  std::string info;  // what follows ``` ("yaml", "yaml fragment")
  std::string text;
};

// Fenced blocks whose info string starts with "yaml", their indentation (a block inside a
// list item) taken off.
std::vector<YamlBlock> YamlBlocks(const fs::path& path) {
  std::vector<YamlBlock> blocks;
  std::istringstream in(ReadDoc(path));
  std::string line;
  int number = 0;
  std::optional<YamlBlock> open;
  size_t indent = 0;
  bool other_fence = false;
  while (std::getline(in, line)) {
    ++number;
    const size_t start = line.find_first_not_of(' ');
    const bool fence = start != std::string::npos && line.compare(start, 3, "```") == 0;
    if (open.has_value()) {
      if (fence && line.substr(start) == "```") {
        blocks.push_back(*std::move(open));
        open.reset();
      } else {
        open->text += (line.size() >= indent ? line.substr(indent) : "") + "\n";
      }
    } else if (fence && other_fence) {
      other_fence = false;
    } else if (fence) {
      const std::string info = line.substr(start + 3);
      if (info.rfind("yaml", 0) == 0) {
        open = YamlBlock{path.filename().string(), number, info, ""};
        indent = start;
      } else {
        other_fence = true;
      }
    }
  }
  return blocks;
}

// The top-level keys of a block (lines that start with a key at column 0).
std::set<std::string> TopKeys(const std::string& text) {
  std::set<std::string> keys;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == ' ' || line[0] == '#' || line[0] == '-') continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos) keys.insert(line.substr(0, colon));
  }
  return keys;
}

const std::set<std::string> kHubOnly = {"hub", "auth", "cluster", "activation", "local_spoke"};

bool IsHubBlock(const std::set<std::string>& keys) {
  return std::any_of(keys.begin(), keys.end(),
                     [](const std::string& key) { return kHubOnly.contains(key); });
}

// What `llmbox-hub check-config` runs: the hub's loader, then the local spoke's sections.
absl::Status CheckHub(const std::string& yaml, const std::string& dir) {
  auto config = hub::config::ParseHubConfig(yaml, "hub.yaml", dir);
  if (!config.ok()) return config.status();
  return hub::local::ReadLocalSpokeConfig(*config).status();
}

// What `llmbox-spoke check-config --file-only` runs.
absl::Status CheckSpoke(const std::string& yaml, const std::string& dir) {
  return spoke::config::ParseSpokeConfig(yaml, "spoke.yaml", dir).status();
}

TEST_CASE("every yaml example in the docs passes check-config of its binary", "[config-docs]") {
  testing::ScratchDir dir("config-docs");
  int checked = 0;
  for (const fs::path& path : DocFiles()) {
    for (const YamlBlock& block : YamlBlocks(path)) {
      INFO(block.file << ":" << block.line << " (```" << block.info << ")\n" << block.text);
      // A partial example says so in its fence: ```yaml fragment.
      if (block.info == "yaml fragment") continue;
      REQUIRE(block.info == "yaml");
      const std::set<std::string> keys = TopKeys(block.text);
      std::string text = block.text;
      // Secret files an example names (relative to the config file) exist beside it.
      for (size_t at = text.find("_file: "); at != std::string::npos;
           at = text.find("_file: ", at + 1)) {
        const size_t start = at + 7;
        const std::string name = text.substr(start, text.find_first_of(" \n", start) - start);
        if (!name.empty() && name[0] != '/') dir.Write(name, "secret-for-the-docs-test\n");
      }
      absl::Status st;
      if (IsHubBlock(keys)) {
        st = CheckHub(text, dir.path().string());
      } else {
        // A spoke example that shows some sections is checked as a file holding them and the
        // tls section every spoke file needs.
        if (!keys.contains("tls")) {
          text += "tls:\n  cert_file: spoke.crt\n  key_file: spoke.key\n  ca_file: ca.crt\n";
        }
        st = CheckSpoke(text, dir.path().string());
      }
      CHECK(st.ToString() == "OK");
      ++checked;
    }
  }
  // The docs hold a good many examples; finding none means the scan is broken.
  CHECK(checked >= 5);
}

TEST_CASE("a fenced block inside a list item is found with its indentation taken off",
          "[config-docs]") {
  testing::ScratchDir dir("config-docs-scan");
  const std::string doc = dir.Write(
      "x.md", "1. Step:\n\n   ```yaml\n   spoke:\n     name: a\n   ```\n\n```sh\n```yaml\n```\n");
  const auto blocks = YamlBlocks(doc);
  REQUIRE(blocks.size() == 1);
  CHECK(blocks[0].line == 3);
  CHECK(blocks[0].text == "spoke:\n  name: a\n");
  CHECK(TopKeys(blocks[0].text) == std::set<std::string>{"spoke"});
}

// ---- The configuration reference ------------------------------------------------------------

// Values for keys of list items that are required before the item's other keys are read
// (the reader stops at an empty one): the enumeration gives them so it finds the rest.
const std::map<std::string, std::string> kRequiredItemKeys = {
    {"hub.quotas.overrides[].principal", "anonymous"},
};

// A flow-style document that reaches `path` (a section or a list of sections, "a.b[].c"),
// with the list named `path` holding one item: empty, but for its kRequiredItemKeys.
std::string Reaching(const std::string& path, const std::set<std::string>& lists) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  std::function<std::string(size_t)> from = [&](size_t i) -> std::string {
    if (i == parts.size()) {
      if (!lists.contains(path)) return "{}";
      std::string item;
      for (const auto& [key, value] : kRequiredItemKeys) {
        if (key.rfind(path + "[].", 0) != 0) continue;
        item += (item.empty() ? "" : ", ") + key.substr(path.size() + 3) + ": " + value;
      }
      return "[{" + item + "}]";
    }
    std::string name = parts[i];
    const bool item = name.size() > 2 && name.ends_with("[]");
    if (item) name.resize(name.size() - 2);
    const std::string inner = from(i + 1);
    return "{" + name + ": " + (item ? "[" + inner + "]" : inner) + "}";
  };
  return path.empty() ? "{}" : from(0);
}

// Every key `check` asks for, found by giving it a document that reaches each section it
// asks for (one at a time, so that a section left empty and refused stops no other).
std::set<std::string> KnownKeys(const std::function<void(const std::string&)>& check) {
  std::set<std::string> keys, tried = {""}, lists;
  std::vector<std::string> todo = {""};
  while (!todo.empty()) {
    const std::string path = todo.back();
    todo.pop_back();
    common::ConfigKeyRecorder recorder;
    check(Reaching(path, lists));
    keys.insert(recorder.keys().begin(), recorder.keys().end());
    lists.insert(recorder.lists().begin(), recorder.lists().end());
    for (const auto* found : {&recorder.sections(), &recorder.lists()}) {
      for (const std::string& section : *found) {
        if (tried.insert(section).second) todo.push_back(section);
      }
    }
  }
  // A section is documented by its keys.
  for (const std::string& list : lists) keys.erase(list);
  for (const std::string& section : tried) keys.erase(section);
  return keys;
}

// The keys of docs/configuration.md's table rows (| `key` | ...) under the heading that
// starts with `heading`, up to the next "## " heading.
std::set<std::string> DocumentedKeys(const std::string& doc, const std::string& heading) {
  std::set<std::string> keys;
  std::istringstream in(doc);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) inside = line.rfind(heading, 0) == 0;
    if (!inside || line.rfind("| `", 0) != 0) continue;
    const size_t end = line.find('`', 3);
    if (end != std::string::npos) keys.insert(line.substr(3, end - 3));
  }
  return keys;
}

std::string Listed(const std::set<std::string>& keys) {
  std::string out;
  for (const auto& key : keys) out += "  " + key + "\n";
  return out;
}

std::set<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

std::set<std::string> SpokeKeys(const std::string& dir) {
  return KnownKeys([&](const std::string& yaml) { (void)CheckSpoke(yaml, dir); });
}

TEST_CASE("the key enumeration finds keys in sections, nested sections and lists",
          "[config-docs]") {
  testing::ScratchDir dir("config-keys");
  const std::set<std::string> keys = SpokeKeys(dir.path().string());
  for (const char* key :
       {"spoke.name", "tls.renew_check", "boxes.exec.uid", "boxes.disk.workspace_type",
        "egress.base_allowlist", "hooks[].timeout", "log.level"}) {
    INFO(key);
    CHECK(keys.contains(key));
  }
  CHECK_FALSE(keys.contains("boxes"));
  CHECK_FALSE(keys.contains("hooks"));
}

TEST_CASE("docs/configuration.md has an entry for every hub and spoke key and no other",
          "[config-docs]") {
  testing::ScratchDir dir("config-reference");
  const std::string doc = ReadDoc(fs::path(LLMBOX_SOURCE_DIR) / "docs" / "configuration.md");
  REQUIRE_FALSE(doc.empty());

  const std::set<std::string> spoke = SpokeKeys(dir.path().string());
  std::set<std::string> hub =
      KnownKeys([&](const std::string& yaml) { (void)CheckHub(yaml, dir.path().string()); });
  // local_spoke holds the spoke's own box-host sections (read by the spoke's reader): the
  // reference lists them once, under the spoke.
  for (auto it = hub.begin(); it != hub.end();) {
    if (it->rfind("local_spoke.", 0) == 0 && *it != "local_spoke.enabled") {
      INFO(*it);
      CHECK(spoke.contains(it->substr(std::string("local_spoke.").size())));
      it = hub.erase(it);
    } else {
      ++it;
    }
  }

  const std::set<std::string> hub_documented = DocumentedKeys(doc, "## The hub");
  const std::set<std::string> spoke_documented = DocumentedKeys(doc, "## The spoke");
  INFO("hub keys without an entry in docs/configuration.md:\n"
       << Listed(Minus(hub, hub_documented)));
  INFO("hub entries that are no key:\n" << Listed(Minus(hub_documented, hub)));
  INFO("spoke keys without an entry:\n" << Listed(Minus(spoke, spoke_documented)));
  INFO("spoke entries that are no key:\n" << Listed(Minus(spoke_documented, spoke)));
  CHECK(hub.size() > 50);
  CHECK(spoke.size() > 50);
  CHECK(hub == hub_documented);
  CHECK(spoke == spoke_documented);
}

}  // namespace
}  // namespace llmbox
