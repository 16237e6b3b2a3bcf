// spoke/docker/stream.h
//
// Decodes the engine's console streams. Without a TTY, stdout and stderr come multiplexed in
// frames (an 8-byte header [type, 0, 0, 0, size big-endian u32], then `size` bytes); with a
// TTY the bytes are raw. Headers and payloads may be split across reads at any byte.
//
//   FrameDecoder decoder(/*tty=*/false);
//   std::string out, err;
//   LLMBOX_RETURN_IF_ERROR(decoder.Feed(chunk, &out, &err));   // call for every chunk
//
// Not thread-safe; one decoder per stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace llmbox::spoke::docker {

class FrameDecoder {
 public:
  // Frames larger than `max_frame_bytes` are refused (the size is the peer's u32).
  explicit FrameDecoder(bool tty, uint32_t max_frame_bytes = 16u << 20);

  // Appends the payloads in `bytes` to `out` (stdout, and everything with a TTY) and `err`
  // (stderr; may be the same string as `out` for arrival order). InvalidArgument on an unknown
  // stream type or an oversized frame; the decoder is unusable after an error.
  [[nodiscard]] absl::Status Feed(std::string_view bytes, std::string* out, std::string* err);

  // True when a frame has started but not finished (the stream ended mid-frame).
  bool InFrame() const { return header_len_ > 0 || remaining_ > 0; }

 private:
  bool tty_;
  uint32_t max_frame_bytes_;
  unsigned char header_[8] = {};
  size_t header_len_ = 0;
  uint32_t remaining_ = 0;  // payload bytes left in the current frame
  int stream_ = 1;          // 1 stdout (and 0 stdin echoed, 3 system error), 2 stderr
};

}  // namespace llmbox::spoke::docker
