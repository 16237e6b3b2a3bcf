// spoke/box/console.h
//
// Reads a box's TTY output the way a person would see it, and finds in it what the spoke
// needs: the OAuth authorize URL that `claude auth login` prints, the remote-control session
// URL after a code was accepted, and the box's own error text when it was not.
//
//   ConsoleScanner scanner;
//   scanner.Feed(chunk);                                    // every chunk of the attach stream
//   if (auto url = scanner.AuthorizeUrl()) { ... }          // once it has been printed whole
//
// Both URL forms of Claude Code are accepted: 2.1.330's `https://claude.ai/oauth/authorize?z-…`
// and 2.1.328's `https://claude.com/cai/oauth/authorize?code=true&…&state=…`. A URL is taken
// from the OSC-8 hyperlink target when there is one (so a visible line wrapped by the terminal
// does not matter; both the BEL and the ESC-backslash terminator are understood), else from
// the visible text, where a URL cut by a line break is joined back. A URL counts only once it
// is complete (its state/challenge part fully printed).
//
// A URL in the visible text starts at "https://claude." and ends at the first character that
// cannot be in a URL, or where the next "https://claude." begins.
//
// Linear time: Feed() looks at every byte once (an escape sequence cut between chunks is not
// read again from its start) and remembers the URLs it found; the URL queries look only at
// those (64 at most of each kind), never at the text, so asking after every chunk stays cheap
// however much was printed. LoginFailure() goes on from where its last call with the same
// `from` stopped.
//
// Not thread-safe. Memory is bounded: the visible text keeps its last 512 KiB once it passes
// 1 MiB; an escape sequence longer than 16 KiB is dropped; the last 64 hyperlink targets and
// the last 64 URLs of each kind found in the text are kept, and a URL longer than 4 KiB is
// none.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmbox::spoke::box {

// Removes terminal control sequences from `raw`: CSI (ESC [ …), OSC (ESC ] … BEL or ESC \),
// charset designations (ESC ( B …), other two-byte escapes, and carriage returns. Printable
// text and newlines stay. A sequence cut off at the end of `raw` is dropped.
std::string StripTerminal(std::string_view raw);

// Removes from visible console text what must never reach a chatbot: every OAuth authorize
// URL (replaced by "[REDACTED authorize URL]") and whatever follows Claude's code prompt on
// its line (the TTY echoes the pasted code there).
std::string RedactConsole(std::string_view text);

namespace console_internal {

// Follows a URL character by character and tells, in constant time per character, whether it
// is a whole authorize URL yet: the shape ConsoleScanner waits for before it takes a URL
// wrapped across lines. For ConsoleScanner only.
class AuthorizeShape {
 public:
  void Add(char c);
  bool Complete() const;

 private:
  size_t head_ = 0;            // characters looked at until the authorize prefix is known
  unsigned candidates_ = 0xf;  // the authorize prefixes that still match, one bit each
  size_t prefix_ = 0;          // the prefix's length once it matched
  size_t query_ = 0;           // query characters after the prefix
  char query_first_ = 0;       // the query's first character
  bool short_form_ = false;    // the query starts with "z-"
  std::string param_;          // the current parameter's first characters
  bool in_state_ = false;      // in the value of the first state parameter
  bool in_challenge_ = false;
  std::optional<size_t> state_;  // value lengths of the first state / code_challenge
  std::optional<size_t> challenge_;
};

}  // namespace console_internal

class ConsoleScanner {
 public:
  void Feed(std::string_view raw);

  // The first authorize URL printed whole after position `from` (see Position()).
  std::optional<std::string> AuthorizeUrl(size_t from = 0) const;

  // The last authorize URL printed whole after `from` that differs from `old` (a terminal UI
  // may draw the old one again before a new login prints its own).
  std::optional<std::string> NewAuthorizeUrl(size_t from, std::string_view old) const;

  // How much visible text has been seen in all (it only grows, even when old text is
  // dropped). Take it when writing a code, to look only at what the box says afterwards.
  size_t Position() const { return dropped_ + text_.size(); }

  // A remote-control session URL (https://claude.ai/code/… or claude.com/code/…) printed after
  // position `from`.
  std::optional<std::string> SessionUrl(size_t from = 0) const;

  // The last session URL printed after `from`: the live one when a box's console history holds
  // several (its container restarted and Claude began another session).
  std::optional<std::string> LastSessionUrl(size_t from = 0) const;

  // The box's own error line after position `from`, e.g. "Couldn't log in: getaddrinfo
  // ENOTFOUND platform.claude.com" or "Error: You must be logged in to use Remote Control."
  // A line counts once it is finished; the text from `from` to the next line break counts as
  // a line. Not const: it goes on from where the last call with the same `from` stopped.
  std::optional<std::string> LoginFailure(size_t from = 0);

  // The visible text kept (ANSI removed, CR removed).
  const std::string& Text() const { return text_; }

  // The last `max_bytes` of the visible text with whitespace runs collapsed, for messages.
  std::string Tail(size_t max_bytes = 600) const;

 private:
  // A URL that starts with "https://claude." and is still being printed.
  struct OpenUrl {
    size_t start = 0;                        // Position() of its first character
    std::string url;                         // so far, line breaks it was joined across left out
    console_internal::AuthorizeShape shape;  // of `url`
    bool line_ended = false;  // a line break came: whether it is a session URL (never
                              // wrapped) was decided there
    bool at_newline = false;  // a line break ended it for now; the next character decides
  };

  struct Found {
    std::string url;
    size_t position;         // text URLs: where they start; links: Position() when seen
    bool authorize = false;  // links: a whole authorize URL
    bool session = false;    // links: a session URL
  };

  // Where the last LoginFailure(from) stopped.
  struct LineCursor {
    std::optional<size_t> from;
    size_t line_start = 0;  // the position of the line not finished yet
    size_t searched = 0;    // no line break before this position in that line
    std::optional<std::string> found;
  };

  // Looks at the text appended from text_[offset] on: URLs.
  void ScanText(size_t offset);
  void AddUrlChar(char c);
  void CloseUrl();
  static void Remember(std::vector<Found>* list, Found found);
  // The first URL of `list` that starts at or after `from` in the text kept and is not `old`.
  std::optional<std::string> FirstInText(const std::vector<Found>& list, size_t from,
                                         std::optional<std::string_view> old = {}) const;

  std::string pending_;                   // an escape sequence cut at the end of the last chunk
  size_t pending_scanned_ = 0;            // how far into pending_ its end was looked for
  std::string text_;                      // visible text
  size_t dropped_ = 0;                    // visible bytes dropped from the front to bound memory
  std::vector<Found> links_;              // OSC-8 hyperlink targets, in order (bounded too)
  std::vector<Found> authorize_in_text_;  // whole authorize URLs in the visible text, in order
  std::vector<Found> sessions_in_text_;   // session URLs in the visible text, in order
  size_t prefix_matched_ = 0;             // characters of "https://claude." at the text's end
  std::optional<OpenUrl> open_;           // the URL being printed at the text's end
  LineCursor failure_cursor_;
};

}  // namespace llmbox::spoke::box
