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
// Not thread-safe. Memory is bounded: the visible text keeps its last 512 KiB once it passes
// 1 MiB.
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

  // The box's own error line after position `from`, e.g. "Couldn't log in: getaddrinfo
  // ENOTFOUND platform.claude.com" or "Error: You must be logged in to use Remote Control."
  std::optional<std::string> LoginFailure(size_t from = 0) const;

  // The visible text kept (ANSI removed, CR removed).
  const std::string& Text() const { return text_; }

  // The last `max_bytes` of the visible text with whitespace runs collapsed, for messages.
  std::string Tail(size_t max_bytes = 600) const;

 private:
  struct Link {
    std::string target;
    size_t position;  // Position() when it was seen
  };
  // The part of the text at and after position `from`.
  std::string_view TextFrom(size_t from) const;

  std::string pending_;      // an escape sequence cut at the end of the last chunk
  std::string text_;         // visible text
  size_t dropped_ = 0;       // visible bytes dropped from the front to bound memory
  std::vector<Link> links_;  // OSC-8 hyperlink targets, in order (bounded too)
};

}  // namespace llmbox::spoke::box
