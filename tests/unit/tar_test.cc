#include "spoke/docker/tar.h"

#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

namespace llmbox::spoke::docker {
namespace {

std::string Field(const std::string& block, size_t at, size_t len) {
  std::string f = block.substr(at, len);
  return f.substr(0, f.find('\0'));
}

long Octal(const std::string& block, size_t at, size_t len) {
  return std::strtol(Field(block, at, len).c_str(), nullptr, 8);
}

TEST_CASE("a tar archive holds files and directories with mode, owner and checksum", "[tar]") {
  TarBuilder tar;
  REQUIRE(tar.AddDirectory("root/.claude", 0700, 1000, 1000).ok());
  REQUIRE(tar.AddFile("root/.claude.json", "{\"a\":1}", 0600, 1000, 1001).ok());
  const std::string archive = tar.Finish();
  REQUIRE(archive.size() == 512 * 5);  // dir header, file header, one data block, two zeros

  const std::string dir = archive.substr(0, 512);
  CHECK(Field(dir, 0, 100) == "root/.claude/");
  CHECK(dir[156] == '5');
  CHECK(Octal(dir, 100, 8) == 0700);

  const std::string file = archive.substr(512, 512);
  CHECK(Field(file, 0, 100) == "root/.claude.json");
  CHECK(file[156] == '0');
  CHECK(Octal(file, 100, 8) == 0600);
  CHECK(Octal(file, 108, 8) == 1000);
  CHECK(Octal(file, 116, 8) == 1001);
  CHECK(Octal(file, 124, 12) == 7);
  CHECK(Field(file, 257, 6) == "ustar");
  CHECK(archive.substr(1024, 7) == "{\"a\":1}");
  // The checksum is the byte sum of the header with the checksum field as spaces.
  std::string blanked = file;
  blanked.replace(148, 8, 8, ' ');
  long sum = 0;
  for (unsigned char c : blanked) sum += c;
  CHECK(Octal(file, 148, 8) == sum);
  CHECK(archive.substr(1536) == std::string(1024, '\0'));
}

TEST_CASE("a long path is split into the ustar prefix and name", "[tar]") {
  TarBuilder tar;
  const std::string dir(120, 'd');
  const std::string path = dir + "/" + std::string(90, 'f');
  REQUIRE(tar.AddFile(path, "x", 0644, 0, 0).ok());
  const std::string header = tar.Finish().substr(0, 512);
  CHECK(Field(header, 345, 155) == dir);
  CHECK(Field(header, 0, 100) == std::string(90, 'f'));
}

TEST_CASE("paths that could escape or are not relative are refused", "[tar]") {
  TarBuilder tar;
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/\n"}) {
    INFO("path: " << bad);
    auto st = tar.AddFile(bad, "x", 0644, 0, 0);
    CHECK(absl::IsInvalidArgument(st));
    CHECK(st.message().find("tar: path") == 0);
  }
  CHECK(absl::IsInvalidArgument(tar.AddFile(std::string(300, 'a'), "x", 0644, 0, 0)));
}

}  // namespace
}  // namespace llmbox::spoke::docker
