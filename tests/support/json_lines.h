#pragma once

// A JSON-lines file (the audit log) read back for a test: each line parsed without throwing
// (a line that is not JSON comes back as a discarded value, which is not an object).
//
//   for (const auto& record : ReadJsonLines(dir / "audit.log")) REQUIRE(record.is_object());

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmbox::testing {

inline std::vector<nlohmann::json> ReadJsonLines(const std::filesystem::path& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    records.push_back(nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false));
  }
  return records;
}

}  // namespace llmbox::testing
