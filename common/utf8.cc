#include "common/utf8.h"

namespace llmbox::common {

std::size_t Utf8CharLength(std::string_view text, std::size_t i, std::size_t* invalid) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length;
  // The second byte's range excludes overlong forms, surrogates and code points above
  // U+10FFFF, so that every longer sequence that passes is a valid character.
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) second_min = 0xa0;  // overlong
    if (lead == 0xed) second_max = 0x9f;  // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) second_min = 0x90;  // overlong
    if (lead == 0xf4) second_max = 0x8f;  // above U+10FFFF
  } else {
    *invalid = 1;
    return 0;
  }
  for (std::size_t k = 1; k < length; ++k) {
    if (i + k >= text.size()) {
      *invalid = k;
      return 0;
    }
    const unsigned char b = byte(i + k);
    const bool ok = k == 1 ? (b >= second_min && b <= second_max) : ((b & 0xc0) == 0x80);
    if (!ok) {
      *invalid = k;
      return 0;
    }
  }
  return length;
}

bool IsValidUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t invalid = 0;
    const std::size_t length = Utf8CharLength(text, i, &invalid);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string ToValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t run = 0;  // start of the valid bytes not yet copied
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t invalid = 0;
    if (const std::size_t length = Utf8CharLength(text, i, &invalid); length > 0) {
      i += length;
      continue;
    }
    out.append(text.data() + run, i - run);
    out.append(kReplacementCharacter);
    i += invalid;
    run = i;
  }
  out.append(text.data() + run, i - run);
  return out;
}

std::string Utf8Prefix(std::string_view text, std::size_t max_bytes) {
  std::string valid = ToValidUtf8(text);
  if (valid.size() <= max_bytes) return valid;
  std::size_t end = max_bytes;
  // Back up over continuation bytes to the start of the character that does not fit whole.
  while (end > 0 && (static_cast<unsigned char>(valid[end]) & 0xc0) == 0x80) --end;
  valid.resize(end);
  return valid;
}

}  // namespace llmbox::common
