#include "spoke/box/console.h"

#include <algorithm>
#include <cctype>

namespace llmbox::spoke::box {
namespace {

constexpr char kEsc = '\x1b';
constexpr char kBel = '\x07';
constexpr size_t kMaxText = 1u << 20;
constexpr size_t kKeepText = 512u << 10;
constexpr size_t kMaxLinks = 64;
constexpr size_t kMaxSequence = 16u << 10;  // longer escape sequences are dropped as garbage

bool IsUrlChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case ':':
    case '/':
    case '?':
    case '#':
    case '[':
    case ']':
    case '@':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case '%':
      return true;
    default:
      return false;
  }
}

// Consumes complete sequences and text from `data`, appending visible text and link targets.
// Returns how many bytes were consumed; the rest is an unfinished escape sequence.
size_t Consume(std::string_view data, std::string* text, std::vector<std::string>* links) {
  size_t i = 0;
  while (i < data.size()) {
    const char c = data[i];
    if (c != kEsc) {
      if (c == '\n' || c == '\t' || static_cast<unsigned char>(c) >= 0x20) {
        if (c != 0x7f) text->push_back(c);
      }
      ++i;
      continue;
    }
    if (i + 1 >= data.size()) return i;
    const char kind = data[i + 1];
    if (kind == '[') {  // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, final 0x40-0x7E
      size_t j = i + 2;
      while (j < data.size() && data[j] >= 0x20 && data[j] <= 0x3F) ++j;
      if (j >= data.size()) {
        if (j - i > kMaxSequence) {
          i = j;
          continue;
        }
        return i;
      }
      i = (data[j] >= 0x40 && data[j] <= 0x7E) ? j + 1 : j;
      continue;
    }
    if (kind == ']' || kind == 'P' || kind == 'X' || kind == '^' || kind == '_') {
      // OSC / DCS / SOS / PM / APC: a string ended by BEL (OSC only) or ESC backslash.
      size_t j = i + 2;
      size_t end = std::string_view::npos, after = 0;
      for (; j < data.size(); ++j) {
        if (data[j] == kBel && kind == ']') {
          end = j;
          after = j + 1;
          break;
        }
        if (data[j] == kEsc && j + 1 < data.size() && data[j + 1] == '\\') {
          end = j;
          after = j + 2;
          break;
        }
      }
      if (end == std::string_view::npos) {
        if (data.size() - i > kMaxSequence) {
          i = data.size();
          continue;
        }
        return i;
      }
      std::string_view body = data.substr(i + 2, end - i - 2);
      // OSC 8 ; params ; URI — a hyperlink; an empty URI closes it.
      if (kind == ']' && body.substr(0, 2) == "8;") {
        size_t semi = body.find(';', 2);
        if (semi != std::string_view::npos && semi + 1 < body.size()) {
          links->emplace_back(body.substr(semi + 1));
        }
      }
      i = after;
      continue;
    }
    if (kind == '(' || kind == ')' || kind == '*' || kind == '+') {  // charset designation
      if (i + 2 >= data.size()) return i;
      i += 3;
      continue;
    }
    i += 2;  // any other two-byte escape (ESC 7, ESC 8, ESC =, ESC >, ESC M, ...)
  }
  return i;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The value of query parameter `name` in `url`, or "" when absent.
std::string_view QueryValue(std::string_view url, std::string_view name) {
  size_t q = url.find('?');
  while (q != std::string_view::npos) {
    std::string_view rest = url.substr(q + 1);
    if (StartsWith(rest, name) && rest.size() > name.size() && rest[name.size()] == '=') {
      rest.remove_prefix(name.size() + 1);
      return rest.substr(0, rest.find('&'));
    }
    q = url.find('&', q + 1);
  }
  return {};
}

bool IsAuthorizePrefix(std::string_view url) {
  return StartsWith(url, "https://claude.ai/oauth/authorize?") ||
         StartsWith(url, "https://claude.com/cai/oauth/authorize?") ||
         StartsWith(url, "https://claude.com/oauth/authorize?") ||
         StartsWith(url, "https://claude.ai/cai/oauth/authorize?");
}

// Whether an authorize URL has been printed up to its end, which matters when a terminal
// wrapped it: the long form ends with its PKCE challenge (S256: always 43 characters) and a
// state of 32 random bytes (43 characters), the short form is one opaque `z-` + 43 or more.
bool IsCompleteAuthorize(std::string_view url) {
  constexpr size_t kEncoded32Bytes = 43;
  if (!IsAuthorizePrefix(url)) return false;
  const std::string_view query = url.substr(url.find('?') + 1);
  if (!QueryValue(url, "state").empty()) {
    return QueryValue(url, "code_challenge").size() >= kEncoded32Bytes &&
           QueryValue(url, "state").size() >= kEncoded32Bytes;
  }
  return StartsWith(query, "z-") && query.size() >= 2 + kEncoded32Bytes;
}

bool IsSessionUrl(std::string_view url) {
  return (StartsWith(url, "https://claude.ai/code/") ||
          StartsWith(url, "https://claude.com/code/")) &&
         url.size() > std::string_view("https://claude.ai/code/").size();
}

// Finds URLs starting with `https://claude.` in visible text. A URL cut by a line break
// (a terminal narrower than the URL) is joined with the next line when `incomplete` says it
// is not whole yet. Only URLs followed by a non-URL character count: one at the very end of
// the text may still be growing.
template <typename Pred, typename Incomplete>
std::optional<std::string> FindInText(std::string_view text, Pred accept, Incomplete incomplete) {
  size_t at = 0;
  while ((at = text.find("https://claude.", at)) != std::string_view::npos) {
    size_t end = at;
    std::string url;
    for (;;) {
      size_t start = end;
      while (end < text.size() && IsUrlChar(text[end])) ++end;
      url.append(text.substr(start, end - start));
      if (end >= text.size()) break;  // not terminated yet
      if (text[end] == '\n' && incomplete(url) && end + 1 < text.size() &&
          IsUrlChar(text[end + 1])) {
        ++end;
        continue;
      }
      if (accept(url)) return url;
      break;
    }
    at += 1;
  }
  return std::nullopt;
}

}  // namespace

std::string StripTerminal(std::string_view raw) {
  std::string text;
  std::vector<std::string> links;
  Consume(raw, &text, &links);
  return text;
}

std::string RedactConsole(std::string_view text) {
  static constexpr std::string_view kPrompt = "Paste code here if prompted > ";
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, kPrompt.size()) == kPrompt) {
      out.append(kPrompt);
      i += kPrompt.size();
      const size_t end = std::min(text.find('\n', i), text.size());
      if (end > i) out.append("[REDACTED]");
      i = end;
      continue;
    }
    if (text.substr(i, 15) == "https://claude.") {
      size_t end = i;
      while (end < text.size() && IsUrlChar(text[end])) ++end;
      if (IsAuthorizePrefix(text.substr(i, end - i))) {
        out.append("[REDACTED authorize URL]");
        i = end;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

void ConsoleScanner::Feed(std::string_view raw) {
  std::string data = std::move(pending_);
  data.append(raw);
  std::vector<std::string> found;
  const size_t consumed = Consume(data, &text_, &found);
  pending_ = data.substr(consumed);
  for (auto& target : found) {
    if (links_.size() >= kMaxLinks) links_.erase(links_.begin());
    links_.push_back({std::move(target), Position()});
  }
  if (text_.size() > kMaxText) {
    const size_t drop = text_.size() - kKeepText;
    text_.erase(0, drop);
    dropped_ += drop;
  }
}

std::string_view ConsoleScanner::TextFrom(size_t from) const {
  if (from <= dropped_) return text_;
  const size_t offset = from - dropped_;
  return offset >= text_.size() ? std::string_view() : std::string_view(text_).substr(offset);
}

std::optional<std::string> ConsoleScanner::AuthorizeUrl(size_t from) const {
  for (const Link& link : links_) {
    if (link.position >= from && IsCompleteAuthorize(link.target)) return link.target;
  }
  return FindInText(TextFrom(from), IsCompleteAuthorize,
                    [](std::string_view url) { return !IsCompleteAuthorize(url); });
}

std::optional<std::string> ConsoleScanner::NewAuthorizeUrl(size_t from,
                                                           std::string_view old) const {
  std::optional<std::string> found;
  for (const Link& link : links_) {
    if (link.position >= from && link.target != old && IsCompleteAuthorize(link.target)) {
      found = link.target;
    }
  }
  if (found.has_value()) return found;
  return FindInText(
      TextFrom(from), [&](std::string_view url) { return url != old && IsCompleteAuthorize(url); },
      [](std::string_view url) { return !IsCompleteAuthorize(url); });
}

std::optional<std::string> ConsoleScanner::SessionUrl(size_t from) const {
  for (const Link& link : links_) {
    if (link.position >= from && IsSessionUrl(link.target)) return link.target;
  }
  return FindInText(TextFrom(from), IsSessionUrl, [](std::string_view) { return false; });
}

std::optional<std::string> ConsoleScanner::LoginFailure(size_t from) const {
  static constexpr std::string_view kMarkers[] = {"Couldn't log in", "Login failed",
                                                  "Error:", "OAuth error", "Invalid code"};
  std::string_view text = TextFrom(from);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) break;  // a line counts once it is finished
    std::string_view line = text.substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    for (std::string_view marker : kMarkers) {
      if (StartsWith(line, marker)) return std::string(line);
    }
    start = end + 1;
  }
  return std::nullopt;
}

std::string ConsoleScanner::Tail(size_t max_bytes) const {
  std::string collapsed;
  bool space = false;
  for (char c : text_) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !collapsed.empty();
      continue;
    }
    if (space) collapsed.push_back(' ');
    space = false;
    collapsed.push_back(c);
  }
  if (collapsed.size() > max_bytes) collapsed.erase(0, collapsed.size() - max_bytes);
  return collapsed;
}

}  // namespace llmbox::spoke::box
