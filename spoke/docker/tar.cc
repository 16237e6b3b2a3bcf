#include "spoke/docker/tar.h"

#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "common/absl_compat.h"
#include "common/validate.h"

namespace llmbox::spoke::docker {
namespace {

using common::AsAbsl;

constexpr size_t kBlock = 512;

[[nodiscard]] absl::Status CheckPath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar: path ", AsAbsl(common::QuoteForMessage(path)), " ", AsAbsl(why)));
  };
  if (path.empty()) return bad("is empty");
  if (path.front() == '/') return bad("must be relative");
  for (absl::string_view part : absl::StrSplit(AsAbsl(path), '/')) {
    if (part.empty() || part == "." || part == "..") {
      return bad("may not contain empty, \".\" or \"..\" components");
    }
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("contains control bytes");
  }
  return absl::OkStatus();
}

// Writes `value` as a zero-padded octal field of `width` bytes (with a terminating NUL).
// Callers keep values within range (sizes are bounded far below 8 GiB by the hook limits).
void Octal(char* field, size_t width, uint64_t value) {
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

}  // namespace

absl::Status TarBuilder::AddFile(std::string_view path, std::string_view contents, uint32_t mode,
                                 uint32_t uid, uint32_t gid) {
  return AddEntry(path, '0', contents, mode, uid, gid);
}

absl::Status TarBuilder::AddDirectory(std::string_view path, uint32_t mode, uint32_t uid,
                                      uint32_t gid) {
  return AddEntry(path, '5', {}, mode, uid, gid);
}

absl::Status TarBuilder::AddEntry(std::string_view path, char type, std::string_view contents,
                                  uint32_t mode, uint32_t uid, uint32_t gid) {
  if (auto st = CheckPath(path); !st.ok()) return st;
  std::string name(path);
  if (type == '5') name += '/';
  std::string prefix;
  if (name.size() > 100) {
    // Split at a "/" so that the prefix fits 155 bytes and the rest 100.
    size_t cut = name.rfind('/', std::min<size_t>(155, name.size() - 1));
    if (cut != std::string::npos && name.size() - cut - 1 > 100) cut = std::string::npos;
    if (cut == std::string::npos || cut == 0 || name.size() - cut - 1 == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tar: path ", AsAbsl(common::QuoteForMessage(path)), " is too long for ustar"));
    }
    prefix = name.substr(0, cut);
    name = name.substr(cut + 1);
  }
  char header[kBlock];
  std::memset(header, 0, sizeof(header));
  std::memcpy(header, name.data(), name.size());
  Octal(header + 100, 8, mode & 07777);
  Octal(header + 108, 8, uid);
  Octal(header + 116, 8, gid);
  Octal(header + 124, 12, contents.size());
  Octal(header + 136, 12, 0);  // mtime: fixed, so archives are reproducible
  std::memset(header + 148, ' ', 8);
  header[156] = type;
  std::memcpy(header + 257, "ustar", 6);
  std::memcpy(header + 263, "00", 2);
  std::memcpy(header + 345, prefix.data(), prefix.size());
  unsigned checksum = 0;
  for (unsigned char c : header) checksum += c;
  Octal(header + 148, 7, checksum);  // six digits, NUL, and the space that stays at 155
  data_.append(header, sizeof(header));
  data_.append(contents);
  data_.append((kBlock - contents.size() % kBlock) % kBlock, '\0');
  return absl::OkStatus();
}

std::string TarBuilder::Finish() {
  data_.append(2 * kBlock, '\0');
  return std::exchange(data_, std::string());
}

}  // namespace llmbox::spoke::docker
