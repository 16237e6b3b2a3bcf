#include "spoke/box/console.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace llmbox::spoke::box {
namespace {

constexpr char kEsc = '\x1b';
constexpr char kBel = '\x07';
constexpr size_t kMaxText = 1u << 20;
constexpr size_t kKeepText = 512u << 10;
constexpr size_t kMaxFound = 64;            // links, and URLs of each kind in the text
constexpr size_t kMaxUrl = 4u << 10;        // Claude's longest URL is about 500 characters
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
// Returns how many bytes were consumed; the rest is an unfinished escape sequence. When
// `data` starts with such a sequence from an earlier call, `*scanned` says how far its end
// was already looked for, so that it is not read again; on return it says the same for the
// unfinished rest (counted from the rest's start).
size_t Consume(std::string_view data, std::string* text, std::vector<std::string>* links,
               size_t* scanned) {
  const size_t resume = *scanned;
  *scanned = 0;
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
    // Where to start looking for this sequence's end: past what an earlier call looked at.
    const size_t from = i == 0 ? std::max<size_t>(2, resume) : i + 2;
    if (kind == '[') {  // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, final 0x40-0x7E
      size_t j = from;
      while (j < data.size() && data[j] >= 0x20 && data[j] <= 0x3F) ++j;
      if (j >= data.size()) {
        if (j - i > kMaxSequence) {
          i = j;
          continue;
        }
        *scanned = j - i;
        return i;
      }
      i = (data[j] >= 0x40 && data[j] <= 0x7E) ? j + 1 : j;
      continue;
    }
    if (kind == ']' || kind == 'P' || kind == 'X' || kind == '^' || kind == '_') {
      // OSC / DCS / SOS / PM / APC: a string ended by BEL (OSC only) or ESC backslash.
      size_t j = from;
      size_t end = std::string_view::npos, after = 0;
      bool abandoned = false;
      for (; j < data.size(); ++j) {
        // No string Claude prints spans a line: one left open ends there, so a stray
        // introducer cannot hide what follows it.
        if (data[j] == '\n') {
          abandoned = true;
          break;
        }
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
      if (abandoned) {
        i += 2;  // the introducer is dropped; the rest is read as text
        continue;
      }
      if (end == std::string_view::npos) {
        if (data.size() - i > kMaxSequence) {
          i += kMaxSequence;  // garbage: dropped, and what follows is read
          continue;
        }
        // A final ESC may be the start of its terminator: look at it again.
        *scanned = data.size() - 1 - i;
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

constexpr std::string_view kUrlStart = "https://claude.";

constexpr std::array<std::string_view, 4> kAuthorizePrefixes = {
    "https://claude.ai/oauth/authorize?", "https://claude.com/cai/oauth/authorize?",
    "https://claude.com/oauth/authorize?", "https://claude.ai/cai/oauth/authorize?"};

bool IsAuthorizePrefix(std::string_view url) {
  return std::any_of(kAuthorizePrefixes.begin(), kAuthorizePrefixes.end(),
                     [&](std::string_view prefix) { return StartsWith(url, prefix); });
}

bool IsSessionUrl(std::string_view url) {
  return (StartsWith(url, "https://claude.ai/code/") ||
          StartsWith(url, "https://claude.com/code/")) &&
         url.size() > std::string_view("https://claude.ai/code/").size();
}

}  // namespace

namespace console_internal {

void AuthorizeShape::Add(char c) {
  static constexpr std::string_view kState = "state=", kChallenge = "code_challenge=";
  if (candidates_ == 0) return;  // no authorize URL
  if (prefix_ == 0) {
    // Which of the prefixes still match, looking at the new character only.
    for (size_t k = 0; k < kAuthorizePrefixes.size(); ++k) {
      const std::string_view prefix = kAuthorizePrefixes[k];
      if ((candidates_ & (1u << k)) != 0 && prefix[head_] != c) candidates_ &= ~(1u << k);
    }
    ++head_;
    for (size_t k = 0; k < kAuthorizePrefixes.size(); ++k) {
      if ((candidates_ & (1u << k)) != 0 && kAuthorizePrefixes[k].size() == head_) {
        prefix_ = head_;
      }
    }
    return;
  }
  ++query_;
  if (query_ == 1) query_first_ = c;
  if (query_ == 2) short_form_ = query_first_ == 'z' && c == '-';
  if (c == '&') {
    param_.clear();
    in_state_ = in_challenge_ = false;
    return;
  }
  if (in_state_) {
    ++*state_;
  } else if (in_challenge_) {
    ++*challenge_;
  } else if (param_.size() < kChallenge.size()) {
    param_.push_back(c);
    if (param_ == kState && !state_.has_value()) {
      state_ = 0;
      in_state_ = true;
    } else if (param_ == kChallenge && !challenge_.has_value()) {
      challenge_ = 0;
      in_challenge_ = true;
    }
  }
}

// Whether an authorize URL has been printed up to its end, which matters when a terminal
// wrapped it: the long form ends with its PKCE challenge (S256: always 43 characters) and a
// state of 32 random bytes (43 characters), the short form is one opaque `z-` + 43 or more.
// The first `state` and `code_challenge` parameters count.
bool AuthorizeShape::Complete() const {
  constexpr size_t kEncoded32Bytes = 43;
  if (prefix_ == 0) return false;
  if (state_.value_or(0) > 0) {
    return challenge_.value_or(0) >= kEncoded32Bytes && *state_ >= kEncoded32Bytes;
  }
  return short_form_ && query_ >= 2 + kEncoded32Bytes;
}

}  // namespace console_internal

namespace {

bool IsCompleteAuthorize(std::string_view url) {
  console_internal::AuthorizeShape shape;
  for (char c : url) shape.Add(c);
  return shape.Complete();
}

}  // namespace

std::string StripTerminal(std::string_view raw) {
  std::string text;
  std::vector<std::string> links;
  size_t scanned = 0;
  Consume(raw, &text, &links, &scanned);
  return text;
}

std::string RedactConsole(std::string_view text) {
  static constexpr std::string_view kPrompt = "Paste code here if prompted > ";
  std::string out;
  out.reserve(text.size());
  size_t run_end = 0;  // where the run of URL characters at i ends, once looked for
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
    if (text.substr(i, kUrlStart.size()) == kUrlStart) {
      // Every "https://claude." in one run ends where the run ends: find that once.
      if (run_end <= i) {
        run_end = i;
        while (run_end < text.size() && IsUrlChar(text[run_end])) ++run_end;
      }
      if (IsAuthorizePrefix(text.substr(i, run_end - i))) {
        out.append("[REDACTED authorize URL]");
        i = run_end;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

void ConsoleScanner::Feed(std::string_view raw) {
  const size_t seen = text_.size();
  std::vector<std::string> targets;
  if (pending_.empty()) {
    const size_t consumed = Consume(raw, &text_, &targets, &pending_scanned_);
    pending_.assign(raw.substr(consumed));
  } else {
    pending_.append(raw);
    const size_t consumed = Consume(pending_, &text_, &targets, &pending_scanned_);
    pending_.erase(0, consumed);
  }
  ScanText(seen);
  for (auto& target : targets) {
    if (target.size() > kMaxUrl) continue;
    Found link{std::move(target), Position()};
    link.authorize = IsCompleteAuthorize(link.url);
    link.session = IsSessionUrl(link.url);
    Remember(&links_, std::move(link));
  }
  if (text_.size() > kMaxText) {
    const size_t drop = text_.size() - kKeepText;
    text_.erase(0, drop);
    dropped_ += drop;
  }
}

void ConsoleScanner::ScanText(size_t offset) {
  for (size_t i = offset; i < text_.size(); ++i) {
    const char c = text_[i];
    if (open_.has_value()) {
      if (open_->at_newline) {
        // A URL cut by a line break goes on on the next line until it is whole.
        open_->at_newline = false;
        if (IsUrlChar(c) && !open_->shape.Complete()) {
          AddUrlChar(c);
        } else {
          CloseUrl();
        }
      } else if (IsUrlChar(c)) {
        AddUrlChar(c);
      } else if (c == '\n' && !open_->shape.Complete()) {
        if (!open_->line_ended && IsSessionUrl(open_->url)) {
          Remember(&sessions_in_text_, {open_->url, open_->start});
        }
        open_->line_ended = true;
        open_->at_newline = true;
      } else {
        CloseUrl();
      }
    }
    prefix_matched_ = c == kUrlStart[prefix_matched_] ? prefix_matched_ + 1 : (c == 'h' ? 1 : 0);
    if (prefix_matched_ == kUrlStart.size()) {
      prefix_matched_ = 0;
      // A new URL starts here; the one before it, if any, ends where this one starts.
      if (open_.has_value()) {
        open_->url.resize(open_->url.size() - std::min(open_->url.size(), kUrlStart.size()));
        CloseUrl();
      }
      open_.emplace();
      open_->start = dropped_ + i + 1 - kUrlStart.size();
      for (char u : kUrlStart) AddUrlChar(u);
    }
  }
}

void ConsoleScanner::AddUrlChar(char c) {
  if (open_->url.size() >= kMaxUrl) {
    open_.reset();  // no URL of Claude's is that long
    return;
  }
  open_->url.push_back(c);
  open_->shape.Add(c);
}

void ConsoleScanner::CloseUrl() {
  if (!open_->line_ended && IsSessionUrl(open_->url)) {
    Remember(&sessions_in_text_, {open_->url, open_->start});
  }
  if (IsCompleteAuthorize(open_->url)) {
    Remember(&authorize_in_text_, {std::move(open_->url), open_->start});
  }
  open_.reset();
}

void ConsoleScanner::Remember(std::vector<Found>* list, Found found) {
  if (list->size() >= kMaxFound) list->erase(list->begin());
  list->push_back(std::move(found));
}

std::optional<std::string> ConsoleScanner::FirstInText(const std::vector<Found>& list, size_t from,
                                                       std::optional<std::string_view> old) const {
  for (const Found& found : list) {
    if (found.position >= std::max(from, dropped_) && (!old.has_value() || found.url != *old)) {
      return found.url;
    }
  }
  return std::nullopt;
}

std::optional<std::string> ConsoleScanner::AuthorizeUrl(size_t from) const {
  for (const Found& link : links_) {
    if (link.position >= from && link.authorize) return link.url;
  }
  return FirstInText(authorize_in_text_, from);
}

std::optional<std::string> ConsoleScanner::NewAuthorizeUrl(size_t from,
                                                           std::string_view old) const {
  std::optional<std::string> found;
  for (const Found& link : links_) {
    if (link.position >= from && link.authorize && link.url != old) found = link.url;
  }
  if (found.has_value()) return found;
  return FirstInText(authorize_in_text_, from, old);
}

std::optional<std::string> ConsoleScanner::SessionUrl(size_t from) const {
  for (const Found& link : links_) {
    if (link.position >= from && link.session) return link.url;
  }
  return FirstInText(sessions_in_text_, from);
}

std::optional<std::string> ConsoleScanner::LastSessionUrl(size_t from) const {
  const Found* last = nullptr;
  for (const Found& link : links_) {
    if (link.position >= from && link.session &&
        (last == nullptr || link.position >= last->position)) {
      last = &link;
    }
  }
  for (const Found& text : sessions_in_text_) {
    if (text.position >= std::max(from, dropped_) &&
        (last == nullptr || text.position > last->position)) {
      last = &text;
    }
  }
  if (last == nullptr) return std::nullopt;
  return last->url;
}

std::optional<std::string> ConsoleScanner::LoginFailure(size_t from) {
  static constexpr std::string_view kMarkers[] = {"Couldn't log in", "Login failed",
                                                  "Error:", "OAuth error", "Invalid code"};
  LineCursor& cursor = failure_cursor_;
  if (cursor.from != from) cursor = LineCursor{from, from, from, std::nullopt};
  if (cursor.found.has_value()) return cursor.found;
  // The text from `from` on, line by line; the first line is what of it comes after `from`.
  for (;;) {
    cursor.line_start = std::max(cursor.line_start, dropped_);
    cursor.searched = std::max(cursor.searched, cursor.line_start);
    if (cursor.searched >= Position()) return std::nullopt;
    const size_t newline = text_.find('\n', cursor.searched - dropped_);
    if (newline == std::string::npos) {  // a line counts once it is finished
      cursor.searched = Position();
      return std::nullopt;
    }
    std::string_view line = std::string_view(text_).substr(
        cursor.line_start - dropped_, newline - (cursor.line_start - dropped_));
    cursor.line_start = cursor.searched = dropped_ + newline + 1;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) {
      line.remove_prefix(1);
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) {
      line.remove_suffix(1);
    }
    for (std::string_view marker : kMarkers) {
      if (StartsWith(line, marker)) {
        cursor.found = std::string(line);
        return cursor.found;
      }
    }
  }
}

std::string ConsoleScanner::Tail(size_t max_bytes) const {
  // Walks back from the end, collapsing as it goes, until it has enough.
  std::string tail;
  bool space = false;
  for (size_t i = text_.size(); i > 0 && tail.size() < max_bytes; --i) {
    const char c = text_[i - 1];
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !tail.empty();
      continue;
    }
    if (space) {
      tail.push_back(' ');
      space = false;
      if (tail.size() >= max_bytes) break;
    }
    tail.push_back(c);
  }
  std::reverse(tail.begin(), tail.end());
  return tail;
}

}  // namespace llmbox::spoke::box
