// spoke/egress/policy.cc
//
// PLACEHOLDER on the plumbing branch only: the few functions of policy.h that the box service
// calls (ModeName, ParseMode, ParseEntry, Entry::ToString), so that the branch links. The
// proxy engineer's spoke/egress/policy.cc replaces this file whole at merge.
#include "spoke/egress/policy.h"

#include <charconv>

#include "absl/strings/str_cat.h"

namespace llmbox::spoke::egress {

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kNone:
      return "none";
    case Mode::kAllowlist:
      return "allowlist";
    case Mode::kOpen:
      return "open";
  }
  return "allowlist";
}

absl::StatusOr<Mode> ParseMode(std::string_view text) {
  if (text == "none") return Mode::kNone;
  if (text == "allowlist") return Mode::kAllowlist;
  if (text == "open") return Mode::kOpen;
  return absl::InvalidArgumentError("network mode \"" + std::string(text) +
                                    "\": must be none, allowlist or open");
}

std::string Entry::ToString() const {
  std::string out = kind == Kind::kWildcard ? "*." + name : name;
  if (port != 0) absl::StrAppend(&out, ":", port);
  return out;
}

// Domains and wildcards only, with an optional port.
absl::StatusOr<Entry> ParseEntry(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError("network entry \"" + std::string(text) +
                                      "\": " + std::string(why));
  };
  if (text.empty() || text.size() > 253) return bad("must be 1..253 bytes");
  Entry entry;
  std::string_view host = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    std::string_view port = text.substr(colon + 1);
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), entry.port);
    if (ec != std::errc() || end != port.data() + port.size() || entry.port < 1 ||
        entry.port > 65535) {
      return bad("the port must be 1..65535");
    }
  }
  if (host.starts_with("*.")) {
    entry.kind = Entry::Kind::kWildcard;
    host.remove_prefix(2);
  }
  if (host.empty()) return bad("names no host");
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return bad("a domain is letters, digits, '-' and '.'");
  }
  for (char c : host) entry.name += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return entry;
}

}  // namespace llmbox::spoke::egress
