#include "spoke/docker/stream.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace llmbox::spoke::docker {

FrameDecoder::FrameDecoder(bool tty, uint32_t max_frame_bytes)
    : tty_(tty), max_frame_bytes_(max_frame_bytes) {}

absl::Status FrameDecoder::Feed(std::string_view bytes, std::string* out, std::string* err) {
  if (tty_) {
    out->append(bytes);
    return absl::OkStatus();
  }
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      const size_t take = std::min(bytes.size(), sizeof(header_) - header_len_);
      std::copy_n(bytes.data(), take, header_ + header_len_);
      header_len_ += take;
      bytes.remove_prefix(take);
      if (header_len_ < sizeof(header_)) break;
      header_len_ = 0;
      const int type = header_[0];
      if (type > 3) {
        return absl::InvalidArgumentError(
            absl::StrCat("docker stream: unknown stream type ", type, " in a frame header"));
      }
      stream_ = type;
      remaining_ = (uint32_t{header_[4]} << 24) | (uint32_t{header_[5]} << 16) |
                   (uint32_t{header_[6]} << 8) | uint32_t{header_[7]};
      if (remaining_ > max_frame_bytes_) {
        return absl::InvalidArgumentError(absl::StrCat("docker stream: a frame of ", remaining_,
                                                       " bytes exceeds the limit of ",
                                                       max_frame_bytes_));
      }
      continue;
    }
    const size_t take = std::min<size_t>(bytes.size(), remaining_);
    (stream_ == 2 ? err : out)->append(bytes.substr(0, take));
    remaining_ -= static_cast<uint32_t>(take);
    bytes.remove_prefix(take);
  }
  return absl::OkStatus();
}

}  // namespace llmbox::spoke::docker
